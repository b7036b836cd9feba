"""A SLURM cluster through the jupyter server: its jobs in REST, its dashboard through the proxy.

The scheduler runs on the login node (here: the server's cluster daemon), bound to
loopback; the lab's proxy (aiinfra/dashboard/NAME/...) is the only way a browser
reaches it, so users behind a login node need no SSH tunnel.
"""

from __future__ import annotations

import asyncio
import json

import pytest

# pytest-jupyter ships no entry point; its fixtures are imported where they are used.
from pytest_jupyter.jupyter_server import *  # noqa: F403

FLAGS = {"cores": 1, "memory": "1GB", "walltime": "00:10:00", "interface": "lo"}


@pytest.fixture
def jp_server_config() -> dict:  # noqa: F811 - replaces pytest-jupyter's
    return {"ServerApp": {"jpserver_extensions": {"aiinfra_magics": True}}}


def test_slurm_dashboard_opens_through_the_lab_proxy(
    slurm, jp_fetch, jp_asyncio_loop, jp_base_url, http_server_client
):
    async def api(method: str, *parts: str, body: dict | None = None) -> tuple[int, dict]:
        raw = json.dumps(body).encode() if body is not None else None
        response = await jp_fetch(
            "aiinfra", "api", *parts, method=method, body=raw, raise_error=False
        )
        return response.code, json.loads(response.body or b"null")

    async def go() -> None:
        body = {"name": "hpc", "backend": "slurm", "workers": 1, **FLAGS}
        code, info = await api("POST", "clusters", body=body)
        assert code == 201, info
        try:
            assert info["backend"] == "slurm"
            assert info["dashboard_link"].startswith("http://127.0.0.1:")  # loopback only
            for _ in range(600):  # the cluster's JSON carries its SLURM jobs
                code, status = await api("GET", "clusters", "hpc")
                jobs = [j["state"] for j in status.get("jobs", [])]
                if jobs == ["RUNNING"] and status["workers"] == 1:
                    break
                await asyncio.sleep(0.2)
            (job,) = status["jobs"]
            assert status["workers"] == 1
            assert job["job_id"] in slurm.job_ids() and job["node"] == slurm.node
            assert status["queue"] == "1 running"
            # The lab's tab opens the authenticated URL, which redirects to the cluster's
            # capability URL; the page there is fetched without Jupyter credentials.
            first = await jp_fetch(
                "aiinfra", "dashboard", "hpc", "status", follow_redirects=False, raise_error=False
            )
            assert first.code == 302
            view = first.headers["Location"].rsplit("/", 1)[0]
            assert view.startswith(jp_base_url + "aiinfra/dashboard/hpc/~")
            page = await http_server_client.fetch(first.headers["Location"])
            html = page.body.decode()
            assert page.code == 200 and "bokeh" in html
            assert 'href="statics/css/base.css"' in html  # relative assets stay in the proxy
            workers = await http_server_client.fetch(f"{view}/info/main/workers.html")
            # This cluster's scheduler answers (on the login node, reached only through the proxy).
            assert f"Scheduler {info['scheduler_address']}" in workers.body.decode()
        finally:
            code, stopped = await api("DELETE", "clusters", "hpc")
        assert code == 200 and stopped["status"] == "stopped"
        response = await jp_fetch("aiinfra", "dashboard", "hpc", "status", raise_error=False)
        assert response.code == 404

    jp_asyncio_loop.run_until_complete(go())
