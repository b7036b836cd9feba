"""Every ending of a run leaves every step final (issue 10 item 11), with real signals
sent to a real ``aiinfra pipeline run`` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from aiinfra_magics.pipelines.record import RunRecord

FINAL = {"ok", "cached", "failed", "skipped"}


def _wait(predicate, what, timeout=180.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def long_run(tmp_path, notebook, pipeline_file):
    """A run whose first step writes its kernel's pid then sleeps; a second waits for it."""
    notebook(
        tmp_path / "long.ipynb",
        "x = 0",
        "import os\nopen('pid.tmp', 'w').write(str(os.getpid()))\nos.replace('pid.tmp', 'pid')",
        "import time\ntime.sleep(600)",
    )
    notebook(tmp_path / "after.ipynb", "x = 0", "print(x)")
    path = pipeline_file(
        tmp_path,
        {
            "steps": {
                "long": {"notebook": "long.ipynb"},
                "after": {"notebook": "after.ipynb", "after": ["long"]},
            }
        },
    )

    def start():
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiinfra_magics", "pipeline", "run", str(path)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait(lambda: (tmp_path / "pid").exists() or proc.poll() is not None, "the step to start")
        assert proc.poll() is None, proc.communicate()
        return proc, int((tmp_path / "pid").read_text())

    procs = []
    yield tmp_path, lambda: procs.append(start()) or procs[-1]
    for proc, kernel in procs:  # nothing left behind, whatever happened
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if not _gone(kernel):
            os.kill(kernel, signal.SIGKILL)


@pytest.mark.parametrize(
    ("signum", "code", "why"),
    [(signal.SIGTERM, 1, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")],
)
def test_a_signal_ends_the_run_with_every_step_final(long_run, signum, code, why):
    folder, start = long_run
    proc, kernel = start()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == code, err[-2000:]
    data = json.loads(next((folder / "runs").glob("2*/run.json")).read_text())
    assert data["status"] == "interrupted"
    steps = data["steps"]
    assert {s["status"] for s in steps.values()} <= FINAL, steps
    assert steps["long"]["status"] == "failed" and steps["long"]["kind"] == "interrupted"
    assert why in steps["long"]["error"]
    assert steps["after"]["status"] == "skipped"
    _wait(lambda: _gone(kernel), "the step's kernel to stop")
    if signum == signal.SIGTERM:
        assert "stopped by SIGTERM" in err


def test_a_run_killed_outright_reads_as_interrupted(long_run):
    folder, start = long_run
    proc, kernel = start()
    proc.kill()  # SIGKILL: nothing can run in the process; the reader must tell
    proc.wait()
    record = RunRecord.load(folder)
    assert record.status == "interrupted"
    assert {s["status"] for s in record.steps.values()} <= FINAL
    assert "runner process is gone" in record.steps["long"]["error"]
