"""``local``: distributed.LocalCluster with worker processes (the embedded default)."""

from __future__ import annotations

from typing import Any

from .backends import ClusterBackend, Launched
from .spec import ClusterSpec


def dashboard_link(cluster: Any) -> str | None:
    try:
        return cluster.dashboard_link
    except (AttributeError, KeyError):
        return None


class LocalBackend(ClusterBackend):
    name = "local"

    def launch_kwargs(self, spec: ClusterSpec, *, death_timeout: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "processes": True,
            # ":0" picks a free port: several clusters on one machine never collide.
            "dashboard_address": ":0",
            "death_timeout": death_timeout,
        }
        if spec.workers is not None:
            kwargs["n_workers"] = spec.workers
        if spec.threads is not None:
            kwargs["threads_per_worker"] = spec.threads
        if spec.memory is not None:
            kwargs["memory_limit"] = _memory(spec.memory)
        return kwargs

    def launch(self, spec: ClusterSpec, *, death_timeout: float) -> Launched:
        from distributed import LocalCluster

        cluster = LocalCluster(**self.launch_kwargs(spec, death_timeout=death_timeout))
        return Launched(cluster.scheduler_address, dashboard_link(cluster), cluster=cluster)


def _memory(value: str) -> str | float:
    """A fraction like ``0.5`` means half the machine's memory per worker."""
    try:
        return float(value)
    except ValueError:
        return value
