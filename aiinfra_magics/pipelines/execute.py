"""The task: run one node's notebook with papermill in a fresh kernel on this worker.

Returns a plain dict (never raises for notebook failures) so the runner can tell
errors in the user's code (not retried) from infrastructure errors (retried).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import papermill
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_hook
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.exceptions import PapermillExecutionError
from papermill.utils import remove_args

from . import kernel_pool, outputs, reuse
from .kinds import DEAD_KERNEL, KERNEL_START, OUT_OF_MEMORY, TIMEOUT, USER_ERROR
from .local_pool import (
    LocalWorker,
    current_worker,
    worker_memory_limit,
    worker_reports_gpu,
    worker_threads_and_resources,
)
from .placement import where

ENGINE = "aiinfra"


class PrestartedEngine(NBClientEngine):
    """papermill's nbclient engine, handed a kernel that is already running.

    Without ``keep_kernel`` the client owns the kernel: nbclient shuts it down when
    the notebook ends (one kernel per step). With it (kernel reuse) only the client's
    channels close; the kernel goes back to this worker's reuse pool.
    """

    @classmethod
    def execute_managed_notebook(  # type: ignore[override]
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution_timeout: float | None = None,
        km: Any = None,
        keep_kernel: bool = False,
        **kwargs: Any,
    ) -> Any:
        kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
        client = PapermillNotebookClient(
            nb_man,
            km=km,
            timeout=execution_timeout,
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            shutdown_kernel="immediate",
            **kwargs,
        )
        client.owns_km = not keep_kernel
        try:
            # nbclient would connect with jupyter_client's wait_for_ready (0.2-0.4 s of
            # fixed waits, see kernel_pool.wait_ready); a client it finds connected is used.
            if km is not None:
                client.kc = km.client()
                client.kc.start_channels()
                run_sync(kernel_pool.wait_ready)(client.kc, start_timeout)
                client.kc.allow_stdin = False  # as nbclient's own client setup
                run_sync(run_hook)(client.on_notebook_start, notebook=client.nb)
            return client.execute()
        finally:
            # nbclient drops a client it cleaned up (an owned kernel): what is left is
            # ours to close (a kept kernel's, or one whose connection never got ready).
            if client.kc is not None:
                client.kc.stop_channels()


class _Stream:
    """A file-like papermill writes a cell's stdout/stderr to (``log_output``): each
    write becomes a progress event the runner shows in its progress view."""

    def __init__(self, topic: str | None, node: str, name: str) -> None:
        self.topic, self.node, self.name = topic, node, name

    def write(self, text: str) -> int:
        if text:
            _event(
                self.topic,
                {"node": self.node, "event": "output", "stream": self.name, "text": text[-4000:]},
            )
        return len(text)

    def flush(self) -> None:
        pass


papermill_engines.register(ENGINE, PrestartedEngine)


def _worker_info() -> tuple[str, int | None, str | None, list[str]]:
    try:
        worker = current_worker()
        limit = worker_memory_limit(worker)
        address, name = worker.address, str(worker.name)
    except ValueError:  # not inside a worker (direct call in tests or a debugger)
        address, limit, name = "local", None, None
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = [f"cuda:{d}" for d in cuda.split(",") if d] if cuda else ["cpu"]
    return address, limit, name, devices


def _held(task: dict[str, Any], start: float) -> Any:
    """What this step holds on this worker while it runs (``stint.step_stint``)."""
    from ..clusters.stint import step_stint

    try:
        worker = current_worker()
    except ValueError:  # not inside a worker: only what the step asked for
        return step_stint(start, task.get("resources"), None, 1, None, False)
    # The worker's own GPU signal: NVML reports one (what the scheduler's cost plugin
    # sees in its metrics) and this process was given one (its devices are not "cpu").
    nvml = worker_reports_gpu(worker)
    threads, resources = worker_threads_and_resources(worker)
    return step_stint(
        start,
        task.get("resources"),
        resources,
        threads,
        worker_memory_limit(worker),
        nvml and bool(os.environ.get("CUDA_VISIBLE_DEVICES")),
    )


def _cost(
    result: dict[str, Any],
    task: dict[str, Any],
    cpu_seconds: float,
    measured: tuple[Any, int, int | None] | None = None,
) -> dict[str, Any]:
    """The step's ``cost``: the cluster's figures for what it held from start to end.

    ``worker_hours``/``core_hours``/``gpu_hours``/``memory_gb_hours`` are allocations
    (one task slot of the worker, its share of the worker's memory limit, the GPUs it
    held) over the step's own start..end, so they are slices of the cluster's figures.
    ``cpu_hours`` is measured: the CPU time the kernel's process tree used, which can
    be more than ``core_hours`` (a kernel running numpy on every core) or far less (a
    step that waits); both are shown, because neither alone tells the whole story.
    ``measured`` (the worker's GPU-utilisation mark at the start, the kernel's peak RSS,
    its memory limit) adds the efficiency figures (metrics/efficiency.py).
    """
    try:
        stint = _held(task, result["start"])
    except Exception as exc:  # never fail a step over its accounting
        return {"error": f"{type(exc).__name__}: {exc}"}
    figures = {k: round(v, 9) for k, v in stint.figures(result["end"]).items()}
    figures["cpu_hours"] = round(cpu_seconds / 3600.0, 9)
    figures["held"] = {
        "cores": stint.threads,
        "gpus": stint.gpus,
        "memory_gb": round(stint.memory_bytes / 1e9, 6),
    }
    if measured is not None:
        from ..metrics.efficiency import step_efficiency

        mark, peak_rss, limit = measured
        mean, peak = (None, None) if mark is None else _gpu_usage(mark)
        figures.update(step_efficiency(figures, cpu_seconds, mean, peak_rss, limit, peak))
    return figures


def _gpu_mark() -> Any:
    """The worker's GPU-utilisation mark (its metrics plugin's); None where it has none,
    as the embedded pool's workers (metrics.plugins imports distributed: not for them)."""
    try:
        if isinstance(current_worker(), LocalWorker):
            return None
        from ..metrics.plugins import step_gpu_mark

        return step_gpu_mark()
    except Exception:  # never fail a step over its accounting
        return None


