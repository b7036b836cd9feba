"""A cluster started with the plain dask-gateway client shows in the sidebar and stops from there.

The cluster is made by ``dask_gateway.Gateway(...).new_cluster()`` on the test's real
gateway (tests/gateway_server.py), not through aiinfra; the gateway is registered with
``aiinfra gateway add`` in the registry the lab shares (``live_lab``). The panel lists
the cluster as ``GATEWAY-ID8``; its Stop button stops it on the gateway, which the
plain client then confirms, and the card leaves the panel.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from chromium import browser_page
from gateway_server import forget, gateway, gateway_server  # noqa: F401 - fixtures
from labserver import NEEDS_LAB
from waiting import wait_for

pytestmark = NEEDS_LAB


@pytest.fixture
def lab_env(gateway) -> dict[str, str]:  # noqa: F811
    """The lab's server authenticates to the gateway as the plain client does (dask config)."""
    return gateway.env()


def running_ids(gateway) -> set[str]:  # noqa: F811
    with gateway.opened() as gw:
        return {report.name for report in gw.list_clusters()}


def test_plain_gateway_cluster_shows_in_the_sidebar_and_stops_there(gateway, live_lab, tmp_path):  # noqa: F811
    added = subprocess.run(
        [sys.executable, "-m", "aiinfra_magics", "gateway", "add", "lab", gateway.address,
         "--proxy-address", gateway.proxy_address],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    client = gateway.client()  # the plain client, as a script elsewhere would use it
    try:
        plain = client.new_cluster(shutdown_on_close=False)
        cluster_id = plain.name
        forget(plain)  # this process lets go; the cluster keeps running on the gateway
        name = f"lab-{cluster_id[:8]}"
        assert cluster_id in running_ids(gateway)
        with browser_page() as page:
            live_lab.open_sidebar(page)
            card = page.locator(f'.aiinfra-cluster[data-name="{name}"]')
            card.wait_for()
            head = card.locator(".aiinfra-cluster-head").inner_text()
            assert "running" in head and "gateway · gateway" in head, head
            page.screenshot(path=str(tmp_path / "gateway-sidebar.png"))

            card.locator("button.aiinfra-stop").click()
            page.locator(".jp-Dialog button.jp-mod-accept.jp-mod-warn").click()  # confirm
            card.wait_for(state="detached")
        # Really gone on the gateway, as the plain client sees it; and from the lab's list.
        wait_for(
            lambda: client.get_cluster(cluster_id).status.name == "STOPPED",
            120,
            "the gateway to stop the cluster",
        )
        assert cluster_id not in running_ids(gateway)
        listed = live_lab.api("aiinfra/api/clusters")["clusters"]
        assert name not in [c["name"] for c in listed], listed
    finally:
        for left in running_ids(gateway):
            with gateway.opened() as gw:
                gw.stop_cluster(left)
        forget(client)
