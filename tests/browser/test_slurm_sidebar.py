"""The sidebar shows a SLURM cluster and its jobs, in a real JupyterLab through Chromium.

The cluster runs on the test's one-node SLURM (tests/slurm_fixture.py), started
through the lab's REST API; the panel must list it with one line per job (state,
node, time left) and the queue summary the server's live details give.
"""

from __future__ import annotations

import json
import urllib.request

from chromium import browser_page
from slurm_fixture import slurm, slurm_cluster, wait_for  # noqa: F401 - fixtures

# The lab fixture, Chromium's flags and the same skips (no Chromium, no built labextension).
from test_sidebar import TOKEN, lab, pytestmark  # noqa: F401

FLAGS = {"cores": 1, "memory": "1GB", "walltime": "00:10:00", "interface": "lo"}


def _call(url: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def test_sidebar_shows_the_slurm_cluster_and_its_jobs(slurm, lab, tmp_path):  # noqa: F811
    code, info = _call(
        lab,
        "POST",
        "aiinfra/api/clusters",
        {"name": "hpc", "backend": "slurm", "workers": 2, **FLAGS},
    )
    assert code == 201, info
    try:
        wait_for(
            lambda: len(_call(lab, "GET", "aiinfra/api/clusters/hpc")[1].get("jobs", [])) == 2,
            120,
            "two SLURM jobs",
        )
        with browser_page() as page:
            page.goto(f"{lab}lab?token={TOKEN}")
            page.locator('.jp-SideBar [data-id="aiinfra-sidebar"]').click()
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
        code, stopped = _call(lab, "DELETE", "aiinfra/api/clusters/hpc")
    assert code == 200, stopped
    wait_for(lambda: not slurm.job_ids(), 60, "the queue to empty")
