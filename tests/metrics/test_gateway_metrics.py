"""A gateway cluster's workers are sampled too: the plugins go through the gateway's TLS
proxy (pickled by value), and the series come back the same way (the real session gateway)."""

from __future__ import annotations

from gateway_server import gateway, gateway_server  # noqa: F401 - fixtures
from waiting import wait_for

from aiinfra_magics.clusters import host
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.metrics.series import cluster_metrics


def test_a_gateway_clusters_hosts_reach_status_and_the_series(gateway):  # noqa: F811
    manager = ClusterManager()
    spec = ClusterSpec.from_options({
        "name": "gwm", "backend": "gateway", "gateway_address": gateway.address,
        "proxy_address": gateway.proxy_address, "gateway_auth": "simple", "workers": 1,
    })  # fmt: skip
    manager.start(spec)
    try:
        status = wait_for(
            lambda: (
                (s := manager.status("gwm").to_dict())["hosts"] and s["hosts"][0]["latest"] and s
            ),
            timeout=180,
            what="the gateway worker's host",
        )
        assert status["hosts"][0]["latest"]["host"]["memory_total"] > 0
        assert "cpu_efficiency" in status["cost"] and status["warnings"] == []
        series = cluster_metrics("gwm", since=0)
        assert series["hosts"][0]["samples"] and series["as_of"] > 0
    finally:
        host.close_all()
