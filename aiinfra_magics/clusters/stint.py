"""What a worker, or one pipeline step on it, holds over time: the cost arithmetic.

Kept apart from cost.py (the scheduler plugin) so that a step can count what it held
without importing distributed: the embedded pool's steps run where Dask is not loaded.
cost.py pickles this module by value with its own (see ``cost.register_by_value``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

GB = 1e9


@dataclass
class Stint:
    """One worker's time in the cluster, with what it brought."""

    joined: float
    threads: int
    memory_bytes: int
    gpus: float

    def figures(self, until: float) -> dict[str, float]:
        hours = max(0.0, until - self.joined) / 3600.0
        return {
            "worker_hours": hours,
            "core_hours": hours * self.threads,
            "gpu_hours": hours * self.gpus,
            "memory_gb_hours": hours * self.memory_bytes / GB,
        }


GPU_KEYS = ("GPU", "gpu", "GPUs", "gpus")  # the resource names that count as GPUs


def gpu_resource(resources: dict[str, Any] | None) -> float | None:
    """The ``GPU`` entry of a worker's resources or a task's request, None when it has none."""
    for key in GPU_KEYS:
        if key in (resources or {}):
            return float(resources[key])  # type: ignore[index]
    return None


def worker_gpus(ws: Any) -> float:
    """GPUs a worker holds: its ``GPU`` resource, else 1 when it reports NVML metrics (dask-cuda)."""
    declared = gpu_resource(ws.resources)
    if declared is not None:
        return declared
    metrics = ws.metrics or {}
    if "gpu" in metrics or "gpu_utilization" in metrics or "gpu-memory-total" in metrics:
        return 1.0
    return 0.0


def step_stint(
    start: float,
    requested: dict[str, Any] | None,
    resources: dict[str, Any] | None,
    nthreads: int,
    memory_bytes: int | None,
    reports_gpu: bool,
) -> Stint:
    """What one pipeline step held on its worker, as a ``Stint`` (so the same arithmetic).

    A step is one Dask task: it holds one of the worker's threads (its task slot) and
    that slot's share of the worker's memory limit, i.e. the slice of the worker that
    the cluster's own figures count for it. GPUs: its ``GPU`` request when it made one
    (Dask reserved them for it); none on a worker whose GPUs are a resource it did not
    ask for; otherwise (a dask-cuda worker: no resource, NVML reports a GPU and the
    step saw one) the worker's GPUs by the same rule as ``worker_gpus``, shared among
    its task slots (dask-cuda's default is one thread per GPU: the whole GPU).
    """
    slots = max(1, int(nthreads or 1))
    gpus = gpu_resource(requested)
    if gpus is None:
        if gpu_resource(resources) is not None or not reports_gpu:
            gpus = 0.0
        else:
            worker = SimpleNamespace(resources=resources, metrics={"gpu": True})
            gpus = worker_gpus(worker) / slots
    return Stint(joined=start, threads=1, memory_bytes=int((memory_bytes or 0) / slots), gpus=gpus)
