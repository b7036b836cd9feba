"""The scheduler service for real: its own process, real runs (papermill kernels), no Jupyter.

Every CLI call is the ``aiinfra`` entry point in a fresh process, as a user or cron would
type it. Each test stops the service it started and waits for the runs it fired to end.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from croniter import croniter
from run_records import runs_of, stop_scheduler
from waiting import wait_for

from aiinfra_magics.pipelines.schedule_runs import process_alive


def aiinfra(
    home: Path, *args: str, check: bool = True, cwd: Path | None = None, env: dict | None = None
):
    proc = subprocess.run(
        [sys.executable, "-m", "aiinfra_magics.doors.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "AIINFRA_HOME": str(home), **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"aiinfra {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
    return proc


def listed(home: Path) -> list[dict[str, Any]]:
    return json.loads(aiinfra(home, "pipeline", "schedule", "list", "--json").stdout)


def history(home: Path, name: str) -> list[dict[str, Any]]:
    out = aiinfra(home, "pipeline", "schedule", "history", name, "--json", "--limit", "500")
    return json.loads(out.stdout)


def service(home: Path) -> dict[str, Any]:
    return json.loads(aiinfra(home, "scheduler", "status", "--json").stdout)


@pytest.fixture
def home(aiinfra_home: Path):
    """The test's AIINFRA_HOME; afterwards the service is stopped and every run it fired ended."""
    yield aiinfra_home
    stop_scheduler(aiinfra_home)


@pytest.fixture
def work(tmp_path: Path, notebook) -> Path:
    folder = tmp_path / "work"
    notebook(folder / "report.ipynb", "n = 1", "print(n * 2)")
    notebook(folder / "slow.ipynb", "pause = 3.0", "import time\ntime.sleep(pause)")
    return folder


def test_every_2s_runs_without_jupyter(home: Path, work: Path) -> None:
    """`--every 2s` on a notebook: the service fires real runs; no Jupyter server anywhere."""
    aiinfra(home, "pipeline", "schedule", "add", str(work / "report.ipynb"), "--name", "nightly",
            "--every", "2s", "-p", "n=21")  # fmt: skip
    wait_for(lambda: len([r for r in runs_of(work, "nightly") if r["status"] == "ok"]) >= 2,
             timeout=240, what="two scheduled runs")  # fmt: skip
    runs = [r for r in runs_of(work, "nightly") if r["status"] == "ok"]
    assert runs[0]["trigger"] == {"kind": "schedule", "schedule": "nightly"}
    executed = json.loads((work / runs[0]["steps"]["report"]["notebook"]).read_text())
    assert "42" in json.dumps(executed["cells"][-1]["outputs"])  # -p n=21 reached the notebook
    # No Jupyter server took part: none of this test session's processes is one.
    mark = os.environ["AIINFRA_TEST_SESSION"]
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.environ().get("AIINFRA_TEST_SESSION") == mark:
                assert "jupyter_server" not in " ".join(proc.info["cmdline"] or [])
        except psutil.Error:
            continue
    [shown] = listed(home)
    assert shown["name"] == "nightly" and shown["path"] == str(work / "report.ipynb")
    assert shown["trigger"] == {"every": "2s", "seconds": 2.0}
    assert datetime.fromisoformat(shown["next_run"]).tzinfo is not None
    assert shown["paused"] is False
    wait_for(lambda: (listed(home)[0]["last_run"] or {}).get("status") in ("ok", "running"))
    assert listed(home)[0]["last_run"]["run_id"]
    # Private files: the store and its folder are the user's only.
    folder = home / "scheduler"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "schedules.db").stat().st_mode) == 0o600
    info = service(home)
    assert info["running"] and info["schedules"] == 1


