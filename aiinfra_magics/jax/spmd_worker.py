"""Worker side of ``%%aiinfra spmd``: launch, stream, stop one process of a cell.

These functions run inside Dask worker processes (shipped by reference, so the
workers need aiinfra installed, as they do for every other aiinfra feature).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

PARENT_ENV = "AIINFRA_SPMD_PARENT"
# The subprocesses of each running cell in this worker, so that a stop request can reach them.
_RUNNING: dict[str, list[subprocess.Popen]] = {}
_RUNNING_LOCK = threading.Lock()
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
    return {"gpus": gpu_probe().count, "plugin": _gpu_plugin_installed(), "own_gpu": first or None}


def _child_env(job: dict[str, Any]) -> dict[str, str]:
    """The subprocess environment for the platform the notebook chose."""
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
    if job["platform"] == "gpu":
        env["CUDA_VISIBLE_DEVICES"] = job["gpu"]  # one GPU per process
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the worker may hold an RMM pool
    return env


def _worker_task(job: dict[str, Any]) -> dict[str, Any]:
    """Run one process of the program; stream its lines; return its outcome."""
    from distributed import get_worker

    worker = get_worker()
    pid, run_id = job["process_id"], job["run_id"]
    env = _child_env(job)
    lines = 0
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
            proc.stdin.write(json.dumps(child_job))
            proc.stdin.close()
            for line in proc.stdout:
                if _GLOO_CONNECTED.match(line):
                    continue
                worker.log_event(job["topic"], {"p": pid, "n": lines, "line": line.rstrip("\n")})
                lines += 1
            rc = proc.wait()
        finally:
            with _RUNNING_LOCK:
                _RUNNING.get(run_id, []).remove(proc)
            if proc.poll() is None:
                _kill(proc, signal.SIGKILL)
                proc.wait()
        outcome: dict[str, Any] = {"ok": False, "error": None, "traceback": None}
        if os.path.exists(result_path):
            with open(result_path, "rb") as fh:
                outcome = pickle.load(fh)
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
    with _RUNNING_LOCK:
        procs = list(_RUNNING.get(run_id, []))
    for proc in procs:
        _kill(proc, signal.SIGKILL)
    return len(procs)
