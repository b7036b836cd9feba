"""``runs/<run_id>/run.json``: the complete, inspectable record of one run."""

from __future__ import annotations

import html
import json
import math
import platform
import secrets
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..clusters.history import FIGURES
from ..errors import NotFoundError
from ..metrics.efficiency import combined, efficiency_cells, efficiency_line
from .cache import write_json_atomic
from .liveness import settle
from .params import json_safe

#: Status colours (fill, stroke) of every static rendering: the record's HTML, the report, the DAG.
#: The lab uses its theme's variables instead.
COLOURS = {
    "ok": ("#e8f5e9", "#2e7d32"),
    "cached": ("#e3f2fd", "#1565c0"),
    "failed": ("#ffebee", "#c62828"),
    "skipped": ("#f5f5f5", "#757575"),
    "running": ("#fff8e1", "#f9a825"),
    "pending": ("#ffffff", "#616161"),
}

PACKAGES = (
    "aiinfra",
    "papermill",
    "nbclient",
    "jupyter_client",
    "ipykernel",
    "dask",
    "distributed",
)
STATUS_ORDER = ("ok", "cached", "failed", "skipped", "running", "pending")


#: A step's ``cost`` figures: the cluster's (held, see execute._cost) and the measured CPU time.
STEP_FIGURES = (*FIGURES, "cpu_hours")


def cached_cost() -> dict[str, Any]:
    """A cached step's cost: it did not run, so it held nothing in this run."""
    return {"cached": True, **dict.fromkeys(STEP_FIGURES, 0.0)}


def add_cost(before: dict[str, Any] | None, attempt: dict[str, Any]) -> dict[str, Any]:
    """A step's cost after one more attempt: the figures add up, ``held`` is the latest."""
    if not isinstance(before, dict) or before.get("cached"):
        return dict(attempt)
    out = {**before, **attempt}
    for key in STEP_FIGURES:
        if key in before or key in attempt:
            out[key] = round(float(before.get(key) or 0.0) + float(attempt.get(key) or 0.0), 9)
    return combined(out, [before, attempt])  # used beside held, over both attempts


