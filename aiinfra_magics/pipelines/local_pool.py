"""The embedded cluster of a run: worker threads of the runner's own process, no Dask.

A run without ``--cluster`` used to start an in-process ``distributed.LocalCluster``
(worker threads, ``processes=False``). Every step already runs in its own kernel
process, so the cluster only queued tasks onto two threads, and paid for it before the
first step: importing distributed and starting a scheduler, about 0.3 s on a quiet
2-core VM and 0.55 s under load (benchmarks/RESULTS.md, issue 24). ``LocalPool`` keeps
the part of ``distributed.Client`` the runner uses (``submit``, ``scheduler_info``,
``run``, topics) over plain threads, with the same worker facts the steps record: name,
memory limit (the machine's memory shared among the workers, as LocalCluster's
``"auto"``), one thread each, no resources.

``current_worker()`` is what a step asks for its worker, here or on a Dask worker.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_local = threading.local()  # .worker: the LocalWorker whose thread this is


class StepFuture(concurrent.futures.Future):
    """A submitted task; ``status`` reads as a Dask future's (finished, error, ...)."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    @property
    def status(self) -> str:
        if not self.done():
            return "pending"
        if self.cancelled():
            return "cancelled"
        return "error" if self.exception() is not None else "finished"


@dataclass
class LocalWorker:
    """One worker thread; the facts a step records about where it ran."""

    address: str
    name: str
    memory_limit: int
    pool: LocalPool = field(repr=False)
    nthreads: int = 1
    resources: dict[str, float] = field(default_factory=dict)
    reports_gpu: bool = False  # NVML sees a GPU, as a Dask worker's monitor would report

    def log_event(self, topic: str, msg: Any) -> None:
        self.pool.publish(topic, msg)


class LocalPool:
    """``workers`` threads running submitted tasks one at a time each, in order.

    Raises nothing at start: there is nothing to connect to.
    """

    def __init__(self, workers: int = 2) -> None:
        count = max(1, int(workers))
        limit = memory_limit() // count
        # A step counts GPUs only where this process was given some (execute._held), so
        # NVML is asked only then.
        gpu = bool(os.environ.get("CUDA_VISIBLE_DEVICES")) and _nvml_sees_a_gpu()
        self.workers = [
            LocalWorker(f"local://{os.getpid()}/{i}", str(i), limit, self, reports_gpu=gpu)
            for i in range(count)
        ]
        self._tasks: queue.Queue = queue.Queue()
        self._topics: dict[str, list[Callable[[tuple[float, Any]], None]]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._keys = itertools.count()
        self._threads = [
            threading.Thread(target=self._serve, args=(w,), name=f"aiinfra-worker-{w.name}")
            for w in self.workers
        ]
        for thread in self._threads:
            thread.daemon = True  # a step left running by an interrupt never holds the exit
            thread.start()

    # -- what the runner calls (distributed.Client's names) ---------------------------------
    def submit(
        self, fn: Callable[..., Any], *args: Any, key: str | None = None, **_: Any
    ) -> StepFuture:
        """Queue ``fn(*args)`` for the next free worker (``pure`` and ``resources`` are
        accepted as Dask's: these workers hold no resources, checked before submitting)."""
        if self._closed:
            raise RuntimeError("the local pool is closed")
        future = StepFuture(key or f"task-{next(self._keys)}")
        self._tasks.put((future, fn, args))
        return future

    def scheduler_info(self, n_workers: int = -1) -> dict[str, Any]:
        return {
            "workers": {
                w.address: {
                    "name": w.name,
                    "nthreads": w.nthreads,
                    "memory_limit": w.memory_limit,
                    "resources": dict(w.resources),
                }
                for w in self.workers
            }
        }

    def run(self, fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
        """``fn(*args)`` once for all workers: they share this process (kernel pools
        included), where Dask's in-process workers each ran it on the same state."""
        return {self.workers[0].address: fn(*args)}

    def subscribe_topic(self, topic: str, handler: Callable[[tuple[float, Any]], None]) -> None:
        with self._lock:
            self._topics.setdefault(topic, []).append(handler)

    def unsubscribe_topic(self, topic: str) -> None:
        with self._lock:
            self._topics.pop(topic, None)

    def publish(self, topic: str, msg: Any) -> None:
        with self._lock:
            handlers = list(self._topics.get(topic, ()))
        for handler in handlers:
            handler((time.time(), msg))

    def close(self, timeout: float = 10.0) -> None:
        """Refuse new tasks, drop queued ones, and let running ones end (their kernels
        are the runner's to stop) for up to ``timeout`` seconds."""
        self._closed = True
        while True:
            try:
                future, _, _ = self._tasks.get_nowait()
            except queue.Empty:
                break
            future.cancel()
        for _ in self._threads:
            self._tasks.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- the worker threads -----------------------------------------------------------------
    def _serve(self, worker: LocalWorker) -> None:
        _local.worker = worker
        while True:
            item = self._tasks.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # the runner reads it as a lost worker, as Dask's
                future.set_exception(exc)
            else:
                future.set_result(result)


def current_worker() -> Any:
    """The worker running this code: a LocalWorker of the embedded pool, or Dask's.

    Raises:
        ValueError: not inside a worker (as ``distributed.get_worker``).
    """
    worker = getattr(_local, "worker", None)
    if worker is not None:
        return worker
    if "distributed" not in sys.modules:  # Dask not loaded here: no Dask worker either
        raise ValueError("not inside a worker")
    from distributed import get_worker

    return get_worker()


def worker_memory_limit(worker: Any) -> int | None:
    """A worker's memory limit in bytes, LocalWorker or Dask worker."""
    if isinstance(worker, LocalWorker):
        return worker.memory_limit
    return worker.memory_manager.memory_limit


def worker_threads_and_resources(worker: Any) -> tuple[int, dict[str, float]]:
    """(threads, resources) of a LocalWorker or a Dask worker."""
    if isinstance(worker, LocalWorker):
        return worker.nthreads, dict(worker.resources)
    return worker.state.nthreads, dict(worker.state.total_resources)


def worker_reports_gpu(worker: Any) -> bool:
    """Whether a worker sees a GPU through NVML (a Dask worker's monitor names one)."""
    if isinstance(worker, LocalWorker):
        return worker.reports_gpu
    return bool(getattr(worker.monitor, "gpu_name", None))


def _nvml_sees_a_gpu() -> bool:
    from ..devices.nvml import gpu_probe

    return gpu_probe().count > 0


def memory_limit() -> int:
    """This machine's memory for processes here: the least of physical memory, the
    cgroup's limits and RLIMIT_RSS, as ``distributed.system.memory_limit`` reads them."""
    import psutil

    limits = [psutil.virtual_memory().total]
    for path in (  # cgroups v1 hard and soft, v2 max, high and low, as distributed reads them
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory.high",
        "/sys/fs/cgroup/memory.low",
    ):
        try:
            with open(path) as f:
                value = int(f.read())
        except (OSError, ValueError):  # absent, or "max"
            continue
        if value > 0:
            limits.append(value)
    try:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_RSS)[1]
        if hard > 0:
            limits.append(hard)
    except (ImportError, OSError):
        pass
    return min(limits)
