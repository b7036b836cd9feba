"""What a cluster looks like to a user: one pure serialiser and its two renderings."""

from __future__ import annotations

import functools
import html
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from ..metrics.efficiency import efficiency_line
from ..metrics.query import host_rows
from .history import rounded
from .registry import STALE_AFTER_S, heartbeat_age


def format_bytes(n: int) -> str:
    """``n`` bytes as dask writes them (``1.15 GiB``): restated, because importing dask costs
    a listing 75 ms or more (tests/clusters/test_published_state.py holds it to dask's)."""
    for prefix, k in (("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("ki", 2**10)):
        if n >= k * 0.9:
            return f"{n / k:.2f} {prefix}B"
    return f"{n} B"


FIELDS = (
    "name", "backend", "status", "scheduler_address", "dashboard_link", "workers",
    "threads", "memory", "gpus", "adapt", "owner", "created", "cost",
)  # fmt: skip


#: Backends whose workers all run on the machine of the record's owner.
ONE_MACHINE_BACKENDS = ("local", "cuda")


def _machine_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def memory_that_exists(record: dict[str, Any], limits: int) -> int:
    """The workers' memory limits, but no more than the machine has when they share this machine.

    Dask's ``memory_limit="auto"`` gives each worker total/n at start; scaling up keeps that
    share per worker, so the limits can add up to more memory than exists (issue 14 item 8).
    """
    owner = record.get("owner") or {}
    if record.get("backend") in ONE_MACHINE_BACKENDS and owner.get("host") == socket.gethostname():
        return min(limits, _machine_memory())
    return limits


def observed_state(
    identity: dict[str, Any] | None, figures: dict[str, Any] | None, at: float | None = None
) -> dict[str, Any]:
    """What a cluster's record shows (``observed``): the scheduler's figures as a listing
    shows them, whether it answered, and when they were read (``at``)."""
    workers = (identity or {}).get("workers", {})
    return {
        "at": time.time() if at is None else at,
        "answered": identity is not None,
        "workers": len(workers),
        "threads": sum(int(w.get("nthreads", 0)) for w in workers.values()),
        "memory": sum(int(w.get("memory_limit") or 0) for w in workers.values()),
        "cost": rounded(figures),  # worker/core/GPU/memory-GB hours so far; idle clock
    }


def cluster_to_dict(
    record: dict[str, Any],
    identity: dict[str, Any] | None,
    figures: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Merge a registry record with the scheduler's live ``identity`` (and cost ``figures``)."""
    return _shown(record, observed_state(identity, figures))


def published_to_dict(record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """A record as its owner last published it, without asking the scheduler.

    An owner silent for longer than ``STALE_AFTER_S`` makes the cluster ``unknown``, never
    ``running``: its figures are the last ones heard, and a note says how old they are.
    """
    data = _shown(record, record["observed"])
    age = heartbeat_age(record, now) or 0.0
    if age > STALE_AFTER_S and data["status"] in ("running", "unreachable"):
        owner = data["owner"]
        data["status"] = "unknown"
        data["notes"] = [
            f"no word from its owner ({owner.get('kind', '?')} pid {owner.get('pid', '?')} on "
            f"{owner.get('host', '?')}) for {age:.0f}s; these figures are that old "
            f"(`cluster status {data['name']}` asks the scheduler)"
        ]
    return data


def _shown(record: dict[str, Any], observed: dict[str, Any]) -> dict[str, Any]:
    owner = dict(record.get("owner") or {})
    owner.pop("started", None)
    status = record.get("status", "running")
    if status == "running" and not observed.get("answered"):
        status = "unreachable"
    data = {
        "name": record["name"],
        "backend": record.get("backend"),
        "status": status,
        "scheduler_address": record.get("scheduler_address"),
        "dashboard_link": record.get("dashboard_link"),
        "workers": int(observed.get("workers") or 0),
        "threads": int(observed.get("threads") or 0),
        "memory": memory_that_exists(record, int(observed.get("memory") or 0)),
        "gpus": list(record.get("gpus") or []),
        "adapt": record.get("adapt"),
        "owner": owner,
        "created": record.get("created"),
        "cost": observed.get("cost"),
        # Held GPUs idle past the waste window (metrics/efficiency.py): the card shows them.
        "warnings": list((observed.get("cost") or {}).get("warnings") or []),
        # Packages that differ from the starting process's (env_check.py), shown as warnings.
        "env_drift": list(record.get("env_drift") or []),
    }
    data["warnings"] += data["env_drift"]
    if "at" in observed:
        data["observed_at"] = observed["at"]  # when these figures were read
    return data


def _job_rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    """A batch backend's queue (``live_details``): a summary, then one row per job."""
    rows = [("jobs", str(d["queue"]))] if d.get("queue") else []
    for job in d.get("jobs") or []:
        extra = job.get("reason") or job.get("time_left") or ""
        where = f" on {job['node']}" if job.get("node") else ""
        rows.append((f"  {job['job_id']}", f"{job['state'].lower()}{where} {extra}".rstrip()))
    rows += [("submit error", str(e)) for e in d.get("submit_errors") or []]
    return rows


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
            *_job_rows(d),
            *cost_rows(d.get("cost")),
            *host_rows(d.get("hosts")),
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
            if key == "dashboard":
                value_html = dashboard_html(self.data["name"], self.data["dashboard_link"])
            else:
                value_html = html.escape(value)
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
    line = efficiency_line(cost)
    if line:
        rows.append(("efficiency", line))
    rows += [("warning", w) for w in cost.get("warnings") or ()]
    return rows


@functools.lru_cache(maxsize=1)
def jupyter_base_url() -> str | None:
    """The base_url of the Jupyter server this kernel runs under, or None outside one.

    JupyterHub tells its single-user servers (and their kernels) their prefix; otherwise
    the server that started this process is found among the running servers by pid.
    """
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if prefix:
        return prefix if prefix.endswith("/") else prefix + "/"
    try:
        import psutil
        from jupyter_server.serverapp import list_running_servers

        ancestors = {p.pid for p in psutil.Process().parents()}
        for server in list_running_servers():
            if server.get("pid") in ancestors:
                return server.get("base_url") or "/"
    except Exception:  # noqa: BLE001 - no server, unreadable runtime dir: raw links then
        return None
    return None


def proxied_dashboard(name: str, link: str | None) -> str | None:
    """The dashboard through the server extension's proxy (same origin as the lab), if under one.

    The browser reaches it wherever the lab is (JupyterHub, a remote or SSH-forwarded server),
    unlike the raw ``http://127.0.0.1:PORT`` link.
    """
    base = jupyter_base_url()
    if not base or not link or urlsplit(link).scheme not in ("http", "https"):
        return None
    path = urlsplit(link).path.lstrip("/") or "status"
    return f"{base.rstrip('/')}/aiinfra/dashboard/{quote(name, safe='')}/{quote(path, safe='/')}"


def dashboard_html(name: str, link: str | None, text: str | None = None) -> str:
    """The dashboard link for notebook output: through the proxy when possible, raw beside it."""
    if not link:
        return "-"
    proxied = proxied_dashboard(name, link)
    if proxied is None:
        return link_html(link, text)
    return f"{link_html(proxied, text or proxied)} (direct: {link_html(link)})"


def link_html(url: str, text: str | None = None) -> str:
    """An escaped link for http(s) URLs; anything else (``javascript:``...) as plain text."""
    shown = html.escape(text if text is not None else url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") and not (url.startswith("/") and not parts.netloc):
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
