"""The start barrier of ``%%aiinfra spmd``: every process checks in before JAX joins them.

``jax.distributed.initialize`` waits for every process of the program: one that never
comes (a host that hangs, a worker that is gone, an import that fails) leaves the
others hanging on "Did you run your code on all TPU hosts?" (jax #19971). So the
processes first check in here, through their workers' Dask events:

1. ``started``: the worker began the task (with its GPU facts, and process 0 a port for
   JAX's coordinator);
2. ``joined``: the fresh interpreter imported JAX and waits for its orders.

Only when all have joined does the notebook decide the platform and each process's
GPU (every process must agree) and release them together. A process that has not
joined within ``--join-timeout`` fails the cell with one line naming the processes,
their hosts and why where it is known; every process is then stopped. Nothing here
asks a worker anything before the barrier: a hung host cannot hang the notebook.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import AiinfraError, OperationError

if TYPE_CHECKING:
    from .spmd_absent import Absentees

DEFAULT_JOIN_TIMEOUT_S = 60.0
_POLL_S = 0.05
_WORKER_CHECK_S = 1.0


def host_of(address: str) -> str:
    """``tcp://10.0.0.2:4100`` -> ``10.0.0.2``."""
    rest = address.split("://", 1)[-1]
    return rest.rsplit(":", 1)[0].strip("[]")


