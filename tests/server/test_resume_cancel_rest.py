"""``POST aiinfra/api/pipelines/runs`` with ``resume`` and ``from`` (issue 26 item 5) and
``DELETE`` of a run the server did not start (item 3: cancel works from any door), on a
real jupyter server with real runs. Which steps ran: each notebook appends to ``ran.log``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from nbfiles import write_notebook


def _pipeline(folder: Path) -> Path:
    """a -> b -> c; b fails while ``fail-b`` exists and waits while ``hold-b`` exists."""
    folder.mkdir(parents=True)
    for name in "abc":
        write_notebook(
            folder / f"{name}.ipynb",
            "x = 0",
            "import os, time\n"
            f"if '{name}' == 'b' and os.path.exists('hold-b'):\n"
            "    open('b-started', 'w').close()\n"
            "    while os.path.exists('hold-b'):\n        time.sleep(0.1)\n"
            f"open('ran.log', 'a').write('{name}\\n')\n"
            f"assert not ('{name}' == 'b' and os.path.exists('fail-b')), 'b was told to fail'",
        )
    (folder / "pipeline.yaml").write_text(
        "name: abc\nsteps:\n  a: {notebook: a.ipynb}\n"
        "  b: {notebook: b.ipynb, after: [a], retries: 0}\n  c: {notebook: c.ipynb, after: [b]}\n"
    )
    return folder / "pipeline.yaml"


def _ran(folder: Path) -> list[str]:
    log = folder / "ran.log"
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return names


async def _launched(api, body: dict) -> dict:
    """POST a run and wait for its record to end; the record."""
    code, launch = await api("POST", "pipelines", "runs", body=body)
    assert code == 202, launch
    deadline = asyncio.get_running_loop().time() + 240
    while True:
        code, view = await api("GET", "pipelines", "runs", launch["launch"])
        if view["status"] != "running":
            break
        assert asyncio.get_running_loop().time() < deadline, view
        await asyncio.sleep(0.25)
    assert view["run_id"], Path(view["log"]).read_text()[-3000:]
    code, record = await api("GET", "pipelines", "runs", view["run_id"])
    assert code == 200, record
    return record


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"resume": "yes"}, "resume"),
        ({"resume": True}, "resume"),  # no run yet
        ({"resume": True, "only": ["a"]}, "resume"),
        ({"from": 3}, "from"),
        ({"from": []}, "from"),
        ({"from": "nope"}, "from"),
        ({"from": "b", "only": ["a"]}, "from"),
    ],
)
def test_bad_resume_and_from_are_refused_naming_the_field(run, api, jp_root_dir, extra, field):
    _pipeline(jp_root_dir / "p")

    async def go():
        code, reply = await api(
            "POST", "pipelines", "runs", body={"pipeline": "p/pipeline.yaml", **extra}
        )
        assert (code, reply["field"]) == (400, field), reply
        assert reply["message"].startswith(f"{field}: ")
        assert "\n" not in reply["message"]
        code, listed = await api("GET", "pipelines", "runs")
        assert listed["launches"] == []  # nothing started

    run(go())


def test_resume_and_from_over_rest_run_what_they_should(run, api, jp_root_dir):
    folder = _pipeline(jp_root_dir / "p").parent
    (folder / "fail-b").touch()

    async def go():
        first = await _launched(api, {"pipeline": "p/pipeline.yaml"})
        assert first["status"] == "failed"
        assert _ran(folder) == ["a", "b"]
        (folder / "fail-b").unlink()
        resumed = await _launched(api, {"pipeline": "p/pipeline.yaml", "resume": True})
        assert resumed["status"] == "ok"
        assert resumed["resumed_from"] == first["run_id"]
        assert _ran(folder) == ["b", "c"]
        again = await _launched(api, {"pipeline": "p/pipeline.yaml", "from": "c"})
        assert again["status"] == "ok"
        assert again["from"] == ["c"]
        assert _ran(folder) == ["c"]

    run(go())


def test_delete_cancels_a_run_started_from_a_terminal(run, api, jp_root_dir, aiinfra_home):
    folder = _pipeline(jp_root_dir / "t").parent
    (folder / "hold-b").touch()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiinfra_magics", "pipeline", "run", str(folder / "pipeline.yaml"),
         "--workers", "1"],
        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "AIINFRA_HOME": str(aiinfra_home)},
    )  # fmt: skip

    async def go():
        deadline = asyncio.get_running_loop().time() + 240
        while not (folder / "b-started").exists():
            assert proc.poll() is None, proc.communicate()[0].decode()[-3000:]
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.25)
        run_id = next((folder / "runs").glob("*/run.json")).parent.name
        code, reply = await api("DELETE", "pipelines", "runs", run_id)
        assert code == 200, reply
        assert (reply["run_id"], reply["status"]) == (run_id, "interrupted")
        assert reply["signals"] == ["SIGINT"]  # the runner ended on the first ask
        code, record = await api("GET", "pipelines", "runs", run_id)
        assert record["status"] == "interrupted"
        assert record["steps"]["c"]["status"] == "skipped"

    try:
        run(go())
        out = proc.communicate(timeout=60)[0].decode()
        assert proc.returncode == 130, out[-3000:]  # the CLI exit status of an interrupted run
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
