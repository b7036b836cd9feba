"""REST behind the lab's run dialog, run view and "Add to pipeline", on a real jupyter server.

- ``GET pipelines/spec?path=``: the parsed spec; paths checked like ``POST runs``.
- ``POST pipelines/runs``: typed JSON params reach the notebook as they are (no ``-p`` text),
  ``only`` takes several steps.
- ``DELETE pipelines/runs/{run_id}``: cancels a run this server launched.
- ``POST pipelines/promote``: ``%aiinfra promote`` with typed params.
"""

from __future__ import annotations

import asyncio
import json
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from nbfiles import notebook_text

ROUTES = [
    ("GET", "aiinfra/api/pipelines/spec"),
    ("POST", "aiinfra/api/pipelines/promote"),
    ("DELETE", "aiinfra/api/pipelines/runs/x"),
]


def _pipeline(folder: Path) -> Path:
    """Two steps: ``make`` (params of several types, a grid) then ``use``."""
    folder.mkdir(parents=True)
    (folder / "make.ipynb").write_text(
        notebook_text(
            "n = 1\ntag = 'a'\nsizes = [1]\nlr = 0.1",
            "open(f'made-{lr}.json', 'w').write(__import__('json').dumps("
            "{'n': n, 'tag': tag, 'sizes': sizes, 'lr': lr, 'types': "
            "[type(v).__name__ for v in (n, tag, sizes, lr)]}))",
        )
    )
    (folder / "use.ipynb").write_text(notebook_text("x = 0", "y = x + 1"))
    (folder / "pipeline.yaml").write_text(
        "name: tiny\nsteps:\n"
        "  make:\n    notebook: make.ipynb\n    params: {n: 2, tag: b, sizes: [1, 2]}\n"
        "    grid: {lr: [0.1, 0.2]}\n"
        "  use:\n    notebook: use.ipynb\n    after: [make]\n"
    )
    return folder / "pipeline.yaml"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_new_routes_need_authentication(run, jp_fetch, method, path):
    async def go():
        body = b"{}" if method == "POST" else None
        response = await jp_fetch(
            path,
            method=method,
            body=body,
            params={"path": "p/pipeline.yaml"} if method == "GET" else None,
            headers={"Authorization": ""},
            raise_error=False,
        )
        assert response.code == 403

    run(go())


def test_spec_describes_steps_params_grids_and_nodes(run, api, jp_root_dir):
    _pipeline(jp_root_dir / "p")

    async def go():
        code, spec = await api("GET", "pipelines", "spec", params={"path": "p/pipeline.yaml"})
        assert code == 200, spec
        assert spec["name"] == "tiny"
        assert spec["path"] == "p/pipeline.yaml"
        make, use = spec["steps"]
        assert make["name"] == "make"
        assert make["params"] == {"n": 2, "tag": "b", "sizes": [1, 2]}
        assert make["grid"] == {"lr": [0.1, 0.2]}
        assert make["notebook_path"] == "p/make.ipynb"
        assert use["after"] == ["make"]
        assert [n["name"] for n in spec["nodes"]] == ["make[lr=0.1]", "make[lr=0.2]", "use"]
        assert spec["nodes"][2]["upstream"] == ["make[lr=0.1]", "make[lr=0.2]"]

    run(go())


def test_spec_paths_are_checked_like_run_bodies(run, api, jp_root_dir, tmp_path):
    _pipeline(jp_root_dir / "p")
    outside = _pipeline(tmp_path / "outside")
    (jp_root_dir / "link").symlink_to(outside.parent)
    (jp_root_dir / "bad.yaml").write_text("steps: {a: {notebook: missing.ipynb}}\n")
    cases = [
        ({}, 400, "path"),
        ({"path": ""}, 400, "path"),
        ({"path": "../outside/pipeline.yaml"}, 400, "path"),
        ({"path": "p/../../outside/pipeline.yaml"}, 400, "path"),
        ({"path": "link/pipeline.yaml"}, 400, "path"),  # a link out of the root
        ({"path": "p/missing.yaml"}, 404, "path"),
        ({"path": "bad.yaml"}, 400, "steps.a.notebook"),
    ]

    async def go():
        for query, status, field in cases:
            code, reply = await api("GET", "pipelines", "spec", params=query)
            assert (code, reply["field"]) == (status, field), (query, reply)
            assert "\n" not in reply["message"]

    run(go())


