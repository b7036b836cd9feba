"""``local``: distributed.LocalCluster with worker processes (the embedded default)."""

from __future__ import annotations

import os
from typing import Any

from ..errors import InputError
from .backends import ClusterBackend, Launched, Option
from .spec import ClusterSpec

#: Run in each worker process: survive the kernel's interrupt (see worker_preload).
WORKER_PRELOAD = "aiinfra_magics.clusters.worker_preload"
#: Workers (and threads per worker) beyond this many per core need --oversubscribe.
PER_CORE_LIMIT = 4

LOCAL_OPTIONS = (
    Option(
        "oversubscribe",
        f"allow more than {PER_CORE_LIMIT} workers or threads per core",
        type="boolean",
        default=False,
    ),
    Option(
        "dashboard_address",
        "where the Dask dashboard listens (default 127.0.0.1:0: loopback, a free port; "
        "use :0 to open it on every interface)",
        default="127.0.0.1:0",
    ),
)


def dashboard_link(cluster: Any) -> str | None:
    try:
        return cluster.dashboard_link
    except (AttributeError, KeyError):
        return None


def memory_limit(value: str) -> str | float:
    """A fraction like ``0.5`` means that share of the machine's memory per worker."""
    try:
        return float(value)
    except ValueError:
        return value


def check_local_bounds(spec: ClusterSpec, cores: int | None = None) -> None:
    """Refuse more workers/threads than this machine can sensibly run, unless asked."""
    if spec.option("oversubscribe", False):
        return
    limit = PER_CORE_LIMIT * (cores or os.cpu_count() or 1)
    for key in ("workers", "threads"):
        value = getattr(spec, key)
        if value is not None and value > limit:
            raise InputError(
                f"{key}: got {value}; this machine has {cores or os.cpu_count()} core(s), "
                f"so at most {limit} ({PER_CORE_LIMIT} per core); add --oversubscribe to go beyond",
                field=key,
            )
    if spec.adapt is not None and spec.adapt[1] > limit:
        raise InputError(
            f"adapt: got maximum {spec.adapt[1]}; at most {limit} on this machine "
            "(add --oversubscribe to go beyond)",
            field="adapt",
        )


class LocalBackend(ClusterBackend):
    name = "local"
    description = "worker processes on this machine (distributed.LocalCluster)"
    options = LOCAL_OPTIONS

    def validate(self, spec: ClusterSpec) -> None:
        check_local_bounds(spec)

    def defaults(self) -> dict[str, Any]:
        # LocalCluster's own split of this machine's cores when neither is given.
        from distributed.deploy.utils import nprocesses_nthreads

        workers, threads = nprocesses_nthreads()
        return {"workers": workers, "threads": threads}

    def launch_kwargs(self, spec: ClusterSpec, *, death_timeout: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "processes": True,
            # Port 0 picks a free port: several clusters on one machine never collide.
            "dashboard_address": spec.option("dashboard_address"),
            "death_timeout": death_timeout,
            "preload": [WORKER_PRELOAD],
        }
        if spec.workers is not None:
            kwargs["n_workers"] = spec.workers
        if spec.threads is not None:
            kwargs["threads_per_worker"] = spec.threads
        if spec.memory is not None:
            kwargs["memory_limit"] = memory_limit(spec.memory)
        return kwargs

    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        from distributed import LocalCluster

        kwargs = self.launch_kwargs(spec, death_timeout=death_timeout)
        from .cost import arm_idle, scheduler_kwargs  # late: imports distributed

        # The cost plugin from the first worker on; distributed's own idle shutdown.
        cluster = LocalCluster(**kwargs, scheduler_kwargs=scheduler_kwargs(spec))
        cluster.loop.add_callback(arm_idle, cluster.scheduler, spec.idle_timeout)
        return Launched(cluster.scheduler_address, dashboard_link(cluster), cluster=cluster)
