"""``--max-workers`` refuses scaling past it; ``--max-gpu-hours`` stops the cluster.

GPUs are mocked by a worker ``GPU`` resource, which the cost plugin counts: dask config for
the local cluster, the test gateway's ``environment=gpu-sim`` option for a gateway cluster
(tests/slurm/test_slurm_caps.py does the same on SLURM).
"""

from __future__ import annotations

import subprocess
import sys
import time

import dask
import distributed  # noqa: F401 - see test_max_gpu_hours_stops_the_cluster
import pytest

from aiinfra_magics.clusters import history
from aiinfra_magics.clusters.host import close_all
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.errors import InputError

CLI = [sys.executable, "-m", "aiinfra_magics"]


def wait_for(predicate, timeout: float = 240.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def test_max_workers_is_checked_before_anything_starts():
    with pytest.raises(InputError, match=r"^workers: got 3; .*--max-workers 2"):
        ClusterSpec.from_options({"backend": "local", "workers": 3, "max_workers": 2})
    with pytest.raises(InputError, match=r"^adapt: got 0:5; .*MAX <= 2"):
        ClusterSpec.from_options({"backend": "local", "adapt": "0:5", "max-workers": "2"})
    with pytest.raises(InputError, match="max-gpu-hours"):
        ClusterSpec.from_options({"backend": "local", "max_gpu_hours": "-1"})
    with pytest.raises(InputError, match="max-workers"):
        ClusterSpec.from_options({"backend": "local", "max_workers": 0})


def test_max_workers_caps_scale_and_adapt_of_a_running_cluster():
    manager = ClusterManager()
    spec = ClusterSpec.from_options(
        {"name": "capped", "backend": "local", "workers": 1, "max_workers": 2}
    )
    try:
        manager.start(spec)
        with pytest.raises(InputError, match=r"^workers: got 3; .*capped at 2 \(--max-workers 2\)"):
            manager.scale("capped", 3)
        with pytest.raises(InputError, match=r"^adapt: got 1:4; .*MAX <= 2"):
            manager.adapt("capped", 1, 4)
        assert manager.status("capped").workers == 1  # nothing changed
        assert manager.scale("capped", 2).workers == 2  # up to the cap is fine
        # The CLI, another process: the cap travels in the registry; exit 2, one line.
        proc = subprocess.run(
            [*CLI, "cluster", "scale", "capped", "5"], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2 and "--max-workers 2" in proc.stderr, proc.stderr
    finally:
        close_all()


def test_max_gpu_hours_stops_the_cluster():
    # A mocked GPU: the worker declares a GPU resource, which the cost plugin counts.
    # (distributed is imported above: had its config defaults come in inside this block, dask
    # would drop the whole "distributed" section on leaving it, breaking later tests.)
    with dask.config.set({"distributed.worker.resources.GPU": 1}):
        manager = ClusterManager()
        spec = ClusterSpec.from_options(
            {"name": "gpu-capped", "backend": "local", "workers": 1, "max_gpu_hours": 0.0005}
        )
        try:
            manager.start(spec)
            entry = wait_for(
                lambda: next(
                    (e for e in history.read_history() if e["name"] == "gpu-capped"), None
                ),
                what="the cluster to stop at its GPU-hours cap",
            )
        finally:
            close_all()
    assert "--max-gpu-hours 0.0005" in entry["reason"], entry
    assert entry["cost"]["gpu_hours"] >= 0.0005
    assert "gpu-capped" not in manager.registry.names()


def test_max_gpu_hours_stops_a_gateway_cluster(gateway):
    manager = ClusterManager()
    spec = ClusterSpec.from_options({
        "name": "gpu-gw", "backend": "gateway", "gateway_address": gateway.address,
        "proxy_address": gateway.proxy_address, "gateway_auth": "simple", "workers": 1,
        "option": ["environment=gpu-sim"], "max_gpu_hours": 0.0005,
    })  # fmt: skip
    try:
        manager.start(spec)
        entry = wait_for(
            lambda: next((e for e in history.read_history() if e["name"] == "gpu-gw"), None),
            what="the gateway cluster to stop at its GPU-hours cap",
        )
    finally:
        close_all()
    assert "--max-gpu-hours 0.0005" in entry["reason"], entry
    assert entry["backend"] == "gateway" and entry["cost"]["gpu_hours"] >= 0.0005
    assert "gpu-gw" not in manager.registry.names()
    # Stopped on the gateway itself (its scheduler and worker processes go with it); the
    # history line is written first, the gateway's shutdown follows.
    with gateway.opened() as gw:
        wait_for(lambda: gw.list_clusters() == [], what="the gateway to drop the cluster")