def hours(value: Any) -> str:
    """A figure in hours for tables: 4 significant digits, so a short step is not 0.0000."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    if value == 0:
        return "0"
    decimals = min(12, max(0, 3 - math.floor(math.log10(abs(value)))))
    text = f"{value:.{decimals}f}"  # plain decimals: no 5.556e-06 in a table
    return text.rstrip("0").rstrip(".") if "." in text else text


_last_run_micros = 0


def new_run_id() -> str:
    """A run id that sorts by start time: ``load()`` takes the last one as the latest run.

    Microseconds come before the random suffix, so two runs started in the same second
    still sort in order (with seconds alone the random suffix decided, half the time wrongly);
    within one process each id is at least a microsecond after the one before.
    """
    global _last_run_micros
    micros = max(int(time.time() * 1e6), _last_run_micros + 1)
    _last_run_micros = micros
    seconds, fraction = divmod(micros, 1_000_000)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(seconds))
    return f"{stamp}-{fraction:06d}-{secrets.token_hex(2)}"


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@dataclass
class RunRecord:
    """A run.json and the folder it lives in; what ``pipeline run`` and ``status`` return."""

    data: dict[str, Any]
    folder: Path  # the pipeline folder

    @property
    def run_id(self) -> str:
        return self.data["run_id"]

    @property
    def run_dir(self) -> Path:
        return self.folder / "runs" / self.run_id

    @property
    def path(self) -> Path:
        return self.run_dir / "run.json"

    @property
    def steps(self) -> dict[str, dict[str, Any]]:
        return self.data["steps"]

    @property
    def status(self) -> str:
        return self.data["status"]

    def save(self) -> None:
        write_json_atomic(self.path, json_safe(self.data))

    def finalise(self, why: str) -> None:
        """Every step in a final state after a run ended early (signal, Ctrl-C, error)."""
        for step in self.steps.values():
            if step["status"] == "running":
                step.update(status="failed", kind="interrupted", error=f"run ended: {why}")
            elif step["status"] == "pending":
                step.update(status="skipped", reason=f"run ended: {why}")

    @classmethod
    def load(cls, folder: Path, run_id: str | None = None) -> RunRecord:
        runs = folder / "runs"
        if run_id is None:
            candidates = (
                sorted(p.parent.name for p in runs.glob("*/run.json")) if runs.is_dir() else []
            )
            if not candidates:
                raise NotFoundError(
                    f"FILE: no runs yet under {runs}; allowed: run `pipeline run` first",
                    field="FILE",
                )
            run_id = candidates[-1]
        path = runs / run_id / "run.json"
        if not path.is_file():
            known = sorted(p.parent.name for p in runs.glob("*/run.json"))
            raise NotFoundError(
                f"--run: got {run_id!r}; allowed: {', '.join(known) or 'none yet'}", field="--run"
            )
        record = cls(json.loads(path.read_text()), folder)
        # Killed outright (SIGKILL, power loss): nothing could record the ending.
        settle(record.data, record.run_dir)
        return record

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for step in self.steps.values():
            out[step["status"]] = out.get(step["status"], 0) + 1
        return out

    def total_cost(self) -> dict[str, Any]:
        """The run's cost: the sum of its steps' (cached and skipped steps add nothing)."""
        total: dict[str, Any] = dict.fromkeys(STEP_FIGURES, 0.0)
        ran = []
        for step in self.steps.values():
            cost = step.get("cost")
            if not isinstance(cost, dict) or cost.get("cached"):
                continue
            ran.append(cost)
            for key in STEP_FIGURES:
                total[key] += float(cost.get(key) or 0.0)
        total = {k: round(v, 9) for k, v in total.items()}
        total["steps"] = len(ran)  # steps that held a worker in this run
        return combined(total, ran)  # used beside held, over the steps

    def suggestions(self) -> list[dict[str, Any]]:
        """Right-sizing per step from its measured peaks (metrics/rightsize.py)."""
        from ..metrics.rightsize import step_suggestions

        return step_suggestions(self.steps)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s in STATUS_ORDER if (n := self.counts().get(s)))
        took = self.data.get("duration")
        line = f"pipeline {self.data['pipeline']} run {self.run_id}: {self.status} ({counts}"
        line += f"; {took:.1f} s)" if took is not None else ")"
        cost = self.data.get("cost")
        if isinstance(cost, dict) and cost.get("steps"):
            line += (
                f"; cost: {hours(cost.get('gpu_hours'))} GPU-h, "
                f"{hours(cost.get('core_hours'))} core-h, {hours(cost.get('cpu_hours'))} CPU-h"
            )
            measured = efficiency_line(cost)
            if measured:
                line += f"\n  used: {measured}"
        for suggestion in self.data.get("suggestions") or ():
            line += f"\n  {suggestion.get('text')}"
        for name, step in self.steps.items():
            if step["status"] == "failed":
                line += f"\n  {name} failed: {step.get('error')}  [{step.get('notebook')}]"
        return line

    def rows(self) -> list[list[str]]:
        rows = []
        for name, step in self.steps.items():
            took = step.get("duration")
            rows.append(
                [
                    name,
                    step["status"],
                    f"{took:.2f}s" if took is not None else "",
                    str(step.get("attempts") or ""),
                    *cost_cells(step.get("cost")),
                    *efficiency_cells(step.get("cost")),
                    worker_label(step),
                    step.get("error") or step.get("reason") or "",
                ]
            )
        return rows

    HEADER = (
        "step",
        "status",
        "duration",
        "attempts",
        "GPU-h",
        "core-h",
        "CPU-h",
        "CPU eff",
        "GPU eff",
        "peak mem",
        "worker",
        "note",
    )

    def table(self) -> str:
        rows = [list(self.HEADER), *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.HEADER))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        return "\n".join(lines)

    @property
    def report(self) -> Path | None:
        path = self.run_dir / "report.html"
        return path if path.exists() else None

    def __str__(self) -> str:
        text = self.summary() + "\n\n" + self.table() + f"\n\nrecord: {self.path}"
        return text + (f"\nreport: {self.report}" if self.report else "")

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in self.HEADER)
        body = ""
        for row in self.rows():
            cells = [html.escape(c) for c in row]
            colour = COLOURS.get(row[1], COLOURS["pending"])[1]
            cells[1] = f"<span style='color:{colour}'>{cells[1]}</span>"
            body += (
                "<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in cells) + "</tr>"
            )
        title = html.escape(self.summary().splitlines()[0])
        links = html.escape(str(self.path))
        if self.report:
            # JupyterLab opens links relative to the notebook's folder (the kernel's cwd).
            try:
                href = html.escape(quote(str(self.report.relative_to(Path.cwd()))))
            except ValueError:
                href = html.escape(self.report.as_uri())
            links += f' - <a href="{href}" target="_blank">report</a>'
        return f"<b>{title}</b><table><tr>{head}</tr>{body}</table><small>{links}</small>"

    def to_dict(self) -> dict[str, Any]:
        return self.data


#: What ``pipeline runs`` lists of each run.
RUN_SUMMARY = ("run_id", "status", "start", "end", "duration", "trigger", "resumed_from", "from")


def list_runs(folder: Path) -> list[dict[str, Any]]:
    """The runs of the pipeline in ``folder``, newest first (a killed one reads interrupted)."""
    runs = folder / "runs"
    out = []
    for path in sorted(runs.glob("*/run.json"), reverse=True) if runs.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being written, or not a record
        if isinstance(data, dict):
            settle(data, path.parent)
            out.append({**{k: data.get(k) for k in RUN_SUMMARY}, "run_id": path.parent.name})
    return out


def worker_label(step: dict[str, Any]) -> str:
    """The worker a step ran on as a person names it, as the lab's run view does:
    ``node-3 · worker 0``, not ``tcp://10.0.0.3:40123``; without a recorded name the
    address's own part stands in (``in-process worker 4``, ``port 40123``)."""
    address = step.get("worker") or ""
    name = step.get("worker_name") or ""
    name = "" if "://" in name else name
    host = step.get("slurm_node") or step.get("host") or ""
    who = ""
    if name:
        who = f"worker {name}" if name.isdigit() else name
    elif address:
        scheme, sep, rest = address.partition("://")
        if not sep:
            who = "this process" if address == "local" else address
        elif scheme == "inproc":
            who = f"in-process worker {rest.rsplit('/', 1)[-1]}"
        else:
            host_port = rest.split("/", 1)[0]
            port = host_port.rsplit(":", 1)[-1]
            who = f"port {port}" if host and port.isdigit() else host_port
    return " · ".join(x for x in (host, who) if x)


def cost_cells(cost: Any) -> list[str]:
    """GPU-, core- and CPU-hours of a step for the tables; "cached" for a step not run."""
    if not isinstance(cost, dict) or "error" in cost:
        return ["", "", ""]
    if cost.get("cached"):
        return ["cached", "", ""]
    return [hours(cost.get(k)) for k in ("gpu_hours", "core_hours", "cpu_hours")]
