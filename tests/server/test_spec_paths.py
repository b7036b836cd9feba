"""A pipeline.yaml inside the server's root cannot reach outside it, nor blow up the server.

Real files and links under a real jupyter server's root (pytest-jupyter); the
runs are refused before anything starts, so no launch log may appear.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiinfra_magics.errors import AiinfraError
from aiinfra_magics.pipelines.params import MAX_EXPANDED_VALUES, load_yaml
from aiinfra_magics.pipelines.spec import PipelineSpec
from aiinfra_magics.server.pipelines import check_spec_paths

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _bomb(levels: int = 8) -> str:
    """The billion-laughs shape: each level lists the one above nine times (~9**levels values)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghijk"[:levels]:
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
        previous = name
    return "\n".join(lines) + "\n"


def _write(root: Path, yaml_text: str, folder: str = "pipe") -> str:
    where = root / folder
    where.mkdir(parents=True, exist_ok=True)
    if not (where / "make.ipynb").exists():
        (where / "make.ipynb").write_text(NOTEBOOK)
    (where / "pipeline.yaml").write_text(yaml_text)
    return f"{folder}/pipeline.yaml"


@pytest.fixture
def outside(jp_root_dir: Path) -> Path:
    """A folder next to the root whose name starts with the root's name (a prefix sibling)."""
    sibling = jp_root_dir.parent / (jp_root_dir.name + "-other")
    sibling.mkdir()
    (sibling / "secret.ipynb").write_text(NOTEBOOK)
    (sibling / "pipeline.yaml").write_text("steps:\n  s:\n    notebook: secret.ipynb\n")
    return sibling


def _launch_logs(home: Path) -> list[Path]:
    folder = home / "pipelines"
    return list(folder.glob("*")) if folder.exists() else []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("output: ../../outside\n", "output"),
        ("output: ../../{sibling}/out\n", "output"),  # prefix sibling of the root
        ("output: file://{outside}/out\n", "output"),  # the local disk by URL
        ("LINK_NOTEBOOK", "steps.make.notebook"),
        ("LINK_CWD", "steps.make.cwd"),
        ("LINK_RUNS", "output"),
    ],
)
def test_spec_paths_that_leave_the_root_are_400_naming_the_field(
    run, api, jp_root_dir, aiinfra_home, outside, spec, field
):
    step = "name: p\nsteps:\n  make:\n    notebook: make.ipynb\n"
    folder = jp_root_dir / "pipe"
    folder.mkdir()
    (folder / "make.ipynb").write_text(NOTEBOOK)
    if spec == "LINK_NOTEBOOK":
        (folder / "linked.ipynb").symlink_to(outside / "secret.ipynb")
        text = step.replace("make.ipynb", "linked.ipynb")
    elif spec == "LINK_CWD":
        (folder / "work").symlink_to(outside)
        text = step + "    cwd: work\n"
    elif spec == "LINK_RUNS":
        (folder / "runs").symlink_to(outside)
        text = step
    else:
        text = spec.format(sibling=outside.name, outside=outside) + step
    relative = _write(jp_root_dir, text)

    async def go():
        code, reply = await api("POST", "pipelines", "runs", body={"pipeline": relative})
        assert code == 400, reply
        assert reply["field"] == field, reply
        assert "outside the server's root" in reply["message"] and "\n" not in reply["message"]
        assert _launch_logs(aiinfra_home) == []

    run(go())


def test_paths_that_stay_inside_and_url_outputs_are_allowed(jp_root_dir, outside):
    folder = jp_root_dir / "pipe"
    (folder / "inner").mkdir(parents=True)
    (jp_root_dir / "common").mkdir()
    (folder / "make.ipynb").write_text(NOTEBOOK)
    (folder / "linked.ipynb").symlink_to(folder / "make.ipynb")  # a link that stays inside
    (folder / "work").symlink_to(jp_root_dir / "common")
    steps = "steps:\n  make:\n    notebook: linked.ipynb\n    cwd: work\n"
    for output in ("../common/out", "s3://bucket/runs", "memory://runs", f"file://{folder}/out"):
        _write(jp_root_dir, f"output: {output}\n{steps}")
        check_spec_paths(jp_root_dir.resolve(), PipelineSpec.from_file(folder / "pipeline.yaml"))


def test_a_request_path_into_a_prefix_sibling_of_the_root_is_refused(
    run, api, jp_root_dir, outside
):
    """``/srv/notebooks-other`` is not inside ``/srv/notebooks``, whatever the strings say."""
    (jp_root_dir / "link").symlink_to(outside)

    async def go():
        for path in (f"../{outside.name}/pipeline.yaml", "link/pipeline.yaml"):
            code, reply = await api("GET", "pipelines", "spec", params={"path": path})
            assert code == 400 and reply["field"] == "path", (path, reply)
            code, reply = await api("POST", "pipelines", "runs", body={"pipeline": path})
            assert code == 400 and reply["field"] == "pipeline", (path, reply)

    run(go())


def test_a_yaml_alias_bomb_is_a_short_400_at_the_spec_and_run_doors(
    run, api, jp_root_dir, aiinfra_home
):
    relative = _write(jp_root_dir, _bomb() + "steps:\n  make:\n    notebook: make.ipynb\n")
    assert len((jp_root_dir / relative).read_bytes()) < 600

    async def go():
        for method, parts, kw in (
            ("GET", ("pipelines", "spec"), {"params": {"path": relative}}),
            ("POST", ("pipelines", "runs"), {"body": {"pipeline": relative}}),
        ):
            code, reply = await api(method, *parts, **kw)
            assert code == 400, reply
            message = reply["message"]
            assert "alias" in message and str(MAX_EXPANDED_VALUES) in message, message
            assert "\n" not in message and len(json.dumps(reply)) < 1000
        assert _launch_logs(aiinfra_home) == []

    run(go())


def test_the_loader_refuses_bombs_and_self_references_but_keeps_small_aliases():
    with pytest.raises(AiinfraError, match="allowed: aliases"):
        load_yaml(_bomb())
    with pytest.raises(AiinfraError, match="inside its own anchor"):
        load_yaml("a: &a [1, *a]\n")
    with pytest.raises(AiinfraError, match="characters"):  # few values, long text
        load_yaml(f"a: &a '{'x' * 100_000}'\nb: [{', '.join(['*a'] * 200)}]\n")
    assert load_yaml(_bomb(levels=3))["d"][0][0][0] == ["lol"] * 9  # 9**4 values: fine
    assert load_yaml("base: &b {timeout: 5}\nstep: *b\n") == {
        "base": {"timeout": 5},
        "step": {"timeout": 5},
    }
