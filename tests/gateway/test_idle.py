"""``--idle-timeout``: an idle cluster stops itself and the history says why (local, gateway)."""

from __future__ import annotations

import waiting
from distributed import Client, LocalCluster

from aiinfra_magics.clusters import cost, history
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec

IDLE_S = 10


def wait_for(predicate, timeout: float = 240.0, what: str = "condition"):
    return waiting.wait_for(predicate, timeout, what)


def ended(name: str) -> dict | None:
    found = [e for e in history.read_history() if e["name"] == name]
    return found[-1] if found else None


def check_idle_end(manager: ClusterManager, name: str) -> dict:
    entry = wait_for(lambda: ended(name), what=f"{name} to stop itself")
    assert "idle timeout" in entry["reason"] and f"{IDLE_S}s" in entry["reason"], entry
    assert name not in manager.registry.names()
    used = entry["cost"]
    assert used["worker_hours"] > 0
    # It stopped for idleness, not early: at least the timeout passed since it went idle.
    assert entry["ended"] - used["idle_since"] >= IDLE_S * 0.9
    return entry


def test_local_cluster_stops_when_idle():
    manager = ClusterManager()
    spec = ClusterSpec.from_options(
        {"name": "idle-local", "backend": "local", "workers": 1, "idle_timeout": f"{IDLE_S}s"}
    )
    started = manager.start(spec)
    with Client(started.scheduler_address, set_as_default=False) as client:
        assert client.submit(lambda: 7).result(timeout=60) == 7
    shown = manager.status("idle-local").to_dict()["cost"]
    assert shown["idle_timeout"] == IDLE_S
    entry = check_idle_end(manager, "idle-local")
    assert entry["backend"] == "local"


def test_gateway_cluster_stops_when_idle(gateway):
    manager = ClusterManager()
    spec = ClusterSpec.from_options({
        "name": "idle-gw", "backend": "gateway", "gateway_address": gateway.address,
        "proxy_address": gateway.proxy_address, "gateway_auth": "simple",
        "workers": 1, "idle_timeout": f"{IDLE_S}s",
    })  # fmt: skip
    manager.start(spec)
    client = manager.connect("idle-gw")
    try:
        assert client.submit(lambda: 7).result(timeout=180) == 7
    finally:
        client.close()
    check_idle_end(manager, "idle-gw")
    with gateway.opened() as gw:
        assert gw.list_clusters() == []


def test_plugin_arms_idle_on_a_scheduler_it_cannot_configure():
    """The fallback for gateways without an idle_timeout option: the plugin sets it remotely."""
    with LocalCluster(
        n_workers=1, processes=True, dashboard_address=":0", host="127.0.0.1"
    ) as cluster:
        cost.install_remote(cluster.scheduler_address, None, idle_timeout=3)
        wait_for(lambda: cluster.scheduler.status.name == "closed", what="idle close")
        report = cost.plugin_of(cluster.scheduler).report()
        assert report["end_reason"] == "idle for 3s (idle timeout)"
