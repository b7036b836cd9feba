"""What ended clusters used: ``history.jsonl`` in the aiinfra home, and the figures' forms.

One JSON object a line (private to the user), appended by the owner when a
cluster ends (stopped, idle timeout, culled by its gateway); read by
``aiinfra cluster history``. Pure functions only: no dask import.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..metrics.rightsize import cluster_suggestion

FIGURES = ("worker_hours", "core_hours", "gpu_hours", "memory_gb_hours")
#: Measured figures a cost report carries as they are (efficiency.py computes them).
MEASURED = (
    "cpu_efficiency", "gpu_efficiency", "peak_memory", "memory_limit", "peak_memory_fraction",
    "peak_busy_workers", "peak_workers", "waste",
)  # fmt: skip


def carried_to(report: dict[str, Any] | None, until: float) -> dict[str, Any] | None:
    """A report taken earlier, carried on at its rates to ``until`` (a remote scheduler's end)."""
    if not isinstance(report, dict):
        return None
    gap_h = max(0.0, until - float(report.get("as_of") or until)) / 3600.0
    now = report.get("now") or {}
    rates = {
        "worker_hours": "workers",
        "core_hours": "cores",
        "gpu_hours": "gpus",
        "memory_gb_hours": "memory_gb",
    }
    out = dict(report)
    for key, rate in rates.items():
        out[key] = float(report.get(key) or 0.0) + gap_h * float(now.get(rate) or 0.0)
    out["as_of"] = out["ended"] = until
    return out


def rounded(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The figures a user reads (4 decimals of an hour is a third of a second)."""
    if not isinstance(report, dict):
        return None
    out = {key: round(float(report.get(key) or 0.0), 4) for key in FIGURES}
    out["workers_now"] = (report.get("now") or {}).get("workers", 0)
    for key in ("since", "as_of", "ended", "end_reason", "idle_since", "idle_timeout"):
        out[key] = report.get(key)
    # Used beside held (metrics/efficiency.py), where the workers were sampled.
    if "cpu_used_hours" in report:
        for key in ("cpu_used_hours", "gpu_used_hours"):
            out[key] = round(float(report.get(key) or 0.0), 4)
        for key in MEASURED:
            out[key] = report.get(key)
        out["warnings"] = list(report.get("warnings") or [])
    return out


def entry(record: dict[str, Any], reason: str, report: dict[str, Any] | None) -> dict[str, Any]:
    """One line of ``cluster history``: who, how long, why it ended, what it used."""
    return {
        "name": record.get("name"),
        "backend": record.get("backend"),
        "scheduler_address": record.get("scheduler_address"),
        "created": record.get("created"),
        "ended": (report or {}).get("ended") or time.time(),
        "reason": reason,
        "cost": rounded(report),
        "suggestion": cluster_suggestion(rounded(report)),  # "peak 2 of 8 workers busy; ..."
    }


def history_path(root: Path | None = None) -> Path:
    from ..paths import aiinfra_home

    return (root or aiinfra_home()) / "history.jsonl"


def append_history(entry: dict[str, Any], root: Path | None = None) -> None:
    """Append one ended cluster (a JSON line; the file is the user's alone)."""
    path = history_path(root)
    line = json.dumps(entry, sort_keys=True) + "\n"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line  # a line cut by a crash stays alone, unread
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_history(root: Path | None = None) -> list[dict[str, Any]]:
    path = history_path(root)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a crash mid-write; the others stand
    return entries