def test_cron_next_run_in_its_zone(home: Path, work: Path) -> None:
    """`list --json` gives next_run in the schedule's zone, as croniter computes it."""
    aiinfra(home, "pipeline", "schedule", "add", str(work / "report.ipynb"), "--name", "berlin",
            "--cron", "30 2 * * *", "--tz", "Europe/Berlin")  # fmt: skip
    [shown] = listed(home)
    assert shown["trigger"] == {"cron": "30 2 * * *", "tz": "Europe/Berlin"}
    at = datetime.fromisoformat(shown["next_run"])
    expected = croniter("30 2 * * *", datetime.now(at.tzinfo)).get_next(datetime)
    assert at == expected and at.utcoffset() == expected.utcoffset()
    assert at.strftime("%H:%M") == "02:30"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--cron", "61 * * * *"], "cron"),
        (["--cron", "0 2 * * *", "--tz", "Mars/Base"], "tz"),
        (["--every", "0s"], "every"),
        (["--every", "1m", "--overlap", "sometimes"], "overlap"),
        (["--every", "1m", "-p", "missing=1"], "-p"),
        (["--every", "1m", "--notify", "pager:123"], "notify"),
        (["--every", "1m", "--cluster", "Bad Name"], "cluster"),
    ],
)
def test_bad_input_is_refused_and_never_stored(home: Path, work: Path, args, field) -> None:
    proc = aiinfra(home, "pipeline", "schedule", "add", str(work / "report.ipynb"),
                   "--name", "bad", *args, check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"aiinfra: error: {field}:"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert listed(home) == []
    assert not (work / ".aiinfra-schedule-bad.yaml").exists()
    assert service(home)["running"] is False  # nothing stored, nothing started


def test_notify_targets_follow_pipeline_runs_rule_and_lists_hide_webhook_urls(
    home: Path, work: Path
) -> None:
    """A schedule takes the targets its runs take (``webhook:$NAME`` too), and its listing
    shows a webhook by scheme and host only: the URL's path is the hook's key."""
    secret = "https://hooks.example.invalid/services/T000/B000/very-secret-key"
    aiinfra(home, "pipeline", "schedule", "add", str(work / "report.ipynb"), "--name", "hooks",
            "--every", "1h", "--notify", f"webhook:{secret}", "--notify", "webhook:$SLACK_URL",
            "--notify", "email:me@lab.org")  # fmt: skip
    [shown] = listed(home)
    assert shown["notify"] == [
        "webhook:https://hooks.example.invalid/…",
        "webhook:$SLACK_URL",
        "email:me@lab.org",
    ]
    text = aiinfra(home, "pipeline", "schedule", "list").stdout
    assert "very-secret-key" not in text
    bad = aiinfra(home, "pipeline", "schedule", "add", str(work / "report.ipynb"),
                  "--name", "bad", "--every", "1h", "--notify", "webhook:ftp://x",
                  check=False)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("aiinfra: error: notify:")


def test_bad_name_and_path_are_refused(home: Path, work: Path) -> None:
    bad = aiinfra(home, "pipeline", "schedule", "add", str(work / "report.ipynb"),
                  "--name", "../x", "--every", "1m", check=False)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("aiinfra: error: name:")
    gone = aiinfra(home, "pipeline", "schedule", "add", str(work / "none.ipynb"),
                   "--name", "x", "--every", "1m", check=False)  # fmt: skip
    assert gone.returncode == 2 and gone.stderr.startswith("aiinfra: error: path:")
    missing = aiinfra(home, "pipeline", "schedule", "pause", "nothere", check=False)
    assert missing.returncode == 2 and "name: no schedule 'nothere'" in missing.stderr
    assert listed(home) == []


def test_sigkill_loses_nothing_and_the_missed_run_runs_once(home: Path, work: Path) -> None:
    aiinfra(home, "pipeline", "schedule", "add", str(work / "report.ipynb"), "--name", "tick",
            "--every", "3s")  # fmt: skip
    wait_for(lambda: any(r["status"] == "ok" for r in runs_of(work, "tick")), timeout=240,
             what="a first scheduled run")  # fmt: skip
    pid = service(home)["pid"]
    os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
    assert service(home)["running"] is False
    # Let at least three firings fall due well before any service comes back.
    wait_for(lambda: time.time() > killed_at + 15, timeout=60, what="15 s without a service")
    back_at = time.time()
    aiinfra(home, "pipeline", "schedule", "list")  # any aiinfra command brings the service back
    wait_for(lambda: service(home)["running"], what="the service to come back")
    wait_for(lambda: any((f["reason"] or "").startswith("catch-up") for f in history(home, "tick")),
             timeout=120, what="the catch-up firing")  # fmt: skip
    [shown] = listed(home)  # the schedule is still there, as it was
    assert shown["trigger"] == {"every": "3s", "seconds": 3.0} and not shown["paused"]
    firings = history(home, "tick")

    def stamp(iso: str | None) -> float:
        return datetime.fromisoformat(iso).timestamp() if iso else 0.0

    missed = [f for f in firings if f["outcome"] == "missed"]
    assert len(missed) == 1, missed
    assert missed[0]["count"] >= 2 and "not running" in missed[0]["reason"]
    assert killed_at <= stamp(missed[0]["scheduled_for"]) <= back_at
    catch_up = [f for f in firings if (f["reason"] or "").startswith("catch-up")]
    assert len(catch_up) == 1 and catch_up[0]["outcome"] == "started"
    # Nothing started while no service ran, and no pile of runs when it came back.
    started_down = [
        f for f in firings if f["outcome"] == "started" and killed_at < stamp(f["at"]) < back_at
    ]
    assert started_down == []
    first_back = [f for f in firings if f["outcome"] == "started" and stamp(f["at"]) >= back_at]
    assert min(first_back, key=lambda f: stamp(f["at"]))["id"] == catch_up[0]["id"]


def test_one_broken_schedule_never_stops_the_others(home: Path, work: Path) -> None:
    for name in ("broken", "gone"):
        aiinfra(home, "pipeline", "schedule", "add", str(work / "report.ipynb"), "--name", name,
                "--every", "1h")  # fmt: skip
    aiinfra(home, "pipeline", "schedule", "add", str(work / "slow.ipynb"), "--name", "healthy",
            "--every", "2s", "-p", "pause=0.1")  # fmt: skip
    # Break two: a stored cron no parser accepts (as jupyter-scheduler stored '61 * * * *'),
    # and a schedule whose notebook was deleted, due now.
    with sqlite3.connect(home / "scheduler" / "schedules.db") as conn:
        spec = json.loads(
            conn.execute("SELECT spec FROM schedules WHERE name='broken'").fetchone()[0]
        )
        spec["trigger"] = {"cron": "61 * * * *", "tz": "UTC"}
        conn.execute(
            "UPDATE schedules SET spec = ?, next_due = 0 WHERE name='broken'", (json.dumps(spec),)
        )
        copy = work / "copy.ipynb"
        copy.write_bytes((work / "report.ipynb").read_bytes())
        spec = json.loads(
            conn.execute("SELECT spec FROM schedules WHERE name='gone'").fetchone()[0]
        )
        spec["path"] = str(copy)
        conn.execute("UPDATE schedules SET spec = ?, next_due = ? WHERE name='gone'",
                     (json.dumps(spec), time.time()))  # fmt: skip
    copy.unlink()
    aiinfra(home, "scheduler", "start")  # wakes it: the store changed behind its back
    before = len(runs_of(work, "healthy"))
    wait_for(lambda: len([r for r in runs_of(work, "healthy") if r["status"] == "ok"]) >= before + 2,
             timeout=240, what="the healthy schedule to keep firing")  # fmt: skip
    shown = {s["name"]: s for s in listed(home)}
    assert shown["broken"]["error"].startswith("stored schedule cannot be read")
    assert "cron" in shown["broken"]["error"]
    wait_for(lambda: (service(home)["broken"] and any(b["name"] == "gone" for b in service(home)["broken"])),
             what="the deleted notebook reported")  # fmt: skip
    gone = {s["name"]: s for s in listed(home)}["gone"]
    assert "no longer exists" in gone["error"]
    assert history(home, "gone")[0]["outcome"] == "failed"
    assert shown["healthy"]["error"] is None
    text = aiinfra(home, "pipeline", "schedule", "list").stdout
    assert "broken" in text and "healthy" in text
    assert service(home)["running"]


def test_overlap_skip_is_recorded_and_runs_never_overlap(home: Path, work: Path) -> None:
    aiinfra(home, "pipeline", "schedule", "add", str(work / "slow.ipynb"), "--name", "slow",
            "--every", "1s", "-p", "pause=4")  # fmt: skip
    wait_for(lambda: len([r for r in runs_of(work, "slow") if r["status"] == "ok"]) >= 2,
             timeout=240, what="two slow runs")  # fmt: skip
    aiinfra(home, "pipeline", "schedule", "pause", "slow")
    skipped = [f for f in history(home, "slow") if f["outcome"] == "skipped"]
    overlap = [f for f in skipped if "still running (overlap skip)" in f["reason"]]
    assert overlap, skipped
    # Any other skip is a firing due together with a later one (the loop was busy firing).
    assert all(f in overlap or f["reason"].startswith("due together") for f in skipped)
    done = sorted((r["start"], r["end"]) for r in runs_of(work, "slow") if r["end"])
    for (_, end), (start, _) in zip(done, done[1:]):
        assert start >= end - 0.5  # the next began only after the previous had ended


def test_overlap_queue_runs_once_after_the_previous(home: Path, work: Path) -> None:
    aiinfra(home, "pipeline", "schedule", "add", str(work / "slow.ipynb"), "--name", "q",
            "--every", "1h", "--overlap", "queue", "-p", "pause=4")  # fmt: skip
    aiinfra(home, "pipeline", "schedule", "run", "q")
    second = aiinfra(home, "pipeline", "schedule", "run", "q", "--json")
    assert json.loads(second.stdout)["outcome"] == "queued"
    third = aiinfra(home, "pipeline", "schedule", "run", "q", check=False)
    assert third.returncode == 1 and "already queued" in third.stderr
    wait_for(lambda: len([r for r in runs_of(work, "q") if r["status"] == "ok"]) == 2,
             timeout=240, what="the queued run to run after the first")  # fmt: skip
    reasons = [f["reason"] for f in history(home, "q") if f["outcome"] == "started"]
    assert sorted(reasons) == ["queued run", "run now"]


def test_stopping_the_service_leaves_runs_running(home: Path, work: Path) -> None:
    aiinfra(home, "pipeline", "schedule", "add", str(work / "slow.ipynb"), "--name", "long",
            "--every", "1h", "-p", "pause=6")  # fmt: skip
    fired = json.loads(aiinfra(home, "pipeline", "schedule", "run", "long", "--json").stdout)
    wait_for(lambda: any(r["status"] == "running" for r in runs_of(work, "long")), timeout=120)
    stopped = json.loads(aiinfra(home, "scheduler", "stop", "--json").stdout)
    assert stopped["running"] is False
    assert process_alive(fired["pid"], fired["pid_started"])
    wait_for(lambda: any(r["status"] == "ok" for r in runs_of(work, "long")), timeout=180,
             what="the run to finish after the service stopped")  # fmt: skip
    # Stopped on purpose: other commands do not bring it back.
    aiinfra(home, "pipeline", "schedule", "list")
    assert service(home)["running"] is False


def test_pause_resume_remove(home: Path, work: Path) -> None:
    aiinfra(home, "pipeline", "schedule", "add", str(work / "report.ipynb"), "--name", "pr",
            "--every", "1s")  # fmt: skip
    spec_file = work / ".aiinfra-schedule-pr.yaml"
    aiinfra(home, "pipeline", "schedule", "pause", "pr")
    paused = listed(home)[0]
    assert paused["paused"] is True and paused["next_run"] is None
    paused_at = time.time()
    wait_for(lambda: time.time() > paused_at + 2.5, what="firings to fall due while paused")
    resumed = json.loads(aiinfra(home, "pipeline", "schedule", "resume", "pr", "--json").stdout)
    assert resumed["paused"] is False and resumed["next_run"]
    assert any(f["outcome"] == "skipped" and "paused" in f["reason"] for f in history(home, "pr"))
    wait_for(spec_file.exists, what="the notebook's one-step spec")
    aiinfra(home, "pipeline", "schedule", "remove", "pr")
    assert listed(home) == []
    assert not spec_file.exists()


def test_install_writes_a_user_unit(home: Path, tmp_path: Path) -> None:
    printed = aiinfra(home, "scheduler", "install").stdout
    assert "ExecStart=" in printed and "KillMode=process" in printed and str(home) in printed
    config = tmp_path / "config"
    aiinfra(home, "scheduler", "install", "--write", env={"XDG_CONFIG_HOME": str(config)})
    unit = config / "systemd" / "user" / "aiinfra-scheduler.service"
    text = unit.read_text()
    assert f"{sys.executable} -m aiinfra_magics.pipelines.scheduler_service --home {home}" in text
    assert stat.S_IMODE(unit.stat().st_mode) == 0o600


def test_pipeline_run_takes_the_options_a_firing_passes(home: Path) -> None:
    """A firing passes --trigger and --notify (schedule_runs.RUN_OPTIONS) to pipeline run."""
    from aiinfra_magics.pipelines.schedule_runs import RUN_OPTIONS

    text = aiinfra(home, "pipeline", "run", "--help").stdout
    for option in RUN_OPTIONS:
        assert option in text
