"""The one core behind the magic, the CLI and the REST handlers for clusters.

Every function takes validated values and works on any registered cluster from
any process: owned clusters are called directly, others through the control
handler on their scheduler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from ..errors import AiinfraError, NotFoundError, OperationError
from . import host
from .backends import get_backend, resolve_backend
from .info import ClusterInfo, ClusterList, cluster_to_dict
from .registry import Registry, record_alive
from .rpc import CONTROL_OP, scheduler_call, scheduler_identity
from .spec import ClusterSpec

DAEMON_START_TIMEOUT_S = 180.0


def prepare(spec: ClusterSpec, registry: Registry | None = None) -> tuple[ClusterSpec, list[str]]:
    """Resolve ``auto``, pick a free name and run the backend's checks; nothing starts yet."""
    registry = registry or Registry()
    spec, note = resolve_backend(spec)
    if spec.name is None:
        spec = spec.with_changes(name=registry.free_name(spec.backend))
    get_backend(spec.backend).check(spec)
    return spec, [note] if note else []


def start(
    spec: ClusterSpec, owner_kind: str = "kernel", force: bool = False
) -> tuple[ClusterInfo, list[str]]:
    """Start a cluster owned by this process; return it and the notes to show.

    A cuda cluster may not take GPUs this process's JAX already uses, unless ``force``.
    """
    registry = Registry()
    spec, notes = prepare(spec, registry)
    if spec.backend == "cuda" and not force:
        _refuse_jax_overlap(spec)
    record = host.host(spec, owner_kind, registry)
    return _info(record), notes


def _refuse_jax_overlap(spec: ClusterSpec) -> None:
    from ..jax.session import gpus_held_by_jax
    from .cuda import CudaBackend

    held = set(gpus_held_by_jax())
    if not held:
        return
    wanted = CudaBackend().launch_kwargs(spec, death_timeout=0)["CUDA_VISIBLE_DEVICES"].split(",")
    overlap = sorted(held & set(wanted))
    if overlap:
        free = [g for g in wanted if g not in held]
        raise AiinfraError(
            f"gpus: GPU(s) {','.join(overlap)} are used by this kernel's JAX session; "
            f"choose others with --gpus{' (free: ' + ','.join(free) + ')' if free else ''} or add --force",
            field="gpus",
        )


def start_detached(
    spec: ClusterSpec, owner_kind: str = "cli", owner_pid: int | None = None
) -> tuple[ClusterInfo, list[str]]:
    """Start a cluster in a daemon process that outlives the caller (unless ``owner_pid`` dies)."""
    registry = Registry()
    spec, notes = prepare(spec, registry)
    if spec.backend == "address":  # nothing to host: just register it
        return _info(host.host(spec, owner_kind, registry)), notes
    cmd = [sys.executable, "-m", "aiinfra_magics.clusters.daemon", json.dumps(spec.to_dict())]
    cmd += ["--owner-kind", owner_kind]
    if owner_pid is not None:
        cmd += ["--owner-pid", str(owner_pid)]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # detached: no signal from our terminal reaches it
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        text=True,
    )
    try:
        line = _read_first_line(proc, DAEMON_START_TIMEOUT_S)
    finally:
        proc.stdout.close()
    if not line:
        code = proc.poll()
        raise OperationError(
            f"cluster {spec.name!r}: the daemon exited ({code}) before reporting; "
            f"see {registry.root / (spec.name + '.log')}"
        )
    reply = json.loads(line)
    if not reply["ok"]:
        if reply.get("usage"):
            raise AiinfraError(reply["error"])
        raise OperationError(reply["error"])
    return _info(reply["record"]), notes


def _read_first_line(proc: subprocess.Popen, timeout: float) -> str:
    import threading

    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        proc.kill()
        raise OperationError(f"cluster daemon did not start within {timeout:g}s")
    return result[0].strip() if result else ""


def _record(name: str, registry: Registry | None = None) -> dict[str, Any]:
    registry = registry or Registry()
    record = registry.read(name)
    if record is None or not record_alive(record):
        if record is not None:
            registry.prune()
        known = [r["name"] for r in registry.records()]
        raise NotFoundError(
            f"name: no cluster named {name!r}; registered: {', '.join(known) or 'none'}",
            field="name",
        )
    return record


