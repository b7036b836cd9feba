"""The sidebar shows a SLURM cluster and its jobs, in a real JupyterLab through Chromium.

The cluster runs on the test's one-node SLURM (tests/slurm_fixture.py), started
through the lab's REST API; the panel must list it with one line per job (state,
node, time left) and the queue summary the server's live details give.
"""

from __future__ import annotations

from chromium import browser_page
from labserver import NEEDS_LAB
from slurm_fixture import slurm, slurm_cluster, wait_for  # noqa: F401 - fixtures

pytestmark = NEEDS_LAB

FLAGS = {"cores": 1, "memory": "1GB", "walltime": "00:10:00", "interface": "lo"}


def test_sidebar_shows_the_slurm_cluster_and_its_jobs(slurm, live_lab, tmp_path):  # noqa: F811
    code, info = live_lab.call(
        "aiinfra/api/clusters", "POST", {"name": "hpc", "backend": "slurm", "workers": 2, **FLAGS}
    )
    assert code == 201, info
    try:
        wait_for(
            lambda: len(live_lab.call("aiinfra/api/clusters/hpc")[1].get("jobs", [])) == 2,
            120,
            "two SLURM jobs",
        )
        with browser_page() as page:
            live_lab.open_sidebar(page)
            card = page.locator('.aiinfra-cluster[data-name="hpc"]')
            card.wait_for()
            assert "slurm" in card.locator(".aiinfra-cluster-head").inner_text()
            # Both jobs running on the node, each with its time left; the queue summary.
            running = card.locator(".aiinfra-job-running")
            page.wait_for_function(
                "() => document.querySelectorAll("
                "'.aiinfra-cluster[data-name=\"hpc\"] .aiinfra-job-running').length === 2"
            )
            lines = sorted(running.all_inner_texts())
            ids = sorted(slurm.job_ids())
            for line, job_id in zip(lines, ids):
                assert line.startswith(f"job {job_id} RUNNING on {slurm.node} · ")
                assert line.endswith(" left")
            assert card.locator(".aiinfra-queue-summary").inner_text() == "jobs: 2 running"
            page.screenshot(path=str(tmp_path / "slurm-sidebar.png"))
    finally:
        code, stopped = live_lab.call("aiinfra/api/clusters/hpc", "DELETE")
    assert code == 200, stopped
    wait_for(lambda: not slurm.job_ids(), 60, "the queue to empty")
