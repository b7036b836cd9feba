"""``--max-gpu-hours`` on a real SLURM: the cluster stops itself, its jobs leave the queue.

The GPU is mocked as in tests/gateway/test_caps.py: the job's prologue gives the worker a
``GPU`` resource through dask's config, which the cost plugin counts.
"""

from __future__ import annotations

from slurm_fixture import wait_for

from aiinfra_magics.clusters import history
from aiinfra_magics.clusters.host import close_all
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec


def ended(name: str) -> dict | None:
    found = [e for e in history.read_history() if e["name"] == name]
    return found[-1] if found else None


def test_max_gpu_hours_stops_a_slurm_cluster(slurm):
    manager = ClusterManager()
    spec = ClusterSpec.from_options({
        "name": "gpu-hpc", "backend": "slurm", "workers": 1, "cores": 1, "memory": "1GB",
        "walltime": "00:10:00", "interface": "lo", "max_gpu_hours": 0.0005,
        "job_script_prologue": ["export DASK_DISTRIBUTED__WORKER__RESOURCES__GPU=1"],
    })  # fmt: skip
    try:
        manager.start(spec)
        wait_for(lambda: ended("gpu-hpc"), 240, "the SLURM cluster to stop at its GPU-hours cap")
        entry = ended("gpu-hpc")
        assert "--max-gpu-hours 0.0005" in entry["reason"], entry
        assert entry["backend"] == "slurm" and entry["cost"]["gpu_hours"] >= 0.0005
        assert "gpu-hpc" not in manager.registry.names()
        wait_for(lambda: not slurm.job_ids(), 120, "the queue to empty")
    finally:
        close_all()
