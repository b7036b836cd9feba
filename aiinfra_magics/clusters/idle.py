"""Clusters that end by themselves, and the history line every ended cluster leaves.

An owned cluster can end without us: its scheduler closes after ``idle_timeout``
(distributed's own check for local, cuda and slurm clusters), the gateway culls it, or
it used its ``--max-gpu-hours`` or held GPUs idle past its waste window with
``--stop-when-wasteful`` (both checked here, on the figures the watcher reads anyway).
The owner's watcher notices within ``WATCH_INTERVAL_S``, records why and what it
used (cost.py's figures) in the history, frees what is left (nannies, the daemon)
and removes the registry record, as a user's stop would.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from . import history

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 1.0


def figures(cluster: Any, ended_at: float | None = None) -> dict[str, Any] | None:
    """The cost report of an owned cluster object (in-process plugin, or the backend's own)."""
    own = getattr(cluster, "aiinfra_figures", None)
    if own is not None:
        return own(ended_at)
    from . import cost  # late: imports distributed

    plugin = cost.plugin_of(getattr(cluster, "scheduler", None))
    return plugin.report() if plugin is not None else None


def ended(cluster: Any) -> tuple[str, float] | None:
    """(why, when) once an owned cluster has ended by itself; None while it runs."""
    own = getattr(cluster, "aiinfra_ended", None)
    if own is not None:
        return own()
    scheduler = getattr(cluster, "scheduler", None)
    status = getattr(getattr(scheduler, "status", None), "name", "")
    if status != "closed":  # "closing": the plugin may not have noted why yet
        return None
    from . import cost

    plugin = cost.plugin_of(scheduler)
    report = plugin.report() if plugin is not None else {}
    return report.get("end_reason") or "scheduler closed", report.get("ended") or time.time()


def over_budget(spec: Any, report: dict[str, Any] | None) -> tuple[str, float] | None:
    """(why, now) once a cluster has used its ``--max-gpu-hours``; None while under it."""
    cap = getattr(spec, "max_gpu_hours", None)
    if not cap or not report or (report.get("gpu_hours") or 0.0) < cap:
        return None
    return f"used {report['gpu_hours']:.4f} GPU-hours, its cap (--max-gpu-hours {cap:g})", (
        time.time()
    )


def too_wasteful(spec: Any, report: dict[str, Any] | None) -> tuple[str, float] | None:
    """(why, now) once a ``--stop-when-wasteful`` cluster's waste warning holds; else None."""
    if not getattr(spec, "stop_when_wasteful", None):
        return None
    from ..metrics.efficiency import wasteful

    reason = wasteful(report)
    return (reason, time.time()) if reason else None


def record_end(record: dict[str, Any], reason: str, report: dict[str, Any] | None) -> None:
    try:
        history.append_history(history.entry(record, reason, report))
    except OSError:  # the cluster is gone either way; losing its line must not stop the close
        logger.warning(
            "could not write the history of cluster %s", record.get("name"), exc_info=True
        )


class Watcher:
    """One thread per process: polls owned clusters and closes those that ended by themselves.

    The host that owns the clusters hands in how to list, find and close them, so this
    module never imports the host (which imports it).
    """

    def __init__(
        self,
        hosted_names: Callable[[], list[str]],
        hosted: Callable[[str], Any],
        close: Callable[..., Any],
    ) -> None:
        self._hosted_names = hosted_names
        self._hosted = hosted
        self._close = close
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="aiinfra-idle", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:  # exit and restart decided under one lock: no cluster goes unwatched
                names = self._hosted_names()
                if not names:
                    self._thread = None
                    return
            for name in names:
                entry = self._hosted(name)
                if entry is None or entry.launched.cluster is None:
                    continue
                try:
                    done = ended(entry.launched.cluster)
                    if done is None:
                        # Also keeps a remote cluster's last figures.
                        report = figures(entry.launched.cluster)
                        done = over_budget(entry.spec, report) or too_wasteful(entry.spec, report)
                    if done is None:
                        continue
                except Exception:  # a gateway that does not answer now may answer next time
                    logger.warning("watching cluster %s failed", name, exc_info=True)
                    continue
                reason, when = done
                with contextlib.suppress(Exception):
                    if (entry.registry.read(name) or {}).get("stop_requested"):
                        reason = "stopped"  # by a user, through the backend's own service
                logger.info("cluster %s ended by itself: %s", name, reason)
                # Its own thread: cleaning up after a vanished scheduler can take distributed
                # 20 s, and the other clusters need watching meanwhile.
                threading.Thread(
                    target=self._close,
                    args=(name,),
                    kwargs={"reason": reason, "ended_at": when},
                    name=f"aiinfra-close-{name}",
                ).start()
            time.sleep(WATCH_INTERVAL_S)
