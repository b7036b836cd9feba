"""``--idle-timeout`` and cost on a real SLURM: an idle cluster stops, its jobs leave the queue."""

from __future__ import annotations

import subprocess
import sys

from distributed import Client
from slurm_fixture import wait_for

from aiinfra_magics.clusters import history
from aiinfra_magics.clusters.host import close_all
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec

IDLE_S = 10


def ended(name: str) -> dict | None:
    found = [e for e in history.read_history() if e["name"] == name]
    return found[-1] if found else None


def test_slurm_cluster_stops_when_idle(slurm):
    manager = ClusterManager()
    spec = ClusterSpec.from_options({
        "name": "idle-hpc", "backend": "slurm", "workers": 1, "cores": 1, "memory": "1GB",
        "walltime": "00:10:00", "interface": "lo", "idle_timeout": f"{IDLE_S}s",
    })  # fmt: skip
    try:
        started = manager.start(spec)
        with Client(started.scheduler_address, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=180)
            assert client.submit(lambda: 7).result(timeout=60) == 7
        assert slurm.job_ids(), "the worker runs as a SLURM job"
        # The cost plugin runs on the SLURM cluster's scheduler: the status shows its clock.
        shown = manager.status("idle-hpc").to_dict()["cost"]
        assert shown["idle_timeout"] == IDLE_S and shown["workers_now"] == 1
        wait_for(lambda: ended("idle-hpc"), 240, "the SLURM cluster to stop itself")
        entry = ended("idle-hpc")
        assert "idle timeout" in entry["reason"] and f"{IDLE_S}s" in entry["reason"], entry
        assert entry["backend"] == "slurm"
        assert entry["cost"]["worker_hours"] > 0 and entry["cost"]["core_hours"] > 0
        assert "idle-hpc" not in manager.registry.names()
        shown = subprocess.run(
            [sys.executable, "-m", "aiinfra_magics", "cluster", "history"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert "idle-hpc" in shown.stdout and "idle timeout" in shown.stdout, shown
        wait_for(lambda: not slurm.job_ids(), 120, "the queue to empty")
    finally:
        close_all()
