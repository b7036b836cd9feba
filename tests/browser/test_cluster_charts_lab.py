"""Issue 28 in a real JupyterLab and Chromium: a cluster's per-host charts, one GPU enlarged.

A local cluster started by this test process, whose worker reads the fake NVML device
(tests/nvml_fake.py; no GPU can exist here), opened by its command as the palette would:
the panel shows the host's card with CPU, memory and each GPU; a click enlarges GPU 0.
The samples come from the server's REST route only (the panel's requests are checked).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chromium import browser_page
from labserver import NEEDS_LAB

pytestmark = NEEDS_LAB

TESTS = Path(__file__).resolve().parents[1]


def test_a_clusters_hosts_and_one_gpu_enlarged(live_lab, monkeypatch, tmp_path):
    from aiinfra_magics.clusters import host
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec

    feed = json.loads((TESTS / "server" / "data" / "nvml_feed.json").read_text())
    feed["ticks"] = [dict(feed["ticks"][0], util=[37, 0])] * 3
    (tmp_path / "feed.json").write_text(json.dumps(feed))
    # The worker processes this test's cluster spawns read the fake NVML device: they start
    # with this process's sys.path (multiprocessing's spawn), the fake's folder first.
    monkeypatch.syspath_prepend(str(TESTS / "metrics" / "fakenvml"))
    monkeypatch.delitem(sys.modules, "pynvml", raising=False)  # whatever is imported here goes too
    monkeypatch.setenv("AIINFRA_TEST_NVML_FEED", str(tmp_path / "feed.json"))
    monkeypatch.setenv("DASK_DISTRIBUTED__DIAGNOSTICS__NVML", "False")
    ClusterManager().start(
        ClusterSpec.from_options({"name": "hosts", "backend": "local", "workers": 1, "threads": 1})
    )
    try:
        with browser_page(width=1400, height=900) as page:
            asked: list[str] = []
            page.on("request", lambda r: asked.append(r.url))
            live_lab.open(page)
            page.locator(".jp-LabShell").wait_for()
            page.evaluate(  # as the palette runs it (its result, a widget, is not wanted here)
                "() => { window.jupyterapp.commands.execute('aiinfra:open-chart', {chart: 'hosts', cluster: 'hosts'}); }"
            )
            panel = page.locator('.aiinfra-cluster-charts[data-cluster="hosts"]')
            card = panel.locator(".aiinfra-host-card")
            card.locator('.aiinfra-spark[data-title="CPU"]').wait_for()
            card.locator('.aiinfra-gpu-tile[data-gpu="1"]').wait_for()  # both boards, each its tile
            card.locator('.aiinfra-gpu-tile[data-gpu="0"]').get_by_text("GPU 0: 37%").wait_for()
            card.locator('.aiinfra-gpu-tile[data-gpu="0"]').click()
            big = panel.locator('.aiinfra-gpu-enlarged[data-gpu="0"]')
            big.get_by_text("Utilisation: 37%").wait_for()
            assert "NVIDIA H100 80GB HBM3" in big.inner_text()
            big.get_by_text("Back to all hosts").click()
            big.wait_for(state="detached")
            # Polled on while open, each time for what came since the last reply.
            with page.expect_request(
                lambda r: "/aiinfra/api/clusters/hosts/metrics?since=" in r.url
            ):
                pass
            assert all(u.startswith(live_lab.url) for u in asked if "aiinfra" in u)
    finally:
        host.close_all()
