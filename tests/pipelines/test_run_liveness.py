"""How any door tells a live run from a dead one (issue 26 item 3), on real records and processes:
the pid and its start time on the runner's host (a reused pid is not the run), the heartbeat's
age from another host; a dead run reads interrupted, never running or ok."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

import psutil
import pytest

from aiinfra_magics.errors import OperationError
from aiinfra_magics.pipelines.liveness import STALE_S, Heartbeat, cancel, settle
from aiinfra_magics.pipelines.record import RunRecord, list_runs


def _record(folder, run_id: str, runner: dict) -> dict:
    data = {
        "run_id": run_id,
        "pipeline": "p",
        "status": "running",
        "runner": runner,
        "steps": {
            "a": {"status": "ok"},
            "b": {"status": "running"},
            "c": {"status": "pending"},
        },
    }
    path = folder / "runs" / run_id / "run.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return data


def test_a_live_runner_reads_running_and_a_reused_pid_does_not(tmp_path):
    me = psutil.Process()
    alive = _record(tmp_path, "1-live", {"host": platform.node(), "pid": os.getpid(),
                                         "started": me.create_time()})  # fmt: skip
    assert not settle(alive, tmp_path / "runs" / "1-live")
    assert alive["status"] == "running"
    # This pid, but a process that started at another time: the pid was reused.
    reused = _record(tmp_path, "2-reused", {"host": platform.node(), "pid": os.getpid(),
                                            "started": me.create_time() - 3600})  # fmt: skip
    assert settle(reused, tmp_path / "runs" / "2-reused")
    assert reused["status"] == "interrupted"
    assert [s["status"] for s in reused["steps"].values()] == ["ok", "failed", "skipped"]
    assert reused["steps"]["b"]["kind"] == "interrupted"
    # Every reader: RunRecord.load (status) and list_runs (runs).
    assert RunRecord.load(tmp_path, "2-reused").status == "interrupted"
    assert {r["run_id"]: r["status"] for r in list_runs(tmp_path)} == {
        "2-reused": "interrupted",
        "1-live": "running",
    }


def test_another_hosts_run_is_judged_by_its_heartbeat(tmp_path):
    runner = {"host": "elsewhere.example", "pid": 1234, "started": 1.0}
    fresh = _record(tmp_path, "1-fresh", runner)
    beat = Heartbeat(tmp_path / "runs" / "1-fresh")
    beat.beat()  # written as a runner on the other host writes it, now
    assert not settle(fresh, tmp_path / "runs" / "1-fresh")

    stale = _record(tmp_path, "2-stale", runner)
    path = tmp_path / "runs" / "2-stale" / "heartbeat"
    then = time.time() - STALE_S - 5
    path.write_text(json.dumps({**runner, "at": then}))
    os.utime(path, (then, then))
    assert settle(stale, tmp_path / "runs" / "2-stale")
    assert stale["status"] == "interrupted"

    unknown = _record(tmp_path, "3-old", runner)  # no heartbeat (an older aiinfra): cannot tell
    assert not settle(unknown, tmp_path / "runs" / "3-old")


def test_heartbeat_beats_while_the_run_lives_and_goes_with_it(tmp_path):
    beat = Heartbeat(tmp_path, interval=0.05).start()
    first = json.loads((tmp_path / "heartbeat").read_text())
    assert first["pid"] == os.getpid() and first["host"] == platform.node()
    deadline = time.monotonic() + 60
    while json.loads((tmp_path / "heartbeat").read_text())["at"] == first["at"]:
        assert time.monotonic() < deadline, "no second beat"
        time.sleep(0.05)
    beat.stop()
    assert not (tmp_path / "heartbeat").exists()


def test_cancel_checks_the_process_is_the_run(tmp_path):
    # A process that is not the run, under the run's pid but another start time: left alone.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        _record(tmp_path, "1-x", {"host": platform.node(), "pid": other.pid, "started": 1.0})
        with pytest.raises(OperationError, match="already ended"):
            cancel(tmp_path / "runs" / "1-x")
        assert other.poll() is None  # not signalled
        _record(tmp_path, "2-far", {"host": "elsewhere.example", "pid": other.pid, "started": 1.0})
        with pytest.raises(OperationError, match="cancel it there"):
            cancel(tmp_path / "runs" / "2-far")
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
