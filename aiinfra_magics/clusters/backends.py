"""One interface for every way of getting a Dask cluster, and the registry of backends.

Built-in backends are listed here; others (SLURM through dask-jobqueue, Dask
Gateway) register under the entry-point group ``aiinfra.backends`` and are found
without any change to this package.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from ..errors import AiinfraError, field_error

if TYPE_CHECKING:
    from distributed.deploy import Cluster

    from .spec import ClusterSpec

ENTRY_POINT_GROUP = "aiinfra.backends"
BUILTIN_BACKENDS = {
    "local": "aiinfra_magics.clusters.local:LocalBackend",
    "cuda": "aiinfra_magics.clusters.cuda:CudaBackend",
    "address": "aiinfra_magics.clusters.address:AddressBackend",
}


@dataclass
class Launched:
    """What a backend hands back: a cluster object we own, or just an address."""

    scheduler_address: str
    dashboard_link: str | None
    cluster: Cluster | None = None  # None when the workers are managed elsewhere
    gpus: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class ClusterBackend(ABC):
    """A way to get a Dask cluster. Subclasses set ``name`` and implement ``launch``."""

    name: str = ""
    #: False when the workers are managed elsewhere (scale/adapt are refused).
    manages_workers: bool = True

    def check(self, spec: ClusterSpec) -> None:  # noqa: B027 - optional hook
        """Raise AiinfraError when ``spec`` cannot run here (before any process starts)."""

    @abstractmethod
    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        """Start (or reach) the cluster; block until the scheduler answers."""

    def launch_kwargs(self, spec: ClusterSpec, *, death_timeout: float) -> dict[str, Any]:
        """The keyword arguments handed to the cluster class (kept pure for tests)."""
        return {}


@lru_cache(maxsize=1)
def _backend_targets() -> dict[str, str]:
    targets = dict(BUILTIN_BACKENDS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        targets[ep.name] = ep.value
    return targets


def backend_names() -> list[str]:
    return list(_backend_targets())


def get_backend(name: str) -> ClusterBackend:
    targets = _backend_targets()
    if name not in targets:
        raise field_error("backend", name, " | ".join(["auto", *targets]))
    module_name, _, attr = targets[name].partition(":")
    try:
        backend_class = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise AiinfraError(
            f"backend: {name!r} is registered but cannot be loaded ({exc})", field="backend"
        ) from None
    return backend_class()


def resolve_backend(spec: ClusterSpec) -> tuple[ClusterSpec, str | None]:
    """Turn ``auto`` into a concrete backend and say which and why."""
    if spec.backend != "auto":
        return spec, None
    from ..devices.nvml import gpu_probe
    from .cuda import dask_cuda_importable

    probe = gpu_probe()
    if probe.count > 0 and dask_cuda_importable():
        note = f"auto: using cuda ({probe.count} GPU(s) seen by NVML, dask-cuda importable)"
        return spec.with_changes(backend="cuda"), note
    if probe.count > 0:
        why = (
            f"{probe.count} GPU(s) seen but dask-cuda is not installed (pip install 'aiinfra[gpu]')"
        )
    else:
        why = f"no GPU: {probe.reason}"
    gpu_only = [
        k for k in ("gpus", "rmm_pool", "device_memory_limit", "protocol") if getattr(spec, k)
    ]
    if gpu_only:
        option = gpu_only[0].replace("_", "-")
        raise AiinfraError(
            f"{option}: needs the cuda backend, which is unavailable here ({why})",
            field=gpu_only[0],
        )
    return spec.with_changes(backend="local"), f"auto: using local ({why})"
