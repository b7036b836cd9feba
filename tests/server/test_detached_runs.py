"""Runs outlive whoever started them (issue 26 item 3), on a real ``jupyter server`` process
that is stopped and started again, with real runs of a real pipeline.

- a lab-started run survives the server's shutdown, shows as running after its restart and
  finishes ``ok``;
- a run killed with SIGKILL reads ``interrupted`` in every door (REST, CLI status and runs);
- the CLI cancels a lab-started run;
- the push channel tells the lab that a run ended (the lab's notification).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import psutil
import pytest
from aiinfra_cli import aiinfra
from live_server import LiveServer
from nbfiles import write_notebook
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from waiting import wait_for

FINAL = {"ok", "cached", "failed", "skipped"}


def _gated_pipeline(folder: Path) -> Path:
    """``wait`` says it started, then waits for a ``gate`` file; ``after`` runs after it."""
    folder.mkdir(parents=True)
    write_notebook(
        folder / "wait.ipynb",
        "gate = 'gate'",
        "import os, time\nopen('started', 'w').close()\n"
        "while not os.path.exists(gate):\n    time.sleep(0.1)\n"
        "open('ran.log', 'a').write('wait\\n')",
    )
    write_notebook(folder / "after.ipynb", "x = 0", "open('ran.log', 'a').write('after\\n')")
    (folder / "pipeline.yaml").write_text(
        "name: gated\nsteps:\n"
        "  wait:\n    notebook: wait.ipynb\n    retries: 0\n"
        "  after:\n    notebook: after.ipynb\n    after: [wait]\n"
    )
    return folder / "pipeline.yaml"


class Lab:
    """The servers a test starts (one at a time, on the same folders) and the runs they launch."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.server: LiveServer | None = None
        self.pids: list[int] = []

    def start(self) -> LiveServer:
        self.server = LiveServer(self.tmp)
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        assert self.server is not None
        raw = json.dumps(body).encode() if body is not None else None
        code, reply = self.server.request(method, "aiinfra/api/" + path, raw)
        return code, json.loads(reply) if reply else {}

    def launch(self, pipeline: str) -> tuple[str, str, int]:
        """POST a run; (launch id, run id, runner pid) once its first step has started."""
        code, launch = self.call("POST", "pipelines/runs", {"pipeline": pipeline})
        assert code == 202, launch
        self.pids.append(launch["pid"])
        folder = self.tmp / "root" / Path(pipeline).parent
        wait_for(
            lambda: (folder / "started").exists() or not _alive(launch["pid"]),
            240,
            "the first step to start",
        )
        assert (folder / "started").exists(), Path(launch["log"]).read_text()[-3000:]
        run_id = wait_for(
            lambda: self.call("GET", f"pipelines/runs/{launch['launch']}")[1].get("run_id"),
            60,
            "the run id",
        )
        runner = json.loads((folder / "runs" / run_id / "run.json").read_text())["runner"]
        assert runner["pid"] == launch["pid"]  # the launched process is the run
        return launch["launch"], run_id, launch["pid"]

    def close(self) -> None:
        self.stop()
        for pid in self.pids:  # nothing left behind: the run leads its own process group
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _launch(lab, launch_id: str) -> dict:
    code, listed = lab.call("GET", "pipelines/runs")
    assert code == 200, listed
    (view,) = [v for v in listed["launches"] if v["launch"] == launch_id]
    return view


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def test_a_lab_run_survives_the_server_and_is_adopted_after_its_restart(lab, tmp_path):
    folder = tmp_path / "root" / "w"
    _gated_pipeline(folder)
    lab.start()
    launch_id, run_id, pid = lab.launch("w/pipeline.yaml")
    code, before = lab.call("GET", f"pipelines/runs/{run_id}")
    assert (code, before["status"]) == (200, "running")

    lab.stop()  # SIGTERM: the server runs stop_extension and exits
    assert _alive(pid), "the server's shutdown stopped the run"
    record = json.loads((folder / "runs" / run_id / "run.json").read_text())
    assert record["status"] == "running"
    assert record["steps"]["wait"]["status"] == "running"
    assert (folder / "runs" / run_id / "heartbeat").exists()

    lab.start()  # the same server again: same root and AIINFRA_HOME
    code, again = lab.call("GET", f"pipelines/runs/{run_id}")
    assert (code, again["status"]) == (200, "running")
    code, listed = lab.call("GET", "pipelines/runs")
    views = {v["launch"]: v for v in listed["launches"]}
    assert views[launch_id]["status"] == "running"  # adopted from its .proc record
    assert views[launch_id]["run_id"] == run_id

    (folder / "gate").touch()
    done = wait_for(
        lambda: (
            (r := lab.call("GET", f"pipelines/runs/{run_id}")[1]).get("status") != "running" and r
        ),
        240,
        "the adopted run to end",
    )
    assert done["status"] == "ok", done
    assert {s["status"] for s in done["steps"].values()} == {"ok"}
    assert (folder / "ran.log").read_text().split() == ["wait", "after"]
    view = wait_for(
        lambda: (
            next(
                (
                    v
                    for v in lab.call("GET", "pipelines/runs")[1]["launches"]
                    if v["launch"] == launch_id
                ),
                None,
            )
            if not _alive(pid)
            else None
        ),
        60,
        "the runner process to exit",
    )
    assert (view["status"], view["exit_code"]) == ("finished", 0)  # from the run's exit file