def _info(record: dict[str, Any]) -> ClusterInfo:
    identity = None
    if record.get("status") == "running" and record.get("scheduler_address"):
        try:
            identity = scheduler_identity(record["scheduler_address"], timeout=3)
        except (OSError, TimeoutError):
            identity = None
    return ClusterInfo(cluster_to_dict(record, identity))


def list_clusters() -> ClusterList:
    registry = Registry()
    registry.prune()
    return ClusterList([_info(r) for r in registry.records()])


def status(name: str) -> ClusterInfo:
    return _info(_record(name))


def _control(record: dict[str, Any], action: str, **kwargs: Any) -> None:
    name = record["name"]
    if record.get("owner", {}).get("kind") == "external":
        raise AiinfraError(
            f"name: cluster {name!r} is an external scheduler ({record['scheduler_address']}); "
            f"its workers are managed where it runs, so {action} is not available",
            field="name",
        )
    if host.hosted(name) is not None:  # owned here: call directly
        host.apply(name, action, **kwargs)
        return
    try:
        reply = scheduler_call(
            record["scheduler_address"], CONTROL_OP, timeout=30, action=action, **kwargs
        )
    except (OSError, TimeoutError) as exc:
        raise OperationError(f"cluster {name!r}: scheduler did not answer ({exc})") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        raise OperationError(f"cluster {name!r}: {action} failed: {reply}")


def scale(name: str, n: int) -> ClusterInfo:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise AiinfraError(f"n: got {n!r}; allowed: an integer >= 0", field="n")
    record = _record(name)
    _control(record, "scale", n=n)
    return _wait_for_workers(record, n)


def _wait_for_workers(record: dict[str, Any], n: int, timeout: float = 60.0) -> ClusterInfo:
    """Return once the scheduler sees ``n`` workers, so ``scale`` means "scaled"."""
    deadline = time.monotonic() + timeout
    while True:
        info = _info(record)
        if info.workers == n or info.status != "running" or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def adapt(name: str, minimum: int, maximum: int) -> ClusterInfo:
    if minimum < 0 or maximum < 1 or minimum > maximum:
        raise AiinfraError(
            f"adapt: got {minimum}:{maximum}; allowed: MIN MAX with 0 <= MIN <= MAX and MAX >= 1",
            field="adapt",
        )
    record = _record(name)
    _control(record, "adapt", minimum=minimum, maximum=maximum)
    return status(name)


def stop(name: str) -> str:
    """Stop the cluster (or, for an external scheduler, forget it); return a one-line note."""
    registry = Registry()
    record = _record(name, registry)
    if record.get("owner", {}).get("kind") == "external":
        registry.remove(name)
        return f"forgot external cluster {name!r}; its scheduler at {record['scheduler_address']} keeps running"
    _control(record, "stop")
    if host.hosted(name) is None:
        _wait_gone(registry, name)
    return f"stopped cluster {name!r}"


def _wait_gone(registry: Registry, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = registry.read(name)
        if record is None or not record_alive(record):
            registry.remove(name)
            return
        time.sleep(0.05)
    raise OperationError(f"cluster {name!r} did not stop within {timeout:g}s")


def stop_all() -> list[str]:
    return [stop(info.name) for info in list_clusters()]


def stop_all_owned() -> None:
    host.close_all()


def connect(name: str, timeout: str = "10s") -> Any:
    """A connected synchronous ``distributed.Client`` for the named cluster."""
    from distributed import Client

    record = _record(name)
    try:
        return Client(record["scheduler_address"], timeout=timeout, set_as_default=True)
    except (OSError, TimeoutError) as exc:
        raise OperationError(
            f"cluster {name!r}: cannot connect to {record['scheduler_address']} ({exc})"
        ) from None


def gpus_held_here() -> list[str]:
    """GPU ids held by cuda clusters owned by this process (for JAX's device split)."""
    held: list[str] = []
    for name in host.hosted_names():
        entry = host.hosted(name)
        if entry is not None:
            held.extend(entry.launched.gpus)
    return held


def dashboard(name: str) -> str:
    link = _record(name).get("dashboard_link")
    if not link:
        raise OperationError(f"cluster {name!r} has no dashboard (bokeh missing on its scheduler?)")
    return link
