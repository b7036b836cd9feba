"""Clusters owned by this process (a kernel, a CLI daemon, the jupyter server).

The owner keeps the cluster object; every other process controls it through a
handler installed on the cluster's own scheduler (``aiinfra_control``), so no
extra port or process is needed. Owned clusters close when this process exits
normally (kernel shutdown or restart); after a SIGKILL the in-process scheduler
dies with us and the workers close on the lost connection, or at the latest
after ``death_timeout``.

The owner also publishes what it sees into the cluster's registry record
(``observed``: workers, threads, memory, cost; ``heartbeat``: when), every
``KEEPER_INTERVAL_S`` and soon after the number of workers changes, so listings
read records instead of asking schedulers. Every registry write here is a
read-modify-write under the registry's lock: a field another process wrote
meanwhile (``stop_requested``) is never lost.
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

from ..errors import AiinfraError, AiinfraException, OperationError
from . import env_check, idle
from .backends import Launched, get_backend
from .info import observed_state
from .registry import Registry, this_process
from .rpc import CONTROL_OP
from .spec import ClusterSpec

logger = logging.getLogger(__name__)

DEFAULT_DEATH_TIMEOUT_S = 60.0
#: The owner publishes its clusters' state at least this often (registry.STALE_AFTER_S: 30 s).
KEEPER_INTERVAL_S = 2.0
#: ... and looks this often (no I/O) for a change in the number of workers to publish at once.
KEEPER_POLL_S = 0.25
#: How long the owner waits for its own scheduler's figures.
OBSERVE_TIMEOUT_S = 3.0


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
    #: When the keeper last published, and what it saw then (see ``_RecordKeeper``).
    published_at: float = 0.0
    published_sign: Any = None


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
        # Before anyone uses it: the packages against ours (raises on a breaking mismatch).
        record["env_drift"] = env_check.at_start(spec, launched)
        launched.notes.extend(record["env_drift"])
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
        if launched.cluster is None:  # an external scheduler: nobody here publishes for it
            registry.merge(record)
        else:  # external schedulers outlive us: not ours to close
            entry = Hosted(spec, launched, threading.Event(), record, registry, adaptive)
            # Running and observed in one write: no listing sees it running without figures.
            _publish(entry, registered=False)
            with _LOCK:
                _HOSTED[spec.name] = entry
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
        entry.registry.update(entry.spec.name, **changes)  # under the registry's lock
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


def _sign(entry: Hosted) -> Any:
    """What the keeper compares between polls, without I/O: the workers the cluster object
    knows of (distributed keeps ``scheduler_info`` current) and the adapt range."""
    try:
        workers = len((getattr(entry.launched.cluster, "scheduler_info", None) or {})["workers"])
    except (KeyError, TypeError):
        workers = None
    return workers, entry.record.get("adapt")


def _publish(entry: Hosted, registered: bool = True) -> None:
    """Read the cluster's figures from its scheduler and write them into its record.

    The write merges under the registry's lock, so it keeps what others wrote meanwhile and
    puts a removed or damaged record back (a truncated record must not hide a running
    cluster); ``registered``: only while this process still hosts it, so a record that
    ``close`` removed is never written again.
    """
    sign = _sign(entry)
    try:
        identity, figures = get_backend(entry.spec.backend).observe(entry.record, OBSERVE_TIMEOUT_S)
    except (OSError, TimeoutError, AiinfraException):
        identity = figures = None
    except Exception:  # a backend's own failure: published as "did not answer"
        logger.debug("observing cluster %s failed", entry.spec.name, exc_info=True)
        identity = figures = None
    state = observed_state(identity, figures)
    with entry.registry.lock():
        if registered and (hosted(entry.spec.name) is not entry or entry.closed.is_set()):
            return
        entry.registry.merge({**entry.record, "observed": state, "heartbeat": state["at"]})
    entry.published_at, entry.published_sign = time.monotonic(), sign


class _RecordKeeper:
    """Publishes the state of the clusters this process hosts into their records, every
    ``KEEPER_INTERVAL_S`` and within ``KEEPER_POLL_S`` of a change in their workers; the
    same write puts back a record someone damaged or removed, so every door finds the
    cluster (and can stop it) again.
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
            time.sleep(KEEPER_POLL_S)
            with _LOCK:  # exit and restart decided under one lock: no cluster goes unpublished
                entries = list(_HOSTED.values())
                if not entries:
                    self._thread = None
                    return
            for entry in entries:
                due = time.monotonic() - entry.published_at >= KEEPER_INTERVAL_S
                if due or _sign(entry) != entry.published_sign:
                    with contextlib.suppress(OSError):  # a full disk: try again next time
                        _publish(entry)


_keeper = _RecordKeeper()
atexit.register(close_all)
