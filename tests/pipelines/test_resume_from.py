"""``pipeline run --resume`` and ``--from STEP`` (issue 26 item 5), checked by which steps ran:
every notebook appends its step's name to ``ran.log``.

DAG: a -> b -> c, and a -> d (d does not depend on b).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from waiting import wait_for

from aiinfra_magics.errors import AiinfraError
from aiinfra_magics.pipelines.record import RunRecord
from aiinfra_magics.pipelines.runner import run_pipeline


@pytest.fixture
def dag(tmp_path, notebook, pipeline_file):
    """The pipeline; ``b`` fails while ``fail-b`` exists and waits while ``hold-b`` exists."""
    for name in "abcd":
        notebook(
            tmp_path / f"{name}.ipynb",
            "x = 0",
            "import os, time\n"
            f"if '{name}' == 'b' and os.path.exists('hold-b'):\n"
            "    open('b-started.tmp', 'w').write(str(os.getpid()))\n"
            "    os.replace('b-started.tmp', 'b-started')\n"
            "    while os.path.exists('hold-b'):\n        time.sleep(0.1)\n"
            f"open('ran.log', 'a').write('{name}\\n')\n"
            f"assert not ('{name}' == 'b' and os.path.exists('fail-b')), 'b was told to fail'\n"
            f"open('{name}.out', 'w').write('{name}')",
        )
    steps = {
        "a": {"notebook": "a.ipynb", "products": ["a.out"]},
        "b": {"notebook": "b.ipynb", "after": ["a"], "products": ["b.out"], "retries": 0},
        "c": {"notebook": "c.ipynb", "after": ["b"], "products": ["c.out"]},
        "d": {"notebook": "d.ipynb", "after": ["a"], "products": ["d.out"]},
    }
    return pipeline_file(tmp_path, {"name": "abcd", "steps": steps})


def _ran(folder: Path) -> list[str]:
    """The steps that ran since the last call, in order; the log starts again."""
    log = folder / "ran.log"
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return names


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _statuses(run: RunRecord) -> dict[str, str]:
    return {name: step["status"] for name, step in run.steps.items()}


def test_resume_runs_the_failed_step_and_its_downstream_only(dag, client):
    folder = dag.parent
    (folder / "fail-b").touch()
    first = run_pipeline(dag, client=client, params=["x=1"])
    assert _statuses(first) == {"a": "ok", "b": "failed", "c": "skipped", "d": "ok"}
    assert sorted(_ran(folder)) == ["a", "b", "d"]

    (folder / "fail-b").unlink()
    (folder / "a.ipynb").touch()  # a's cache would miss now: resume keeps it all the same
    (folder / "a.ipynb").write_text((folder / "a.ipynb").read_text() + "\n")
    resumed = run_pipeline(dag, client=client, resume=True)
    assert _ran(folder) == ["b", "c"]
    assert resumed.status == "ok"
    assert _statuses(resumed) == {"a": "cached", "b": "ok", "c": "ok", "d": "cached"}
    assert resumed.data["resumed_from"] == first.run_id
    assert resumed.steps["a"]["kept_from"] == first.run_id
    assert resumed.steps["a"]["reason"] == f"kept from run {first.run_id} (--resume)"
    # The last run's -p overrides apply again (x=1 reached b's notebook).
    assert resumed.data["overrides"] == [{"step": None, "key": "x", "value": 1}]
    assert resumed.steps["b"]["params"] == {"x": 1}

    with pytest.raises(AiinfraError) as err:  # nothing left to resume
        run_pipeline(dag, client=client, resume=True)
    assert err.value.field == "--resume"
    assert "finished every step" in str(err.value)


def test_from_runs_the_step_and_its_downstream_whatever_the_cache(dag, client):
    folder = dag.parent
    run_pipeline(dag, client=client)
    assert sorted(_ran(folder)) == ["a", "b", "c", "d"]
    cached = run_pipeline(dag, client=client)
    assert _ran(folder) == []  # everything cached
    assert set(_statuses(cached).values()) == {"cached"}

    again = run_pipeline(dag, client=client, from_step="b")
    assert _ran(folder) == ["b", "c"]
    assert _statuses(again) == {"a": "skipped", "b": "ok", "c": "ok", "d": "skipped"}
    assert again.steps["a"]["reason"] == "not selected (--from b)"
    assert again.data["from"] == ["b"]

    with pytest.raises(AiinfraError) as err:
        run_pipeline(dag, client=client, from_step="nope")
    assert err.value.field == "--from"
    assert "a step name (a, b, c, d)" in str(err.value)
    with pytest.raises(AiinfraError) as err:
        run_pipeline(dag, client=client, from_step="b", only=["c"])
    assert err.value.field == "--from"
    with pytest.raises(AiinfraError) as err:
        run_pipeline(dag, client=client, resume=True, from_step="b")
    assert err.value.field == "--resume"


def test_resume_with_no_run_yet_is_refused(dag, client):
    with pytest.raises(AiinfraError) as err:
        run_pipeline(dag, client=client, resume=True)
    assert err.value.field == "--resume"
    assert "no run yet" in str(err.value)
    assert not (dag.parent / "ran.log").exists()


def test_resume_after_a_killed_run_from_the_cli(dag):
    """A runner killed with SIGKILL mid-step: its run reads interrupted; --resume picks it up."""
    folder = dag.parent
    (folder / "hold-b").touch()
    cli = [sys.executable, "-m", "aiinfra_magics", "pipeline", "run", str(dag), "--workers", "1"]
    proc = subprocess.Popen(
        cli, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for(
            lambda: (folder / "b-started").exists() or proc.poll() is not None,
            240,
            "step b to start",
        )
        assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernels, nothing recorded
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    kernel = int((folder / "b-started").read_text())
    # b's kernel is in a session of its own; it ends when it sees its runner gone (ipykernel's
    # parent poller). Only then may b's wait end, or the orphan would finish b's cell.
    wait_for(lambda: not _alive(kernel), 60, "b's kernel to end with its runner")
    (folder / "hold-b").unlink()
    killed = RunRecord.load(folder)
    assert killed.status == "interrupted"
    assert killed.steps["b"]["kind"] == "interrupted"
    done = sorted(_ran(folder))  # a, and maybe d, finished before the kill
    assert "a" in done and "b" not in done

    status = subprocess.run(
        [sys.executable, "-m", "aiinfra_magics", "pipeline", "status", str(dag), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(status.stdout)["status"] == "interrupted"

    resumed = subprocess.run(
        [*cli, "--resume"], cwd=folder, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected = ["b", "c"] + ([] if "d" in done else ["d"])
    assert sorted(_ran(folder)) == sorted(expected)
    last = RunRecord.load(folder)
    assert last.data["resumed_from"] == killed.run_id
    assert last.steps["a"]["status"] == "cached"
