"""The samples reach the lab through our server only: REST series since T, and
``cluster status`` with its hosts, for a cluster the server started (a real daemon,
real worker processes, a real jupyter server)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

CLI = [sys.executable, "-m", "aiinfra_magics"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )


def test_series_since_t_and_status_hosts(run, api, jp_fetch):
    async def go():
        code, info = await api(
            "POST", "clusters", body={"name": "m1", "backend": "local", "workers": 2, "threads": 1}
        )
        assert code == 201, info
        try:
            # Unauthenticated: refused before anything is asked of the scheduler.
            response = await jp_fetch(
                "aiinfra", "api", "clusters", "m1", "metrics",
                headers={"Authorization": ""}, raise_error=False,
            )  # fmt: skip
            assert response.code in (401, 403)

            for _ in range(600):
                code, first = await api("GET", "clusters", "m1", "metrics")
                assert code == 200, first
                if first["hosts"] and len(first["hosts"][0]["samples"]) >= 2:
                    break
                await asyncio.sleep(0.1)
            [host] = first["hosts"]  # two workers, one machine: one series
            assert host["workers"] == 2 and host["reporter"]
            assert first["interval"] == 1.0 and first["ring_size"] >= len(host["samples"])
            sample = host["samples"][-1]
            assert sample["host"]["memory_total"] > 0 and 0 <= sample["host"]["cpu_percent"] <= 100

            # Since T: only what came after, and the reply's as_of is the next T.
            t = first["as_of"]
            for _ in range(600):
                code, later = await api("GET", "clusters", "m1", "metrics", params={"since": t})
                if later["hosts"][0]["samples"]:
                    break
                await asyncio.sleep(0.1)
            assert all(s["timestamp"] > t for s in later["hosts"][0]["samples"])
            assert later["as_of"] >= t

            for bad in ("yesterday", "-1", "nan", "inf"):
                code, body = await api("GET", "clusters", "m1", "metrics", params={"since": bad})
                assert code == 400 and body["field"] == "since", body
                assert body["message"].startswith("since: got") and "Unix time" in body["message"]
            code, body = await api("GET", "clusters", "nope", "metrics")
            assert code == 404 and body["field"] == "name"

            # `cluster status --json` has each host's latest sample; the text a line per host.
            done = await asyncio.get_running_loop().run_in_executor(
                None, cli, "cluster", "status", "m1", "--json"
            )
            assert done.returncode == 0, done.stderr
            status = json.loads(done.stdout)
            [shown] = status["hosts"]
            assert shown["host"] == host["host"] and shown["workers"] == 2
            assert shown["latest"]["host"]["memory_total"] == sample["host"]["memory_total"]
            assert not shown["latest"]["gpus"]  # no GPU on this machine
            cost = status["cost"]
            assert 0 <= cost["cpu_efficiency"] <= 1 and cost["gpu_efficiency"] is None
            assert cost["peak_memory"] > 0 and status["warnings"] == []
            text = await asyncio.get_running_loop().run_in_executor(
                None, cli, "cluster", "status", "m1"
            )
            lines = text.stdout.splitlines()
            assert any(
                ln.startswith(f"host {host['host']}") and "2 workers: cpu" in ln for ln in lines
            )
            assert any(ln.startswith("efficiency") and "CPU" in ln for ln in lines), text.stdout
        finally:
            code, _ = await api("DELETE", "clusters", "m1")
        assert code == 200

    run(go())
