"""Clusters owned by this process (a kernel, a CLI daemon, the jupyter server).

The owner keeps the cluster object; every other process controls it through a
handler installed on the cluster's own scheduler (``aiinfra_control``), so no
extra port or process is needed. Owned clusters close when this process exits
normally (kernel shutdown or restart); after a SIGKILL the in-process scheduler
dies with us and the workers close on the lost connection, or at the latest
after ``death_timeout``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from ..errors import AiinfraError, OperationError
from . import idle
from .backends import Launched, get_backend
from .registry import DamagedRecord, Registry, this_process
from .rpc import CONTROL_OP
from .spec import ClusterSpec

logger = logging.getLogger(__name__)

DEFAULT_DEATH_TIMEOUT_S = 60.0
KEEPER_INTERVAL_S = 2.0


def death_timeout() -> float:
    """Seconds a worker waits for a vanished scheduler; ``AIINFRA_DEATH_TIMEOUT`` overrides."""
    value = os.environ.get("AIINFRA_DEATH_TIMEOUT")
    try:
        return float(value) if value else DEFAULT_DEATH_TIMEOUT_S
    except ValueError:
        return DEFAULT_DEATH_TIMEOUT_S


@dataclass
class Hosted:
    spec: ClusterSpec
    launched: Launched
    closed: threading.Event
    record: dict[str, Any]
    registry: Registry
    #: What ``cluster.adapt()`` returned (distributed's Adaptive): its public ``stop()`` ends
    #: adaptivity on a scale, leaving the cluster's own state (and its widget) intact.
    adaptive: Any = None


_HOSTED: dict[str, Hosted] = {}
_LOCK = threading.Lock()


def hosted(name: str) -> Hosted | None:
    return _HOSTED.get(name)


def hosted_names() -> list[str]:
    return list(_HOSTED)


def host(
    spec: ClusterSpec, owner_kind: str, registry: Registry | None = None
) -> tuple[Launched, dict[str, Any]]:
    """Start ``spec`` in this process; return what the backend launched and its record.

    ``spec`` is prepared (backend resolved, name set, checked) by the caller:
    ``ClusterManager.prepare`` here, or the parent of a cluster daemon.
    """
    registry = registry or Registry()
    backend = get_backend(spec.backend)
    record: dict[str, Any] = {
        "name": spec.name,
        "backend": spec.backend,
        "spec": spec.to_dict(),
        "owner": {**this_process(), "kind": owner_kind if backend.manages_workers else "external"},
        "created": time.time(),
        "scheduler_address": spec.option("address"),
        "dashboard_link": None,
        "gpus": [],
        "adapt": spec.to_dict()["adapt"],
    }
    registry.reserve(record)
    try:
        launched = backend.launch(spec, death_timeout=death_timeout())
    except (AiinfraError, OperationError):
        registry.remove(spec.name)
        raise
    except Exception as exc:  # the backend's own failure: report it in one line
        registry.remove(spec.name)
        raise OperationError(
            f"cluster {spec.name!r} failed to start: {type(exc).__name__}: {exc}"
        ) from exc
    adaptive = None
    try:
        if launched.cluster is not None:
            _install_control(spec.name, launched)
            if spec.adapt is not None:
                adaptive = launched.cluster.adapt(minimum=spec.adapt[0], maximum=spec.adapt[1])
        record.update(
            status="running",
            scheduler_address=launched.scheduler_address,
            dashboard_link=launched.dashboard_link,
            gpus=launched.gpus,
        )
        registry.write(record)
        if launched.cluster is not None:  # external schedulers outlive us: not ours to close
            with _LOCK:
                _HOSTED[spec.name] = Hosted(
                    spec, launched, threading.Event(), record, registry, adaptive
                )
            _keeper.ensure_running()
            _watcher.ensure_running()  # notices a cluster that stops itself (idle timeout)
    except BaseException:
        _close_launched(launched)
        registry.remove(spec.name)
        raise
    return launched, record


def _install_control(name: str, launched: Launched) -> None:
    """Let other processes scale, adapt and stop this cluster through its scheduler."""
    scheduler = getattr(launched.cluster, "scheduler", None)
    if scheduler is None or not hasattr(scheduler, "handlers"):
        return

    def control(action: str = "", **kwargs: Any) -> dict[str, Any]:
        try:
            if action == "stop":
                # Close from another thread: closing blocks on this very event loop.
                threading.Thread(target=apply, args=(name, action), daemon=False).start()
            else:
                apply(name, action, **kwargs)
        except Exception as exc:  # reported to the caller, who raises it there
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True}

    scheduler.handlers[CONTROL_OP] = control


def apply(name: str, action: str, **kwargs: Any) -> None:
    """Carry out one control action on an owned cluster (local callers and the handler alike)."""
    if action == "scale":
        scale(name, int(kwargs["n"]))
    elif action == "adapt":
        adapt(name, int(kwargs["minimum"]), int(kwargs["maximum"]))
    elif action == "stop":
        close(name)
    else:
        raise ValueError(f"unknown action {action!r}")


def scale(name: str, n: int) -> None:
    entry = _HOSTED[name]
    cluster = entry.launched.cluster
    # An explicit size ends adaptivity, as distributed's own widget does: through the
    # Adaptive's public stop() (its callback goes; the cluster then reports "Manual").
    if entry.adaptive is not None and callable(getattr(entry.adaptive, "stop", None)):
        entry.adaptive.stop(reason="scaled to a fixed size")
    entry.adaptive = None
    cluster.scale(n)
    _remember(entry, f"scaled to {n} workers", adapt=None)


def adapt(name: str, minimum: int, maximum: int) -> None:
    entry = _HOSTED[name]
    entry.adaptive = entry.launched.cluster.adapt(minimum=minimum, maximum=maximum)
    _remember(
        entry, f"adapting between {minimum} and {maximum} workers", adapt=f"{minimum}:{maximum}"
    )


def _remember(entry: Hosted, done: str, **changes: Any) -> None:
    """Record a change already made; if the registry cannot be written, say both halves."""
    entry.record.update(changes)
    try:
        entry.registry.update(entry.spec.name, **changes)
    except OSError as exc:
        raise OperationError(
            f"cluster {entry.spec.name!r}: {done}, but its registry record could not be "
            f"updated ({exc.strerror or exc}); other doors show the old setting until it is"
        ) from None


def close(
    name: str,
    registry: Registry | None = None,
    reason: str = "stopped",
    ended_at: float | None = None,
) -> None:
    """Close an owned cluster, note why in the history and drop its record; safe to call twice.

    ``ended_at``: the cluster ended by itself then (idle.py); its record goes first,
    as cleaning up after a scheduler that is gone can take distributed a while.
    """
    with _LOCK:
        entry = _HOSTED.pop(name, None)
    if entry is None:
        return
    registry = registry or entry.registry
    report, noted = None, False
    try:
        with contextlib.suppress(Exception):  # a remote scheduler's figures: before it goes
            report = idle.figures(entry.launched.cluster, ended_at)
        if ended_at is not None:
            registry.remove(name)
            idle.record_end(entry.record, reason, report)
            noted = True
        _close_launched(entry.launched)
        with contextlib.suppress(Exception):  # an in-process scheduler's: final once closed
            report = idle.figures(entry.launched.cluster, ended_at or time.time()) or report
    finally:
        if not noted:
            registry.remove(name)
            idle.record_end(entry.record, reason, report)
        entry.closed.set()


def _close_clients(address: str) -> None:
    """Close this process's Clients of a cluster about to go, so they don't retry noisily.

    distributed has no public way to list a process's Clients (``default_client`` gives one),
    so this reads its private registry of them; tests/clusters/test_distributed_private_api.py fails,
    naming it, on the release that removes it. Without it only the closing stays noisy.
    """
    try:
        from distributed.client import _global_clients
    except ImportError:
        return
    for client in list(_global_clients.values()):
        if getattr(client.scheduler, "address", None) == address:
            with contextlib.suppress(Exception):
                client.close(timeout=5)


def _close_launched(launched: Launched) -> None:
    if launched.cluster is None:
        return
    _close_clients(launched.scheduler_address)
    scheduler = getattr(launched.cluster, "scheduler", None)
    if getattr(getattr(scheduler, "status", None), "name", "") == "closed":
        # Ended by itself (idle timeout): asking the dead scheduler to terminate would wait out
        # the connect timeout (> 20 s) and skip the rest of the close. Jobs/workers still go.
        launched.cluster.shutdown_scheduler = False
    try:
        launched.cluster.close(timeout=20)
    except Exception:  # closing must go on for the others; log for the curious
        logger.warning("closing cluster at %s failed", launched.scheduler_address, exc_info=True)


# Watches this process's clusters; told how to list, find and close them.
_watcher = idle.Watcher(hosted_names, hosted, close)


def gpus_held_here() -> list[str]:
    """GPU ids held by cuda clusters owned by this process (for JAX's device split)."""
    held: list[str] = []
    for name in hosted_names():
        entry = hosted(name)
        if entry is not None:
            held.extend(entry.launched.gpus)
    return held


def close_all() -> None:
    for name in hosted_names():
        close(name)


class _RecordKeeper:
    """Rewrites the records of clusters this process hosts if someone damaged or removed them.

    A truncated record must not hide a cluster that keeps running: within
    ``KEEPER_INTERVAL_S`` its owner puts the record back, so every door finds it
    (and can stop it) again.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        with _LOCK:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="aiinfra-record-keeper", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(KEEPER_INTERVAL_S)
            with _LOCK:
                entries = list(_HOSTED.values())
            if not entries:
                return
            for entry in entries:
                self.repair(entry)

    @staticmethod
    def repair(entry: Hosted) -> None:
        if entry.closed.is_set():
            return
        try:
            current = entry.registry.load(entry.spec.name)
        except DamagedRecord:
            current = None
        except OSError:
            return
        if current is None and not entry.closed.is_set():
            with contextlib.suppress(OSError):
                entry.registry.write(entry.record)


_keeper = _RecordKeeper()
atexit.register(close_all)