def test_a_run_killed_with_sigkill_reads_interrupted_in_every_door(lab, tmp_path):
    folder = tmp_path / "root" / "k"
    spec = _gated_pipeline(folder)
    lab.start()
    launch_id, run_id, pid = lab.launch("k/pipeline.yaml")
    os.killpg(pid, signal.SIGKILL)  # the runner and its kernels, with no chance to record it
    wait_for(lambda: not _alive(pid), 60, "the killed runner to be gone")
    assert json.loads((folder / "runs" / run_id / "run.json").read_text())["status"] == "running"
    # A killed process with many threads reads as a zombie before its parent can reap it (the
    # leader waits for its threads): the server learns the exit once waitpid has it.
    wait_for(lambda: _launch(lab, launch_id)["exit_code"] is not None, 60, "the server to reap it")

    code, rest = lab.call("GET", f"pipelines/runs/{run_id}")
    assert (code, rest["status"]) == (200, "interrupted")
    assert rest["steps"]["wait"]["status"] == "failed"
    assert rest["steps"]["wait"]["kind"] == "interrupted"
    assert rest["steps"]["after"]["status"] == "skipped"
    code, listed = lab.call("GET", "pipelines/runs")
    assert [r["status"] for r in listed["runs"] if r["run_id"] == run_id] == ["interrupted"]
    (view,) = [v for v in listed["launches"] if v["launch"] == launch_id]
    assert view["status"] == "interrupted"
    code, reply = lab.call("DELETE", f"pipelines/runs/{run_id}")
    assert code == 409, reply  # nothing left to cancel

    home = tmp_path / "home"
    status = aiinfra("pipeline", "status", str(spec), "--json", home=home)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "interrupted"
    runs = aiinfra("pipeline", "runs", str(spec), "--json", home=home)
    assert runs.returncode == 0, runs.stderr
    assert [r["status"] for r in json.loads(runs.stdout)] == ["interrupted"]

    lab.stop()
    lab.start()  # after a restart too: never running, never ok
    code, rest = lab.call("GET", f"pipelines/runs/{run_id}")
    assert rest["status"] == "interrupted"


def test_the_cli_cancels_a_lab_started_run(lab, tmp_path):
    folder = tmp_path / "root" / "c"
    spec = _gated_pipeline(folder)
    lab.start()
    _, run_id, pid = lab.launch("c/pipeline.yaml")

    cancel = aiinfra("pipeline", "cancel", str(spec), home=tmp_path / "home")
    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout.strip().startswith(f"run {run_id}: interrupted (SIGINT")
    assert not _alive(pid)
    code, rest = lab.call("GET", f"pipelines/runs/{run_id}")
    assert rest["status"] == "interrupted"
    assert all(s["status"] in FINAL for s in rest["steps"].values())  # the runner recorded it
    again = aiinfra("pipeline", "cancel", str(spec), home=tmp_path / "home")
    assert again.returncode == 1
    assert "already ended" in again.stderr


def test_the_push_channel_says_a_run_ended(lab, tmp_path):
    folder = tmp_path / "root" / "e"
    folder.mkdir(parents=True)
    write_notebook(folder / "boom.ipynb", "x = 0", "raise ValueError('bad value\\nsecond line')")
    (folder / "pipeline.yaml").write_text(
        "name: ends\nsteps:\n  boom:\n    notebook: boom.ipynb\n    retries: 0\n"
    )
    server = lab.start()

    async def watch() -> dict:
        url = f"ws://127.0.0.1:{server.port}/aiinfra/api/events"
        headers = {"Authorization": f"token {server.token}"}
        socket = await websocket_connect(HTTPRequest(url, headers=headers))
        try:
            while json.loads(await socket.read_message())["type"] != "runs":
                pass  # the first listing: what was there before
            code, launch = await asyncio.to_thread(
                lab.call, "POST", "pipelines/runs", {"pipeline": "e/pipeline.yaml"}
            )
            assert code == 202, launch
            lab.pids.append(launch["pid"])

            async def ended() -> dict:
                while True:
                    message = await socket.read_message()
                    assert message is not None, "socket closed"
                    data = json.loads(message)
                    if data["type"] == "run-ended":
                        return data["run"]

            return await asyncio.wait_for(ended(), 240)
        finally:
            socket.close()

    event = asyncio.run(watch())
    assert event["pipeline"] == "ends"
    assert event["status"] == "failed"
    assert event["folder"] == f"e/runs/{event['run_id']}"
    (failed,) = event["failed_steps"]
    assert failed["step"] == "boom"
    assert "ValueError: bad value" in failed["error"]
    assert "\n" not in failed["error"]  # one line
    assert event["trigger"]["kind"] == "lab"
