"""Schedules over REST on a real ``jupyter server`` process, stopped and started again."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from live_server import LiveServer
from nbfiles import write_notebook
from run_records import runs_of, stop_scheduler
from waiting import wait_for

from aiinfra_magics.pipelines.schedule_runs import process_alive


class Server(LiveServer):
    """A jupyter server with the extension, on ``tmp/root`` and the given AIINFRA_HOME (so a
    restart finds the same schedules); its requests send and read JSON."""

    def __init__(self, tmp: Path, home: Path) -> None:
        super().__init__(tmp, home=home)

    def request(
        self, method: str, path: str, body: Any = None, token: bool = True
    ) -> tuple[int, Any]:
        data = (
            json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        )
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"token {self.token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, text = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text.decode(errors="replace")


def _ok_runs(folder: Path, schedule: str) -> list[dict[str, Any]]:
    return [r for r in runs_of(folder, schedule) if r.get("status") == "ok"]


@pytest.fixture
def site(tmp_path: Path, aiinfra_home: Path):
    root = tmp_path / "root"
    write_notebook(root / "jobs" / "report.ipynb", "n = 1", "print(n + 1)")
    (root / "jobs" / "pipeline.yaml").write_text(
        "name: jobs\nsteps:\n  report:\n    notebook: report.ipynb\n"
    )
    servers: list[Server] = []

    def start() -> Server:
        server = Server(tmp_path, aiinfra_home)
        servers.append(server)
        return server

    yield root, start
    for server in servers:
        if server.proc.poll() is None:
            server.stop()
    stop_scheduler(aiinfra_home)


def test_schedule_made_over_rest_fires_across_a_server_restart(site, aiinfra_home) -> None:
    root, start = site
    home = aiinfra_home
    server = start()
    status, made = server.request(
        "POST", "aiinfra/api/schedules",
        {"name": "rest", "path": "jobs/report.ipynb", "every": "2s", "params": {"n": 41}},
    )  # fmt: skip
    assert status == 201, made
    assert made["name"] == "rest" and made["trigger"] == {"every": "2s", "seconds": 2.0}
    assert made["path"] == str((root / "jobs" / "report.ipynb").resolve())
    folder = root / "jobs"
    wait_for(lambda: _ok_runs(folder, "rest"), timeout=240, what="a run while the server is up")
    executed = json.loads(
        (folder / _ok_runs(folder, "rest")[0]["steps"]["report"]["notebook"]).read_text()
    )
    assert "42" in json.dumps(executed["cells"][-1]["outputs"])  # typed JSON params, not code

    server.stop()
    stopped_at = time.time()
    wait_for(lambda: any(r["start"] > stopped_at for r in _ok_runs(folder, "rest")), timeout=240,
             what="a run while no Jupyter server runs")  # fmt: skip

    # The service dies too (SIGKILL): the server's next start brings it back.
    pid = json.loads((home / "scheduler" / "service.pid").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(pid, None), what="the killed service to be gone")
    server = start()
    wait_for(lambda: server.request("GET", "aiinfra/api/schedules")[1]["service"]["running"],
             what="the server's start to revive the service")  # fmt: skip
    status, listing = server.request("GET", "aiinfra/api/schedules")
    assert status == 200
    [shown] = listing["schedules"]
    assert shown["name"] == "rest" and shown["paused"] is False and shown["next_run"]
    assert listing["service"]["pid"] != pid
    restarted_at = time.time()
    wait_for(lambda: any(r["start"] > restarted_at for r in _ok_runs(folder, "rest")), timeout=240,
             what="runs after the restart")  # fmt: skip
    wait_for(lambda: (server.request("GET", "aiinfra/api/schedules")[1]["schedules"][0]["last_run"]
                      or {}).get("run_id"))  # fmt: skip

    status, paused = server.request("POST", "aiinfra/api/schedules/rest/pause")
    assert status == 200 and paused["paused"] is True and paused["next_run"] is None
    status, resumed = server.request("POST", "aiinfra/api/schedules/rest/resume")
    assert status == 200 and resumed["paused"] is False
    status, _ = server.request("POST", "aiinfra/api/schedules/rest/pause")
    status, fired = server.request("POST", "aiinfra/api/schedules/rest/run")
    assert status in (202, 409), fired  # 409: the previous run still going (overlap skip)
    status, gone = server.request("DELETE", "aiinfra/api/schedules/rest")
    assert status == 200 and gone["removed"] is True
    assert server.request("GET", "aiinfra/api/schedules")[1]["schedules"] == []
    assert server.request("GET", "aiinfra/api/schedules/rest")[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "b", "path": "jobs/report.ipynb", "cron": "61 * * * *"}, "cron"),
        (
            {"name": "b", "path": "jobs/report.ipynb", "cron": "0 2 * * *", "tz": "Nowhere/City"},
            "tz",
        ),
        ({"name": "b", "path": "jobs/report.ipynb", "every": "-5m"}, "every"),
        ({"name": "b", "path": "jobs/report.ipynb", "every": "5m", "overlap": "twice"}, "overlap"),
        ({"name": "B b", "path": "jobs/report.ipynb", "every": "5m"}, "name"),
        ({"name": "b", "path": "../outside.ipynb", "every": "5m"}, "path"),
        ({"name": "b", "path": "jobs/missing.ipynb", "every": "5m"}, "path"),
        (
            {
                "name": "b",
                "path": "jobs/report.ipynb",
                "every": "5m",
                "params": {"n; import os": 1},
            },
            "params",
        ),
        ({"name": "b", "path": "jobs/report.ipynb", "every": "5m", "params": {"nope": 1}}, "-p"),
        (
            {
                "name": "b",
                "path": "jobs/report.ipynb",
                "every": "5m",
                "param_files": ["/etc/passwd"],
            },
            "param_files",
        ),
        ({"name": "b", "path": "jobs/pipeline.yaml", "every": "5m", "notify": ["sms:1"]}, "notify"),
        ({}, "body"),
    ],
)
def test_bad_schedules_are_400_naming_the_field_and_never_stored(site, body, field) -> None:
    root, start = site
    (root.parent / "outside.ipynb").write_text("{}")
    server = start()
    status, reply = server.request("POST", "aiinfra/api/schedules", body)
    assert status == 400, reply
    assert reply["field"] == field and reply["message"].startswith(f"{field}:"), reply
    status, listing = server.request("GET", "aiinfra/api/schedules")
    assert listing["schedules"] == [] and listing["service"]["running"] is False


def test_every_verb_needs_authentication_and_names_are_checked(site) -> None:
    _, start = site
    server = start()
    for method, path in [
        ("GET", "aiinfra/api/schedules"),
        ("POST", "aiinfra/api/schedules"),
        ("GET", "aiinfra/api/schedules/x"),
        ("DELETE", "aiinfra/api/schedules/x"),
        ("POST", "aiinfra/api/schedules/x/run"),
        ("POST", "aiinfra/api/schedules/x/pause"),
    ]:
        assert server.request(method, path, token=False)[0] == 403, (method, path)
    assert server.request("POST", "aiinfra/api/schedules/nothere/run")[0] == 404
    status, reply = server.request("POST", "aiinfra/api/schedules/..%2Fx/pause")
    assert status in (400, 404) and reply
    assert server.request("POST", "aiinfra/api/schedules/x/explode")[0] == 404
