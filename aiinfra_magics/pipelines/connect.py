"""The cluster a run uses (a registered one, or the run's own pool of threads) and the
per-worker chores around it: pre-warming kernels, draining them at the end."""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

    from .local_pool import LocalPool


@contextmanager
def open_client(
    cluster: str | None, workers: int = 2
) -> Iterator[tuple[Client | LocalPool, dict[str, Any]]]:
    """A client on the named registered cluster, or the run's own pool of ``workers``
    threads in this process (``local_pool.LocalPool``, which answers as a client)."""
    if cluster:
        from ..clusters.manager import ClusterManager

        clusters = ClusterManager()
        # Workers aiinfra started are its own processes (startup.defer_slow_imports may
        # run there); an external scheduler's, or a record that names no owner (one found
        # on a gateway), are someone else's.
        kind = (clusters.record(cluster).get("owner") or {}).get("kind")
        ours = kind is not None and kind != "external"
        client = clusters.connect(cluster)
        try:
            yield (
                client,
                {
                    "name": cluster,
                    "scheduler": client.scheduler.address,
                    "embedded": False,
                    "ours": ours,
                    "env_drift": clusters.env_drift,  # packages unlike this run's
                },
            )
        finally:
            client.close()
        return
    from .local_pool import LocalPool

    # Worker threads of this process, without Dask: every step already runs in its own
    # kernel process, so a scheduler would only queue tasks onto two threads (see
    # local_pool.py for what it cost before the first step).
    pool = LocalPool(workers)
    try:
        yield pool, {"name": None, "scheduler": None, "embedded": True}
    finally:
        pool.close()


def _drain(client: Client, topic: str) -> None:
    try:
        client.run(_drain_worker, topic)
    except Exception:  # a worker gone at the end must not hide the run's result
        pass


# The functions the runner sends to workers live here, not in ``execute``: pickled by
# reference, they would make the runner import papermill (1.6-4 s with jsonschema's
# rfc3987_syntax) only to name them, before a step on another machine could start.


def _drain_worker(topic: str) -> int:
    """On every worker at the end of a run: stop the kernels kept warm or reused for it.

    Only that run's: another run on the same (registered) cluster keeps its own.
    """
    from . import kernel_pool, reuse

    return kernel_pool.drain(run=topic) + reuse.drain(topic)


def _stop_run(topic: str) -> int:
    """On every worker when a run is interrupted: kill its steps' kernels."""
    from . import kernel_pool

    return kernel_pool.stop_run(topic)


def _load_execute(defer: bool) -> None:
    """Import ``execute`` (papermill) on a worker; ``defer``: in a worker aiinfra started,
    first put off rfc3987_syntax's grammars as the CLI does (1.3-4 s, see startup.py)."""
    if defer:
        from ..startup import defer_slow_imports

        defer_slow_imports(runs_user_code=True)
    importlib.import_module(f"{__package__}.execute")


def _run_node(task: dict[str, Any]) -> dict[str, Any]:
    """The Dask task of one node (``execute.run_node``), after the shared-folder check."""
    shared = task.get("shared_check")
    if shared:  # before papermill loads: a worker that cannot see the folder ends the run
        from . import kinds
        from .placement import look, not_shared

        seen = look(shared["folder"], shared["marker"], shared["token"])
        if seen["problem"]:
            from .local_pool import current_worker

            address = current_worker().address
            now = time.time()
            return {
                **{k: v for k, v in seen.items() if k != "problem" and v},
                "name": task["name"],
                "worker": address,
                "status": "failed",
                "kind": kinds.NOT_SHARED,
                "error": not_shared(address, seen, shared["folder"]),
                "start": now,
                "end": now,
            }
    _load_execute(bool(task.get("defer_imports")))
    from .execute import run_node

    return run_node(task)


async def _prewarm(
    kernel: str, cwd: str, defer: bool = False, topic: str = "", dask_worker: Any = None
) -> None:
    """On every worker before the first step: start a kernel, and load papermill meanwhile.

    The kernel starts in its own process while this worker imports ``execute``
    (papermill, nbformat, jsonschema) on a helper thread, so the first step waits for
    the longer of the two rather than their sum; the worker's event loop stays free.
    """
    import asyncio

    from . import kernel_pool

    owner = dask_worker.address if dask_worker else ""
    kernel_pool.warm(kernel, cwd, 1, owner=owner, run=topic)
    await asyncio.to_thread(_load_execute, defer)


def _runner_identity() -> dict[str, Any]:
    """Which process runs this run, so a reader can tell a killed run from a live one."""
    import os
    import platform

    import psutil

    return {
        "host": platform.node(),
        "pid": os.getpid(),
        "started": psutil.Process().create_time(),
    }
