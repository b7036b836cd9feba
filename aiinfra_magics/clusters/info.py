"""What a cluster looks like to a user: one pure serialiser and its two renderings."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .history import rounded


def format_bytes(n: int) -> str:
    from dask.utils import format_bytes as dask_format_bytes  # late: dask costs ~75 ms to import

    return dask_format_bytes(n)


FIELDS = (
    "name", "backend", "status", "scheduler_address", "dashboard_link", "workers",
    "threads", "memory", "gpus", "adapt", "owner", "created", "cost",
)  # fmt: skip


def cluster_to_dict(
    record: dict[str, Any],
    identity: dict[str, Any] | None,
    figures: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge a registry record with the scheduler's live ``identity`` (and cost ``figures``)."""
    workers = (identity or {}).get("workers", {})
    owner = dict(record.get("owner") or {})
    owner.pop("started", None)
    status = record.get("status", "running")
    if status == "running" and identity is None:
        status = "unreachable"
    return {
        "name": record["name"],
        "backend": record.get("backend"),
        "status": status,
        "scheduler_address": record.get("scheduler_address"),
        "dashboard_link": record.get("dashboard_link"),
        "workers": len(workers),
        "threads": sum(int(w.get("nthreads", 0)) for w in workers.values()),
        "memory": sum(int(w.get("memory_limit") or 0) for w in workers.values()),
        "gpus": list(record.get("gpus") or []),
        "adapt": record.get("adapt"),
        "owner": owner,
        "created": record.get("created"),
        "cost": rounded(figures),  # worker/core/GPU/memory-GB hours so far; idle clock
    }


@dataclass
class ClusterInfo:
    """A cluster as every door shows it (HTML in notebooks, text elsewhere, JSON in REST)."""

    data: dict[str, Any]

    def __getattr__(self, key: str) -> Any:
        try:
            return self.data[key]
        except KeyError:
            raise AttributeError(key) from None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)

    def rows(self) -> list[tuple[str, str]]:
        d = self.data
        owner = d.get("owner") or {}
        return [
            ("name", d["name"]),
            ("backend", str(d["backend"])),
            ("status", d["status"]),
            ("scheduler", str(d["scheduler_address"])),
            ("workers", str(d["workers"])),
            ("threads", str(d["threads"])),
            ("memory", format_bytes(d["memory"]) if d["memory"] else "-"),
            ("GPUs", ",".join(d["gpus"]) or "-"),
            ("adapt", d["adapt"] or "-"),
            (
                "owner",
                f"{owner.get('kind', '?')} pid {owner.get('pid', '?')} on {owner.get('host', '?')}",
            ),
            ("dashboard", d["dashboard_link"] or "-"),
            *cost_rows(d.get("cost")),
            *(("note", note) for note in d.get("notes", ())),
        ]

    def __str__(self) -> str:
        width = max(len(k) for k, _ in self.rows())
        return "\n".join(f"{k:<{width}}  {v}" for k, v in self.rows())

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        cells = []
        for key, value in self.rows():
            value_html = link_html(value) if key == "dashboard" else html.escape(value)
            cells.append(
                f"<tr><th style='text-align:left'>{html.escape(key)}</th>"
                f"<td style='text-align:left'>{value_html}</td></tr>"
            )
        return (
            f"<div class='aiinfra-cluster'><strong>Dask cluster {html.escape(self.data['name'])}</strong>"
            f"<table>{''.join(cells)}</table></div>"
        )


def cost_rows(cost: dict[str, Any] | None) -> list[tuple[str, str]]:
    """``used`` (hours so far) and, while idle, how long and when it stops."""
    if not cost:
        return []
    rows = [(
        "used",
        f"{cost['worker_hours']:.3f} worker-h, {cost['core_hours']:.3f} core-h, "
        f"{cost['gpu_hours']:.3f} GPU-h, {cost['memory_gb_hours']:.3f} GB-h",
    )]  # fmt: skip
    since, timeout = cost.get("idle_since"), cost.get("idle_timeout")
    if since:
        idle = max(0.0, (cost.get("as_of") or time.time()) - since)
        stops = f"; stops in {max(0.0, timeout - idle):.0f}s" if timeout else ""
        rows.append(("idle", f"{idle:.0f}s{stops}"))
    return rows


def link_html(url: str, text: str | None = None) -> str:
    """An escaped link for http(s) URLs; anything else (``javascript:``...) as plain text."""
    shown = html.escape(text if text is not None else url)
    if urlsplit(url).scheme not in ("http", "https"):
        return shown
    return f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{shown}</a>'


@dataclass
class ClusterList:
    items: list[ClusterInfo]
    #: One line per registry record that was skipped (damaged), for the door to show.
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> list[dict[str, Any]]:
        return [i.to_dict() for i in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):  # noqa: ANN204
        return iter(self.items)

    def table(self) -> tuple[list[str], list[list[str]]]:
        head = [
            "name",
            "backend",
            "status",
            "workers",
            "threads",
            "memory",
            "gpus",
            "owner",
            "age",
            "dashboard",
        ]
        rows = []
        for info in self.items:
            d = info.data
            age = time.time() - (d.get("created") or time.time())
            rows.append([
                d["name"], str(d["backend"]), d["status"], str(d["workers"]), str(d["threads"]),
                format_bytes(d["memory"]) if d["memory"] else "-", ",".join(d["gpus"]) or "-",
                str((d.get("owner") or {}).get("kind", "?")), f"{age:.0f}s", d["dashboard_link"] or "-",
            ])  # fmt: skip
        return head, rows

    def __str__(self) -> str:
        if not self.items:
            return "\n".join(["no clusters registered", *self.problems])
        head, rows = self.table()
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [head, *rows]]
        return "\n".join([*lines, *self.problems])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        notes = "".join(f"<div>{html.escape(p)}</div>" for p in self.problems)
        if not self.items:
            return f"<em>no clusters registered</em>{notes}"
        head, rows = self.table()
        th = "".join(f"<th>{h}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
        )
        return f"<table class='aiinfra-clusters'><tr>{th}</tr>{body}</table>{notes}"
