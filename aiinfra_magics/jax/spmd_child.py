"""One process of an SPMD cell: a fresh interpreter launched by a Dask worker.

JAX can join a multi-process program (``jax.distributed.initialize``) only once
per process and only before its backend starts, so every cell runs in a new
interpreter rather than in the long-lived worker. The job arrives as JSON on
stdin; the cell's stdout and stderr go to our stdout, which the worker streams
back; the outcome (value or traceback) is pickled to ``job["result_path"]``.
"""

from __future__ import annotations

import ast
import json
import linecache
import os
import pickle
import sys
import threading
import time
import traceback
from typing import Any

CELL_FILE = "<spmd cell>"


def _portable(value: Any) -> Any:
    """Replace jax.Arrays by numpy so the value can travel to the notebook.

    A global array spanning processes cannot be gathered without a collective
    (which would hang if another process took a different path), so each process
    returns what it holds: the whole value when replicated, else its shards.
    """
    import jax
    import numpy as np

    def convert(x: Any) -> Any:
        if not isinstance(x, jax.Array):
            return x
        if x.is_fully_addressable:
            return np.asarray(x)
        if x.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        return [np.asarray(shard.data) for shard in x.addressable_shards]

    return jax.tree.map(convert, value)


def _run_code(code: str, namespace: dict[str, Any]) -> Any:
    """Run the cell; the value of a final expression statement is returned."""
    linecache.cache[CELL_FILE] = (len(code), None, code.splitlines(True), CELL_FILE)
    tree = ast.parse(code, filename=CELL_FILE)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, CELL_FILE, "exec"), namespace)
    return eval(compile(last, CELL_FILE, "eval"), namespace) if last is not None else None


def _cell_traceback(exc: BaseException) -> str:
    """The traceback from the cell's first frame on (this module's frames say nothing)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != CELL_FILE:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def _write(path: str, outcome: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(outcome, fh)
    os.replace(tmp, path)


def _setup(job: dict[str, Any]) -> dict[str, Any]:
    import jax

    if job["platform"] == "tpu":
        # A TPU slice: JAX's own cluster detection (the TPU VM metadata) knows the
        # coordinator, the process count and this host's id; only the timeout is ours.
        # Not run on a TPU here (none reachable): see ssh_hosts.py.
        jax.config.update("jax_platforms", "tpu")
        jax.distributed.initialize(initialization_timeout=job["init_timeout"])
        import jax.numpy as jnp

        return {
            "__name__": "__main__",
            "jax": jax,
            "jnp": jnp,
            "process_id": jax.process_index(),
            "num_processes": jax.process_count(),
            "mesh": jax.make_mesh((jax.device_count(),), ("data",)),
        }
    if job["platform"] == "cpu":
        jax.config.update("jax_platforms", "cpu")
        # XLA's CPU client has no cross-process collectives of its own; gloo provides them.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.config.update("jax_num_cpu_devices", job["cpu_devices"])
    else:
        jax.config.update("jax_platforms", "cuda")
    jax.distributed.initialize(
        coordinator_address=job["coordinator"],
        num_processes=job["num_processes"],
        process_id=job["process_id"],
        cluster_detection_method="deactivate",  # we name everything; no SLURM/MPI guessing
        initialization_timeout=job["init_timeout"],
    )
    import jax.numpy as jnp

    return {
        "__name__": "__main__",
        "jax": jax,
        "jnp": jnp,
        "process_id": job["process_id"],
        "num_processes": job["num_processes"],
        "mesh": jax.make_mesh((jax.device_count(),), ("data",)),
    }


def _fail(path: str, error: str, trace: str) -> int:
    """Report and leave at once: a normal exit would run JAX's atexit shutdown,
    a barrier that waits for every other process of the program."""
    _write(path, {"ok": False, "error": error, "traceback": trace})
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


PARENT_ENV = "AIINFRA_SPMD_PARENT"  # set by spmd_worker._child_env
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Die when the worker that launched us dies, however it dies.

    We run in our own session (so a stop can kill our whole group), so nothing
    else would stop us when a worker is SIGKILLed. On Linux the kernel sends us
    SIGKILL when the parent thread exits (PR_SET_PDEATHSIG; the worker's thread
    waits on us for our whole life). The parent may have died before we got
    here: then our parent pid is no longer the one the worker wrote down, and
    we leave at once. Elsewhere a thread watches the parent pid.
    """
    expected = int(os.environ.get(PARENT_ENV) or os.getppid())
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            _watch_parent(expected)
    else:
        _watch_parent(expected)
    if os.getppid() != expected:  # checked after arming: no gap for the parent to die in
        os._exit(1)


def _watch_parent(expected: int) -> None:
    def watch() -> None:
        while os.getppid() == expected:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


JOINED_MARK = "\x1eaiinfra-spmd-joined"  # spmd_worker.JOINED_MARK


def _check_in(job: dict[str, Any]) -> None:
    """The start barrier (spmd_barrier.py): import JAX, say so, wait for the orders.

    The orders (platform, GPU, coordinator) come only once every process of the program
    has checked in; a closed stdin means the run was stopped instead.
    """
    try:
        import jax  # noqa: F401 - the slow, failure-prone part happens before checking in
    except Exception as exc:  # noqa: BLE001 - reported to the notebook, first line first
        _fail(job["result_path"], f"cannot import jax: {exc}", traceback.format_exc())
    print(JOINED_MARK, flush=True)
    line = sys.stdin.readline()
    if not line:
        os._exit(1)
    orders = json.loads(line)
    job.update(orders)
    from .spmd_worker import platform_env

    os.environ.update(platform_env(job, dict(os.environ)))  # before JAX starts its backend


def main() -> int:
    die_with_parent()  # first: the worker may die while we start
    job = json.loads(sys.stdin.readline())
    _check_in(job)
    try:
        namespace = _setup(job)
    except Exception as exc:  # noqa: BLE001 - reported to the notebook with its traceback
        return _fail(job["result_path"], f"JAX set-up failed: {exc}", traceback.format_exc())
    try:  # after JAX joined the program: a pickled jax.Array needs the backend
        from .spmd_vars import unpack

        namespace.update(unpack(job.get("variables") or {}))
    except Exception as exc:  # noqa: BLE001 - names the variable
        return _fail(job["result_path"], str(exc), traceback.format_exc())
    try:
        value = _run_code(job["code"], namespace)
    except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt in a cell too
        return _fail(job["result_path"], f"{type(exc).__name__}: {exc}", _cell_traceback(exc))
    sys.stdout.flush()
    outcome: dict[str, Any] = {"ok": True, "repr": None, "value": None}
    if value is not None:
        import cloudpickle

        value = _portable(value)
        outcome["repr"] = repr(value)
        try:
            outcome["value"] = cloudpickle.dumps(value)
        except Exception as exc:  # noqa: BLE001 - fall back to the repr
            outcome["pickle_error"] = str(exc)
    _write(job["result_path"], outcome)
    import jax

    jax.distributed.shutdown()  # a barrier: process 0 hosts the coordinator, so leave together
    return 0


if __name__ == "__main__":
    sys.exit(main())
