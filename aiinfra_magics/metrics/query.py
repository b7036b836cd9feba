"""A registered cluster's host series and latest samples, asked of its scheduler from any process.

The server (REST), ``cluster status`` and the magic ask here; the answer comes from
the scheduler plugin's ``aiinfra_metrics`` handler (plugins.py) over one scheduler
RPC, through a gateway's TLS proxy for gateway clusters. The browser never talks
to workers or schedulers. Import-light: distributed only inside the calls.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError, OperationError

QUERY_OP = "aiinfra_metrics"  # plugins.QUERY_OP, without importing distributed here
TIMEOUT_S = 10.0
#: Why a cluster has no series: its scheduler runs no metrics plugin (started before this
#: version, or an attached scheduler that refused plugins).
NO_PLUGIN = "this cluster's scheduler runs no aiinfra metrics plugin; no host figures"
SINCE_ALLOWED = "a Unix time in seconds (a number >= 0), e.g. the as_of of the previous reply"


def parse_since(value: Any) -> float | None:
    """``since`` as a query gives it: None, or a finite number >= 0.

    Raises:
        InputError: naming ``since`` and what is allowed.
    """
    if value is None or value == "":
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise InputError(f"since: got {str(value)[:40]!r}; allowed: {SINCE_ALLOWED}", field="since")
    return number


def _where(record: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """(scheduler address, TLS connection arguments) of a record's scheduler."""
    if record.get("backend") == "gateway":  # its scheduler is reached through the gateway's proxy
        from ..clusters.gateway import where
        from ..clusters.gateway_client import opened

        entry, name = where(record)
        with opened(entry["address"], entry.get("proxy_address"), entry.get("auth")) as gw:
            report = gw.get_cluster(name)
        if report.scheduler_address is None or report.security is None:
            raise OSError("the gateway reports no scheduler for it")
        return report.scheduler_address, report.security.get_connection_args("client")
    return record["scheduler_address"], None


def scheduler_metrics(
    record: dict[str, Any], since: float | None = None, latest: bool = False
) -> dict[str, Any]:
    """The cluster's per-host series (after ``since``) or latest samples, as its scheduler
    keeps them: ``{"name", "hosts", "interval", "ring_size", "as_of", "usage"}``.

    Raises:
        OperationError: the scheduler did not answer.
    """
    from ..clusters.rpc import scheduler_call

    name = record.get("name")
    try:
        address, args = _where(record)
        reply = scheduler_call(
            address, QUERY_OP, timeout=TIMEOUT_S, connection_args=args, since=since, latest=latest
        )
    except (OSError, TimeoutError) as exc:
        raise OperationError(f"cluster {name!r}: its scheduler did not answer ({exc})") from None
    if not isinstance(reply, dict):  # an unknown handler answers None
        return {"name": name, "hosts": [], "note": NO_PLUGIN}
    return {"name": name, **reply}


def latest_hosts(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Each host's latest sample and its GPUs, for ``cluster status``; [] when none can be had."""
    if record.get("status") != "running" or not record.get("scheduler_address"):
        return []
    try:
        return list(scheduler_metrics(record, latest=True).get("hosts") or [])
    except (OperationError, OSError, TimeoutError):
        return []


def _rate(n: float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GB/s", 1e9), ("MB/s", 1e6), ("kB/s", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B/s"


def _gib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**30:.1f}"


def host_line(host: dict[str, Any]) -> str:
    """``cpu 45%, memory 3.1/16.0 GiB, net 1.2 MB/s out 0.3 MB/s in, disk ...; GPU 0 97% ...``."""
    latest = host.get("latest") or {}
    figures = latest.get("host") or {}
    parts = []
    if figures:
        cpu = figures.get("cpu_percent")
        parts.append(f"cpu {'-' if cpu is None else f'{cpu:.0f}%'}")
        parts.append(
            f"memory {_gib(figures.get('memory_used'))}/{_gib(figures.get('memory_total'))} GiB"
        )
        parts.append(
            f"net {_rate(figures.get('net_sent'))} out {_rate(figures.get('net_recv'))} in"
        )
        parts.append(
            f"disk {_rate(figures.get('disk_read'))} read {_rate(figures.get('disk_write'))} written"
        )
    for gpu in latest.get("gpus") or []:
        if gpu.get("error"):
            parts.append(f"GPU {gpu.get('index')} unreadable")
            continue
        util = gpu.get("utilization")
        text = f"GPU {gpu.get('index')} {'-' if util is None else f'{util:.0f}%'}"
        text += f" {_gib(gpu.get('memory_used'))}/{_gib(gpu.get('memory_total'))} GiB"
        if gpu.get("power_watts") is not None:
            text += f" {gpu['power_watts']:.0f} W"
        if gpu.get("mig"):
            text += f" ({len(gpu['mig'])} MIG slices)"
        parts.append(text)
    if not latest:
        parts.append("no sample yet")
    workers = host.get("workers")
    return f"{workers} worker{'s' if workers != 1 else ''}: " + ", ".join(parts)


def host_rows(hosts: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    """One row per host for ``cluster status``'s text and HTML."""
    return [(f"host {h.get('host')}", host_line(h)) for h in hosts or []]
