"""Hostile REST input is a 400/404, never a 500; nothing outside the server root is read;
what the server writes for pipeline launches is private to the user (issue 10: 6, 7, 14)."""

from __future__ import annotations

import json
import stat

import pytest

DEEP = b"[" * 100_000
LONG = "a" * 10_000
OVER_NAME_MAX = "b" * 300


@pytest.mark.parametrize(
    ("method", "parts"),
    [
        ("POST", ("clusters",)),
        ("PATCH", ("clusters", "x")),
        ("POST", ("pipelines", "runs")),
    ],
)
def test_deeply_nested_json_is_a_400(run, api, method, parts):
    async def go():
        code, body = await api(method, *parts, raw=DEEP)
        assert code == 400, body
        assert body["field"] == "body"

    run(go())


def _pipeline(root):
    folder = root / "pipe"
    folder.mkdir(exist_ok=True)
    (folder / "make.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    (folder / "pipeline.yaml").write_text("name: tiny\nsteps:\n  make:\n    notebook: make.ipynb\n")
    return "pipe/pipeline.yaml"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pipeline": "pipe/pipeline.yaml\x00"}, "pipeline"),
        ({"pipeline": "pipe\x00/pipeline.yaml"}, "pipeline"),
        ({"pipeline": "PIPE", "cluster": "web\x001"}, "cluster"),
        ({"pipeline": "PIPE", "cluster": "../x"}, "cluster"),
        ({"pipeline": "PIPE", "params": {"n": "1\x002"}}, "params"),
        ({"pipeline": "PIPE", "params": {"n\x00": 1}}, "params"),
        ({"pipeline": "PIPE", "params": {"--force": 1}}, "params"),
        ({"pipeline": LONG}, "pipeline"),
        ({"pipeline": f"{OVER_NAME_MAX}/pipeline.yaml"}, "pipeline"),
        ({"pipeline": f"pipe/{OVER_NAME_MAX}"}, "pipeline"),
    ],
)
def test_bad_pipeline_launches_are_400_and_leave_no_log(
    run, api, jp_root_dir, aiinfra_home, body, field
):
    body = {k: (_pipeline(jp_root_dir) if v == "PIPE" else v) for k, v in body.items()}

    async def go():
        code, reply = await api("POST", "pipelines", "runs", body=body)
        assert code == 400, reply
        assert reply["field"] == field
        logs = (
            list((aiinfra_home / "pipelines").glob("*"))
            if (aiinfra_home / "pipelines").exists()
            else []
        )
        assert logs == []

    run(go())


@pytest.mark.parametrize("component", [LONG, OVER_NAME_MAX])
@pytest.mark.parametrize(
    ("method", "prefix"),
    [
        ("GET", ("aiinfra", "api", "clusters")),
        ("PATCH", ("aiinfra", "api", "clusters")),
        ("DELETE", ("aiinfra", "api", "clusters")),
        ("GET", ("aiinfra", "api", "pipelines", "runs")),
        ("GET", ("aiinfra", "dashboard")),
    ],
)
def test_long_path_components_are_4xx(run, jp_fetch, method, prefix, component):
    async def go():
        body = json.dumps({"workers": 1}).encode() if method == "PATCH" else None
        response = await jp_fetch(
            *prefix, component, method=method, body=body, raise_error=False, follow_redirects=False
        )
        assert response.code in (400, 404), response.code

    run(go())


def test_empty_body_does_not_start_a_default_cluster(run, api):
    async def go():
        code, reply = await api("POST", "clusters", raw=b"")
        assert code == 400 and reply["field"] == "body"
        code, listed = await api("GET", "clusters")
        assert listed["clusters"] == []

    run(go())


def test_runs_linked_from_outside_the_root_are_not_listed(run, api, jp_root_dir, tmp_path):
    outside = tmp_path / "outside"
    record = {"run_id": "secret-run", "status": "ok", "steps": {}}
    for name in ("linked-runs/runs/secret-run", "linked-one/secret-run"):
        (outside / name).mkdir(parents=True)
        (outside / name / "run.json").write_text(json.dumps(record))
    # runs/ itself is a link out of the root, and a run inside a real runs/ is a link out.
    (jp_root_dir / "a").mkdir()
    (jp_root_dir / "a" / "runs").symlink_to(outside / "linked-runs" / "runs")
    (jp_root_dir / "b" / "runs").mkdir(parents=True)
    (jp_root_dir / "b" / "runs" / "secret-run").symlink_to(outside / "linked-one" / "secret-run")
    # and one honest run, so the listing itself is known to work
    (jp_root_dir / "c" / "runs" / "mine").mkdir(parents=True)
    (jp_root_dir / "c" / "runs" / "mine" / "run.json").write_text(
        json.dumps({"run_id": "mine", "status": "ok", "steps": {}})
    )

    async def go():
        code, body = await api("GET", "pipelines", "runs")
        assert code == 200
        assert [r["run_id"] for r in body["runs"]] == ["mine"]
        code, _ = await api("GET", "pipelines", "runs", "secret-run")
        assert code == 404

    run(go())


def test_launch_logs_and_their_folder_are_private(run, api, api_until, jp_root_dir, aiinfra_home):
    pipeline = _pipeline(jp_root_dir)

    async def go():
        # A cluster that does not exist: the run fails fast, after the launch wrote its log.
        code, launch = await api(
            "POST", "pipelines", "runs", body={"pipeline": pipeline, "cluster": "nope"}
        )
        assert code == 202, launch
        state = await api_until(
            ("pipelines", "runs", launch["launch"]), lambda s: s["status"] != "running", 1200, 0.25
        )
        assert state["status"] != "running"
        folder = aiinfra_home / "pipelines"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(aiinfra_home.stat().st_mode) == 0o700
        (log,) = folder.glob("*.log")
        assert stat.S_IMODE(log.stat().st_mode) == 0o600

    run(go())