async def _until(api, run_id: str, done, what: str, seconds: float = 240) -> dict:
    """Poll ``GET runs/{run_id}`` until ``done(reply)``; a generous deadline, no sleeps to time."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        code, reply = await api("GET", "pipelines", "runs", run_id)
        if code == 200 and done(reply):
            return reply
        assert asyncio.get_running_loop().time() < deadline, f"waiting for {what}: {reply}"
        await asyncio.sleep(0.25)


def test_typed_params_reach_the_notebook_without_p_text(run, api, jp_root_dir, aiinfra_home):
    folder = _pipeline(jp_root_dir / "p").parent
    # Through -p text, "010" would become 10 and "None" would become None (papermill's typing).
    params = {"make.tag": "010", "make.n": 7, "sizes": ["None", 1.5], "lr": 0.5}

    async def go():
        code, launch = await api(
            "POST",
            "pipelines",
            "runs",
            body={"pipeline": "p/pipeline.yaml", "params": params, "only": ["make"]},
        )
        assert code == 202, launch
        # The request travels as a private JSON file, not as command-line text.
        job = Path(aiinfra_home) / "pipelines" / f"{launch['launch']}.json"
        assert stat.S_IMODE(job.stat().st_mode) == 0o600
        assert json.loads(job.read_text())["params"] == params
        state = await _until(api, launch["launch"], lambda r: r["status"] != "running", "the end")
        assert state["status"] == "finished", Path(state["log"]).read_text()[-2000:]
        assert state["run_id"]
        record = await _until(api, state["run_id"], lambda r: "steps" in r, "the run record")
        assert record["status"] == "ok"
        # The run's own view has the whole environment; the list keeps its hash and count.
        packages = record["environment"]["packages"]
        assert packages and "papermill" in packages
        code, listed = await api("GET", "pipelines", "runs")
        (entry,) = [r for r in listed["runs"] if r["run_id"] == state["run_id"]]
        assert "packages" not in entry["environment"]
        assert entry["environment"]["package_count"] == len(packages)
        assert entry["environment"]["packages_hash"] == record["environment"]["packages_hash"]
        assert record["steps"]["make[lr=0.5]"]["status"] == "ok"
        assert record["steps"]["use"]["status"] == "skipped"  # not in `only`

    run(go())
    made = json.loads((folder / "made-0.5.json").read_text())
    assert made == {
        "n": 7,
        "tag": "010",
        "sizes": ["None", 1.5],
        "lr": 0.5,
        "types": ["int", "str", "list", "float"],
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pipeline": "p/pipeline.yaml", "only": ["nope"]}, "only"),
        ({"pipeline": "p/pipeline.yaml", "only": [3]}, "only"),
        ({"pipeline": "p/pipeline.yaml", "params": {"nope": 1}}, "params"),
        ({"pipeline": "p/pipeline.yaml", "params": {"ghost.n": 1}}, "params"),
    ],
)
def test_bad_only_and_params_are_refused_before_a_launch(run, api, jp_root_dir, body, field):
    _pipeline(jp_root_dir / "p")

    async def go():
        code, reply = await api("POST", "pipelines", "runs", body=body)
        assert (code, reply["field"]) == (400, field), reply
        code, listed = await api("GET", "pipelines", "runs")
        assert listed["launches"] == []

    run(go())


def _waiting_pipeline(folder: Path) -> None:
    """One step that waits for a file nobody writes: only a cancel ends it."""
    folder.mkdir(parents=True)
    (folder / "wait.ipynb").write_text(
        notebook_text(
            "gate = 'never'",
            "import os, time\nopen('started', 'w').close()\n"
            "while not os.path.exists(gate):\n    time.sleep(0.1)",
        )
    )
    (folder / "pipeline.yaml").write_text(
        "name: waits\nsteps:\n  wait:\n    notebook: wait.ipynb\n    retries: 0\n"
    )


def test_cancel_ends_a_run_this_server_launched(run, api, jp_root_dir):
    folder = jp_root_dir / "w"
    _waiting_pipeline(folder)

    async def go():
        code, launch = await api("POST", "pipelines", "runs", body={"pipeline": "w/pipeline.yaml"})
        assert code == 202, launch
        state = await _until(
            api, launch["launch"], lambda r: r.get("run_id") or r["status"] != "running", "run id"
        )
        run_id = state["run_id"]
        assert run_id, Path(state["log"]).read_text()[-2000:]
        deadline = asyncio.get_running_loop().time() + 240
        while not (folder / "started").exists():  # the step's kernel is executing
            assert asyncio.get_running_loop().time() < deadline, Path(state["log"]).read_text()
            await asyncio.sleep(0.25)
        code, reply = await api("DELETE", "pipelines", "runs", run_id)
        assert code == 200, reply
        assert reply["status"] == "cancelled"
        assert reply["signals"][0] == "SIGINT"
        assert reply["run_id"] == run_id
        code, again = await api("DELETE", "pipelines", "runs", run_id)
        assert code == 409, again  # already ended
        record = await _until(api, run_id, lambda r: "steps" in r, "the record")
        assert record["status"] == "interrupted"
        assert record["steps"]["wait"]["status"] not in ("running", "pending")
        code, listed = await api("GET", "pipelines", "runs")
        (view,) = listed["launches"]
        assert view["status"] == "cancelled"

    run(go())


def test_cancel_refuses_unknown_runs_and_runs_started_elsewhere(run, api, jp_root_dir):
    record = jp_root_dir / "demo" / "runs" / "20260101-000000-abcd" / "run.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"run_id": record.parent.name, "status": "running", "steps": {}}))

    async def go():
        code, reply = await api("DELETE", "pipelines", "runs", "nope")
        assert (code, reply["field"]) == (404, "run_id")
        code, reply = await api("DELETE", "pipelines", "runs", record.parent.name)
        assert code == 409, reply
        assert "names no process" in reply["message"]  # a record without a runner

    run(go())


def test_promote_adds_a_step_with_typed_params(run, api, jp_root_dir):
    folder = jp_root_dir / "p"
    _pipeline(folder)
    (folder / "report.ipynb").write_text(notebook_text("top = 1", "print(top)"))

    async def go():
        code, reply = await api(
            "POST",
            "pipelines",
            "promote",
            body={
                "notebook": "p/report.ipynb",
                "after": ["use"],
                "params": {"top": 3, "tag": "010", "on": True},
            },
        )
        assert code == 201, reply
        assert reply["step"] == "report"
        assert reply["pipeline"] == "p/pipeline.yaml"

    run(go())
    spec = yaml.safe_load((folder / "pipeline.yaml").read_text())
    assert spec["steps"]["report"] == {
        "notebook": "report.ipynb",
        "after": ["use"],
        "params": {"top": 3, "tag": "010", "on": True},
    }
    assert spec["steps"]["make"]["grid"] == {"lr": [0.1, 0.2]}  # the rest is kept


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"notebook": "../x.ipynb"}, 400, "notebook"),
        ({"notebook": "p/none.ipynb"}, 404, "notebook"),
        ({"notebook": "p/report.ipynb", "pipeline": "../../p.yaml"}, 400, "pipeline"),
        ({"notebook": "p/report.ipynb", "after": ["ghost"]}, 400, "steps.report.after"),
        ({"notebook": "p/report.ipynb", "params": {"bad key": 1}}, 400, "params"),
        ({"notebook": "p/report.ipynb", "colour": 1}, 400, "colour"),
        ({}, 400, "notebook"),
    ],
)
def test_bad_promote_bodies(run, api, jp_root_dir, body, status, field):
    folder = jp_root_dir / "p"
    _pipeline(folder)
    (folder / "report.ipynb").write_text(notebook_text("top = 1", "print(top)"))
    before = (folder / "pipeline.yaml").read_text()

    async def go():
        code, reply = await api("POST", "pipelines", "promote", body=body)
        assert (code, reply["field"]) == (status, field), reply

    run(go())
    assert (folder / "pipeline.yaml").read_text() == before


def test_live_server_spec_needs_the_token(live_server_factory):
    server = live_server_factory()
    code, body = server.request("GET", "aiinfra/api/pipelines/spec?path=x/pipeline.yaml")
    assert code == 404, body  # authenticated: the lookup ran
    req = urllib.request.Request(server.url + "aiinfra/api/pipelines/spec?path=x/pipeline.yaml")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 403