def _gpu_usage(mark: Any) -> tuple[float | None, float | None]:
    from ..metrics.plugins import step_gpu_usage

    return step_gpu_usage(mark)


def _event(topic: str | None, msg: dict[str, Any]) -> None:
    if not topic:
        return
    try:
        current_worker().log_event(topic, msg)
    except Exception:  # progress is best effort; never fail a step over it
        pass


def _parameters(task: dict[str, Any]) -> dict[str, Any]:
    """The step's params plus ``product``/``upstream`` where the step has them or its
    notebook's parameters cell declares them; otherwise exactly what papermill gets."""
    from .dag import declared_names

    params = dict(task["parameters"])
    runner = task.get("runner_params") or {}
    declared = declared_names(Path(task["notebook"])) if runner else set()
    for key, value in runner.items():
        if value or key in declared:
            params[key] = value
    return params


def _start(task: dict[str, Any], address: str) -> tuple[Any, dict[str, Any]]:
    """The step's kernel, warm or reused when possible, and what to record about it."""
    kernel, cwd = task["kernel"], task["cwd"]
    also = task.get("prestarted")  # the runner's kernels, when this worker is in its process
    run = task.get("topic") or ""  # kernels, warm or reused, never serve another run
    if task.get("kernel_reuse"):
        km, reused = reuse.take(kernel, cwd, owner=address, also=also, run=run)
        return km, {
            "kernel_id": km.aiinfra_id,
            "kernel_uses": km.aiinfra_uses,
            "kernel_warm": reused or km.aiinfra_warm,
        }
    km = kernel_pool.acquire(kernel, cwd, owner=address, also=also, run=run)
    # Start the kernels for this worker's next steps while this one runs.
    kernel_pool.warm(kernel, cwd, int(task.get("warm", 0)), owner=address, run=run)
    return km, {"kernel_warm": km.aiinfra_warm}  # started ahead of time, while earlier steps ran


