"""Worker side of ``%%aiinfra spmd``: launch, stream, stop one process of a cell.

These functions run inside Dask worker processes (shipped by reference, so the
workers need aiinfra installed, as they do for every other aiinfra feature).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

PARENT_ENV = "AIINFRA_SPMD_PARENT"
#: What a fresh interpreter prints once it imported JAX and waits for its orders (spmd_child).
JOINED_MARK = "\x1eaiinfra-spmd-joined"
# The subprocesses of each running cell in this worker, so that a stop request can reach them.
_RUNNING: dict[str, list[subprocess.Popen]] = {}
_RUNNING_LOCK = threading.Lock()
# Per run: set when the notebook releases the barrier (orders by process id) or stops the run.
_RELEASES: dict[str, dict[str, Any]] = {}
# gloo prints this on every process of every cell; it tells the user nothing.
_GLOO_CONNECTED = re.compile(r"^\[Gloo\] Rank \d+ is connected to \d+ peer ranks")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _gpu_facts() -> dict[str, Any]:
    """What this worker could give a JAX process: GPUs, CUDA plugin, its own GPU (Dask-CUDA)."""
    from ..devices.nvml import gpu_probe
    from .session import _gpu_plugin_installed

    first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return {
        "gpus": gpu_probe().count,
        "plugin": _gpu_plugin_installed(),
        "own_gpu": first or None,
        "tpu": on_tpu_vm(),
    }


def on_tpu_vm() -> bool:
    """A Cloud TPU VM host: its TPU chips' device files (v2-v4: /dev/accel*, v5e and later:
    /dev/vfio/N) or the TPU runtime's variables. Not verified on a TPU here (none reachable)."""
    import glob

    if os.environ.get("TPU_ACCELERATOR_TYPE") or os.environ.get("TPU_WORKER_ID"):
        return True
    return bool(glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*"))


def _release_entry(run_id: str) -> dict[str, Any]:
    with _RUNNING_LOCK:
        return _RELEASES.setdefault(run_id, {"event": threading.Event(), "orders": None})


def _release(run_id: str, orders: dict[str, Any] | None) -> None:
    """The notebook's go (``orders`` by process id) or stop (None) for ``run_id``."""
    entry = _release_entry(run_id)
    entry["orders"] = orders
    entry["event"].set()


def _await_orders(run_id: str, pid: int, deadline: float) -> dict[str, Any] | None:
    """This process's orders once the barrier is released; None if stopped or too late."""
    entry = _release_entry(run_id)
    entry["event"].wait(max(0.0, deadline - time.time()))
    orders = entry["orders"]
    return orders.get(str(pid)) if orders else None


def _child_env(job: dict[str, Any]) -> dict[str, str]:
    """The subprocess environment; the platform's own variables follow with the orders
    (``platform_env``, applied by the child before JAX starts its backend)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # The child dies with this process (spmd_child.die_with_parent); naming the pid
    # lets it tell "my parent already died before I started" from a live parent.
    env[PARENT_ENV] = str(os.getpid())
    # A forced host device count from the notebook would fight jax_num_cpu_devices.
    flags = [
        f
        for f in env.get("XLA_FLAGS", "").split()
        if "xla_force_host_platform_device_count" not in f
    ]
    env["XLA_FLAGS"] = " ".join(flags)
    return env


def platform_env(job: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """The variables one process needs for its platform (applied by the child, before JAX)."""
    if job.get("platform") != "gpu":
        return {}
    extra = {"CUDA_VISIBLE_DEVICES": job["gpu"]}  # one GPU per process
    if "XLA_PYTHON_CLIENT_PREALLOCATE" not in env:  # the worker may hold an RMM pool
        extra["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    return extra


def _worker_task(job: dict[str, Any]) -> dict[str, Any]:
    """Run one process of the program: check in at the barrier, stream its lines, return its
    outcome."""
    from distributed import get_worker

    worker = get_worker()
    pid, run_id, topic = job["process_id"], job["run_id"], job["topic"]
    if time.time() > job["join_deadline"]:  # the notebook gave up on this run already
        return {"ok": False, "stopped": True, "error": "too late to join", "lines": 0}
    started: dict[str, Any] = {"started": True}
    if job["platform"] != "cpu":
        started["facts"] = _gpu_facts()
    if pid == 0:
        started["port"] = _free_port()  # for JAX's coordinator, hosted by process 0
    worker.log_event(topic, {"p": pid, "state": started})
    env = _child_env(job)
    lines = 0
    stopped_at_barrier = False
    with tempfile.TemporaryDirectory(prefix="aiinfra-spmd-") as tmp:
        result_path = os.path.join(tmp, "result.pkl")
        child_job = dict(job, result_path=result_path)
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiinfra_magics.jax.spmd_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            start_new_session=True,  # its own process group: a stop reaches anything it spawned
        )
        with _RUNNING_LOCK:
            _RUNNING.setdefault(run_id, []).append(proc)
        try:
            proc.stdin.write(json.dumps(child_job) + "\n")  # stdin stays open: the orders follow
            proc.stdin.flush()
            for line in proc.stdout:
                if line.rstrip("\n") == JOINED_MARK:
                    worker.log_event(topic, {"p": pid, "state": {"joined": True}})
                    orders = _await_orders(run_id, pid, job["join_deadline"] + 30.0)
                    if orders is None:
                        stopped_at_barrier = True
                        _kill(proc, signal.SIGKILL)
                        break
                    proc.stdin.write(json.dumps(orders) + "\n")
                    proc.stdin.close()
                    continue
                if _GLOO_CONNECTED.match(line):
                    continue
                worker.log_event(topic, {"p": pid, "n": lines, "line": line.rstrip("\n")})
                lines += 1
            rc = proc.wait()
        finally:
            with _RUNNING_LOCK:
                _RUNNING.get(run_id, []).remove(proc)
                if not _RUNNING.get(run_id):
                    _RUNNING.pop(run_id, None)
                    _RELEASES.pop(run_id, None)
            if proc.poll() is None:
                _kill(proc, signal.SIGKILL)
                proc.wait()
            with contextlib.suppress(OSError):
                proc.stdin.close()
        outcome: dict[str, Any] = {"ok": False, "error": None, "traceback": None}
        if os.path.exists(result_path):
            with open(result_path, "rb") as fh:
                outcome = pickle.load(fh)
        elif stopped_at_barrier:
            outcome.update(error="stopped at the start barrier", stopped=True)
        elif rc < 0:
            outcome["error"] = f"stopped by signal {-rc}"
            outcome["stopped"] = True
        else:
            outcome["error"] = f"exited with status {rc} before reporting"
    outcome.update(process_id=pid, rc=rc, lines=lines, host=worker.address)
    return outcome


def _kill(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _stop(run_id: str) -> int:
    """Kill this worker's processes of ``run_id`` (their whole process groups).

    SIGKILL, not SIGTERM: once ``jax.distributed`` is initialised, JAX's
    preemption notifier catches SIGTERM and the process keeps running. Nothing
    in the child needs a graceful end: its outcome is no longer wanted.
    """
    _release(run_id, None)  # a process waiting at the barrier leaves too
    with _RUNNING_LOCK:
        procs = list(_RUNNING.get(run_id, []))
        if not procs:
            _RELEASES.pop(run_id, None)
    for proc in procs:
        _kill(proc, signal.SIGKILL)
    return len(procs)


# Coroutines, so the notebook can send them without waiting (``client.run(wait=False)``
# takes only those): a worker that hangs must not hang the notebook.
async def release_soon(run_id: str, orders: dict[str, Any] | None) -> None:
    _release(run_id, orders)


async def stop_soon(run_id: str) -> int:
    return _stop(run_id)