def first_line(text: str | None) -> str:
    lines = [line.strip() for line in str(text or "").strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def why_missing(state: dict[str, Any] | None, address: str, alive: bool) -> str:
    """Why a process has not joined, from what its worker reported."""
    if not alive:
        return f"its worker {address} left the cluster"
    if not state:
        return f"its worker {address} never started it (unresponsive or busy)"
    return "it started but did not check in (still starting Python and JAX?)"


def why_failed(outcome: dict[str, Any]) -> str:
    """Why a process ended before joining: killed, an import error (its first line), ..."""
    rc = outcome.get("rc")
    if isinstance(rc, int) and rc < 0 and not outcome.get("traceback"):
        return f"killed by signal {-rc}"
    return first_line(outcome.get("error")) or f"exited with status {rc}"


def describe(
    pids: list[int],
    workers: list[str],
    reasons: dict[int, str],
    hosts: Mapping[int, str] | None = None,
) -> str:
    """``process 1 on 10.0.0.2 (why)`` for each, joined by ``;``.

    ``hosts``: where a process without a worker (``workers[p]`` empty) should have run.
    """
    hosts = hosts or {}
    return "; ".join(
        f"process {p} on {hosts.get(p) or host_of(workers[p])} ({reasons[p]})" for p in pids
    )


def wait_joined(
    client: Any,
    futures: list[Any],
    workers: list[str],
    states: dict[int, dict[str, Any]],
    flush: Callable[[], None],
    join_timeout: float,
    outcome: Callable[[Any], dict[str, Any]],
    absent: Absentees | None = None,
) -> None:
    """Return once every process has joined; else raise OperationError naming the others.

    ``states`` fills as the workers' events arrive (``started``, ``joined``); the caller
    stops every process when this raises. ``absent``: processes whose worker is missing
    (``workers[p]`` and ``futures[p]`` empty until it comes; spmd_absent.py).
    """
    start = time.monotonic()
    next_check = start + _WORKER_CHECK_S
    alive = set(workers)
    while True:
        flush()
        joined = {p for p, s in states.items() if s.get("joined")}
        if len(joined) == len(workers):
            return
        failed = {
            p: outcome(f)
            for p, f in enumerate(futures)
            if p not in joined and f is not None and f.done()
        }  # a task that ended before joining
        if failed:
            pids = sorted(failed)
            reasons = {p: why_failed(failed[p]) for p in pids}
            raise OperationError(
                f"spmd: {describe(pids, workers, reasons)} failed before joining; "
                "every process was stopped"
            )
        now = time.monotonic()
        if now > next_check:
            # A task pinned to a worker that died never runs (its restart has a new address).
            info = client.scheduler_info(n_workers=-1)["workers"]
            alive = set(info)
            if absent is not None:
                absent.adopt(info)  # a missing worker that came (a nanny's restart): start it
            gone = [p for p, w in enumerate(workers) if p not in joined and w and w not in alive]
            if gone:
                reasons = {p: why_missing(states.get(p), workers[p], False) for p in gone}
                raise OperationError(
                    f"spmd: {describe(gone, workers, reasons)} did not join; "
                    "every process was stopped"
                )
            next_check = now + _WORKER_CHECK_S
        if now - start > join_timeout:
            missing = [p for p in range(len(workers)) if p not in joined]
            reasons = {
                p: absent.reason(p)
                if absent is not None and p in absent
                else why_missing(states.get(p), workers[p], workers[p] in alive)
                for p in missing
            }
            hosts = {p: absent.host(p) for p in missing if absent is not None and p in absent}
            raise OperationError(
                f"spmd: {describe(missing, workers, reasons, hosts)} did not join within "
                f"{join_timeout:g}s; every process was stopped"
            )
        time.sleep(_POLL_S)


def placement(
    workers: list[str],
    facts: dict[int, dict[str, Any]],
    platform: str,
    say: Callable[[str], None],
) -> tuple[str, list[str | None]]:
    """The platform for the whole program and each process's GPU.

    Decided here, once, from what each worker reported at the barrier, because every
    process must agree: a mix of GPU and CPU processes cannot form one JAX program. GPU
    needs one distinct GPU per process (NCCL refuses two ranks on one device): a
    Dask-CUDA worker's own GPU, else the worker's rank on its host.
    """
    if platform == "cpu":
        return "cpu", [None] * len(workers)
    on_tpu = [bool(facts[p].get("tpu")) for p in range(len(workers))]
    if platform == "tpu" or (platform == "auto" and all(on_tpu)):
        if not all(on_tpu):
            where = host_of(workers[on_tpu.index(False)])
            raise AiinfraError(
                f"platform: got 'tpu' but {where} is not a TPU VM host", field="platform"
            )
        # A TPU slice: JAX's own cluster detection (the TPU metadata) names the coordinator
        # and each process; spmd_child sets only the timeout it cannot know.
        return "tpu", [None] * len(workers)
    ranks: dict[str, itertools.count] = {}
    gpus: list[str | None] = []
    problem = None
    for pid, address in enumerate(workers):
        f = facts[pid]
        rank = next(ranks.setdefault(host_of(address), itertools.count()))
        if not f["gpus"] or not f["plugin"]:
            problem = problem or (
                f"worker {address} has no GPU"
                if not f["gpus"]
                else f"worker {address}: JAX has no CUDA plugin"
            )
        elif f["own_gpu"] is None and rank >= f["gpus"]:
            problem = (
                problem
                or f"host {host_of(address)} has {f['gpus']} GPU(s) for {rank + 1}+ processes"
            )
        gpus.append(f["own_gpu"] or str(rank))
    per_host = [(host_of(a), g) for a, g in zip(workers, gpus)]
    if problem is None and len(set(per_host)) < len(per_host):
        problem = "two processes would share one GPU"
    if problem is None:
        return "gpu", gpus
    if platform == "gpu":
        raise AiinfraError(
            f"platform: got 'gpu' but {problem}; use --platform cpu", field="platform"
        )
    if any(f["gpus"] for f in facts.values()):
        say(f"spmd: running on CPU: {problem}")
    return "cpu", [None] * len(workers)


def release(
    client: Any,
    workers: list[str],
    states: dict[int, dict[str, Any]],
    run_id: str,
    platform: str,
    say: Callable[[str], None],
) -> None:
    """Every process joined: decide the platform and GPUs together, then let them go."""
    from . import spmd_worker

    facts = {p: states[p].get("facts") or {} for p in range(len(workers))}
    platform, gpus = placement(workers, facts, platform, say)
    port = states[0]["port"]
    host = host_of(workers[0])
    coordinator = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    orders = {
        str(pid): {"platform": platform, "gpu": gpus[pid], "coordinator": coordinator}
        for pid in range(len(workers))
    }
    tell(client, workers, spmd_worker.release_soon, run_id, orders)


def tell(client: Any, workers: list[str], function: Callable[..., Any], *args: Any) -> None:
    """Send ``function(*args)`` to ``workers`` without waiting for any of them.

    ``client.run`` waits until every worker has answered, even with ``wait=False``; a worker
    that hangs would hang the notebook with it. A worker that never answers only holds
    this thread (and ``_wait`` or the barrier notices it).
    """
    if not workers:
        return

    def send() -> None:
        try:
            client.run(function, *args, workers=workers, wait=False, on_error="ignore")
        except Exception:  # noqa: BLE001 - the client closed or a worker went: nothing to stop
            pass

    threading.Thread(target=send, name="aiinfra-spmd-tell", daemon=True).start()