def run_node(task: dict[str, Any]) -> dict[str, Any]:
    """Execute ``task['notebook']`` into ``task['output']``; see the runner for the fields."""
    address, worker_limit, worker_name, devices = _worker_info()
    memory = task.get("memory") or worker_limit
    name, topic = task["name"], task.get("topic")
    result: dict[str, Any] = {
        "name": name,
        "worker": address,
        "worker_name": worker_name,
        "devices": devices,
        "attempt": task.get("attempt", 1),
        **where(),  # host, and the SLURM job and node on a batch cluster
        "start": time.time(),
    }
    gpu_mark = _gpu_mark()  # the worker's GPU-utilisation integral now, for the step's share
    try:
        outputs.ensure_handler(task["output"])
        km, info = _start(task, address)
    except NoSuchKernel as exc:  # not retried: another attempt would not find it either
        result.update(status="failed", kind=USER_ERROR, error=f"kernel: {exc}")
        result["end"] = time.time()
        result["cost"] = _cost(result, task, 0.0)
        return result
    except Exception as exc:  # port collision, kernel died at start-up
        result.update(status="failed", kind=KERNEL_START, error=f"kernel did not start: {exc}")
        result["end"] = time.time()
        result["cost"] = _cost(result, task, 0.0)
        return result
    result.update(info)
    result["kernel_wait"] = time.time() - result["start"]  # ~0 when a warm kernel was ready
    result["kernel_pid"] = kernel_pool.kernel_pid(km)
    kernel_pool.mark_busy(topic or "", km, True)
    watchdog = kernel_pool.Watchdog(km, float(task["timeout"]), memory)
    watchdog.start()
    _event(topic, {"node": name, "event": "start", "worker": address})

    def on_cell_start(cell: Any, cell_index: int) -> None:
        _event(topic, {"node": name, "event": "cell", "index": cell_index})

    log = bool(task.get("log_output"))
    keep = bool(task.get("kernel_reuse"))
    retire = True  # only a step that ended inside its cells may hand its kernel on
    try:
        papermill.execute_notebook(
            task["notebook"],
            task["output"],
            parameters=_parameters(task),
            engine_name=ENGINE,
            kernel_name=task["kernel"],
            km=km,
            keep_kernel=keep,
            progress_bar=False,
            report_mode=bool(task.get("report_mode")),
            execution_timeout=task.get("execution_timeout"),
            request_save_on_cell_execute=task.get("request_save_on_cell_execute", True),
            autosave_cell_every=task.get("autosave_cell_every", 30),
            stdout_file=_Stream(topic, name, "stdout") if log else None,
            stderr_file=_Stream(topic, name, "stderr") if log else None,
            on_cell_start=on_cell_start,
        )
        result.update(status="ok")
        retire = False
    except PapermillExecutionError as exc:
        first = next((ln.strip() for ln in (exc.source or "").splitlines() if ln.strip()), "")
        cell = f"cell In [{exc.exec_count}] ({first[:40]}{'...' if len(first) > 40 else ''})"
        if watchdog.reason == "timeout":
            result.update(kind=TIMEOUT, error=f"timed out after {task['timeout']:g} s in {cell}")
        else:
            result.update(kind=USER_ERROR, error=f"{cell}: {exc.ename}: {exc.evalue}")
            retire = False
        result.update(status="failed", cell=exc.cell_index)
    except CellTimeoutError as exc:  # papermill's --execution-timeout, per cell
        result.update(
            status="failed", kind=TIMEOUT, error=f"CellTimeoutError: {str(exc).splitlines()[0]}"
        )
    except DeadKernelError as exc:
        if watchdog.reason == "memory":
            result.update(
                kind=OUT_OF_MEMORY,
                error=f"dead kernel: out of memory (used {watchdog.peak_rss / 2**20:.0f} MiB, "
                f"limit {memory / 2**20:.0f} MiB)",
            )
        elif watchdog.reason == "timeout":
            result.update(
                kind=TIMEOUT, error=f"timed out after {task['timeout']:g} s (kernel killed)"
            )
        else:
            tail = kernel_pool.log_tail(km)
            result.update(
                kind=DEAD_KERNEL,
                error=f"dead kernel: {exc}" + (f" (kernel log: {tail})" if tail else ""),
            )
        result.update(status="failed")
    except Exception as exc:  # papermill refusing the notebook, a bad parameter value, ...
        result.update(status="failed", kind=USER_ERROR, error=f"{type(exc).__name__}: {exc}")
    finally:
        watchdog.stop()
        kernel_pool.mark_busy(topic or "", km, False)
        if keep and not retire and watchdog.reason is None:
            why = reuse.give_back(km, task["kernel"], task["cwd"], owner=address, run=topic or "")
            if why:
                result["kernel_retired"] = why
        else:
            kernel_pool.shutdown(km)
            if keep:
                result["kernel_retired"] = result.get("kind") or "error outside the cells"
    result["end"] = time.time()
    result["peak_rss"] = watchdog.peak_rss
    result["cost"] = _cost(
        result, task, watchdog.cpu_seconds, (gpu_mark, watchdog.peak_rss, memory)
    )
    _event(topic, {"node": name, "event": "end", "status": result["status"]})
    return result


def stop_run(topic: str) -> int:
    """Run on every worker when a run is interrupted: kill its steps' kernels."""
    return kernel_pool.stop_run(topic)


def drain_kernels(topic: str | None = None) -> int:
    """Run on every worker at the end of a pipeline: stop the kernels kept warm or reused
    for that run (``topic``; every run's: None)."""
    return kernel_pool.drain(run=topic) + reuse.drain(topic)
