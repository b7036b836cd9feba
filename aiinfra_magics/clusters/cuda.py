"""``cuda``: dask_cuda.LocalCUDACluster, one worker per GPU.

The translation from ClusterSpec to LocalCUDACluster arguments is a pure
function (``launch_kwargs``) so it is tested on machines without a GPU.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ..devices.nvml import GpuProbe, gpu_probe
from ..errors import AiinfraError
from .backends import ClusterBackend, Launched, Option
from .local import LOCAL_OPTIONS, WORKER_PRELOAD, check_local_bounds, dashboard_link, memory_limit
from .spec import ClusterSpec, as_gpus, parse_gpus

# Environment every cuda worker gets, so that a JAX import inside a task cannot
# take the whole card (JAX preallocates 75% of GPU memory by default).
WORKER_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def dask_cuda_importable() -> bool:
    return importlib.util.find_spec("dask_cuda") is not None


def select_gpus(gpus: str | None, probe: GpuProbe) -> list[str]:
    """The CUDA_VISIBLE_DEVICES entries for ``--gpus`` on a machine with ``probe.count`` GPUs."""
    wanted = parse_gpus(gpus) if gpus is not None else "all"
    allowed = f"all, 1..{probe.count}, or indices 0..{probe.count - 1}"
    if wanted == "all":
        return [str(i) for i in range(probe.count)]
    if isinstance(wanted, int):
        if wanted > probe.count:
            raise AiinfraError(
                f"gpus: got {wanted}; this machine has {probe.count} GPU(s): {allowed}",
                field="gpus",
            )
        return [str(i) for i in range(wanted)]
    for item in wanted:
        if item.isdigit() and int(item) >= probe.count:
            raise AiinfraError(
                f"gpus: index {item} does not exist; allowed: {allowed}", field="gpus"
            )
        if not item.isdigit() and not any(u.startswith(item) for u in probe.uuids):
            raise AiinfraError(f"gpus: no GPU with UUID {item}; allowed: {allowed}", field="gpus")
    return list(wanted)


CUDA_OPTIONS = (
    Option(
        "gpus",
        "GPUs to use: all | N | 0,2 (indices or UUIDs; one index: '1,')",
        check=lambda v: as_gpus("gpus", v),
        metavar="all|N|0,2",
    ),
    Option("rmm_pool", "RMM pool size per worker, e.g. 20GB or 0.8", type="size"),
    Option("device_memory_limit", "spill to host memory above this, e.g. 30GB or 0.8", type="size"),
    Option("protocol", "worker communication", choices=("tcp", "ucx")),
    Option("force", "allow GPUs this kernel's JAX session uses", type="boolean", default=False),
    *LOCAL_OPTIONS,
)


class CudaBackend(ClusterBackend):
    name = "cuda"
    description = "one worker per GPU on this machine (dask_cuda.LocalCUDACluster)"
    options = CUDA_OPTIONS

    def __init__(self, probe: GpuProbe | None = None) -> None:
        self._probe = probe

    @property
    def probe(self) -> GpuProbe:
        if self._probe is None:
            self._probe = gpu_probe()
        return self._probe

    def unavailable(self) -> str | None:
        if self.probe.count == 0:
            return f"needs an NVIDIA GPU ({self.probe.reason})"
        if not dask_cuda_importable():
            return "needs dask-cuda (pip install 'aiinfra[gpu]')"
        return None

    def validate(self, spec: ClusterSpec) -> None:
        check_local_bounds(spec)

    def defaults(self) -> dict[str, Any]:
        # One worker per GPU, one thread each (launch_kwargs) when neither is given.
        return {"workers": self.probe.count, "threads": 1}

    def check(self, spec: ClusterSpec) -> None:
        reason = self.unavailable()
        if reason is not None:
            raise AiinfraError(
                f"backend: cuda {reason}; use --backend local or auto", field="backend"
            )
        if spec.option("rmm_pool") is not None and importlib.util.find_spec("rmm") is None:
            raise AiinfraError(
                "rmm-pool: needs RAPIDS rmm in the workers' environment (pip install rmm-cu12); "
                "leave --rmm-pool out to use CUDA's default allocator",
                field="rmm_pool",
            )
        self.launch_kwargs(spec, death_timeout=60)

    def launch_kwargs(self, spec: ClusterSpec, *, death_timeout: float) -> dict[str, Any]:
        visible = select_gpus(spec.option("gpus"), self.probe)
        if spec.workers is not None and spec.workers > len(visible):
            raise AiinfraError(
                f"workers: got {spec.workers}; the cuda backend runs one worker per GPU and "
                f"{len(visible)} GPU(s) are selected, so at most {len(visible)}",
                field="workers",
            )
        if spec.workers is not None:
            visible = visible[: spec.workers]
        kwargs: dict[str, Any] = {
            "CUDA_VISIBLE_DEVICES": ",".join(visible),
            "n_workers": len(visible),
            "threads_per_worker": spec.threads or 1,
            "memory_limit": memory_limit(spec.memory) if spec.memory else "auto",
            "protocol": spec.option("protocol") or "tcp",
            "dashboard_address": spec.option("dashboard_address"),
            "death_timeout": death_timeout,
            "preload": [WORKER_PRELOAD],
        }
        if spec.option("rmm_pool") is not None:
            kwargs["rmm_pool_size"] = memory_limit(spec.option("rmm_pool"))
        if spec.option("device_memory_limit") is not None:
            kwargs["device_memory_limit"] = memory_limit(spec.option("device_memory_limit"))
        return kwargs

    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        from dask_cuda import LocalCUDACluster

        kwargs = self.launch_kwargs(spec, death_timeout=death_timeout)
        from .cost import arm_idle, scheduler_kwargs  # late: imports distributed

        # The cost plugin from the first worker on; distributed's own idle shutdown.
        cluster = LocalCUDACluster(**kwargs, scheduler_kwargs=scheduler_kwargs(spec))
        cluster.loop.add_callback(arm_idle, cluster.scheduler, spec.idle_timeout)
        _register_worker_env(cluster)
        gpus = kwargs["CUDA_VISIBLE_DEVICES"].split(",")
        return Launched(
            cluster.scheduler_address, dashboard_link(cluster), cluster=cluster, gpus=gpus
        )


def _register_worker_env(cluster: Any) -> None:
    """Set WORKER_ENV in every worker, those added later by scale/adapt included.

    Registered straight on the in-process scheduler: no Client round trip.
    """
    from distributed.protocol.pickle import dumps

    from .worker_env import WorkerEnv

    plugin = WorkerEnv(WORKER_ENV)
    cluster.sync(
        cluster.scheduler.register_worker_plugin, None, dumps(plugin), plugin.name, idempotent=False
    )
