"""Lineage: what each run records, ``pipeline lineage FILE`` and ``pipeline diff RUN_A RUN_B``.

Two real runs of a two-step pipeline in a git repository, on a real 2-worker cluster. The
second differs for real: another parameter, changed code in step b (uncommitted, so the
source is dirty) and a schedule trigger.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from nbfiles import write_notebook

from aiinfra_magics.doors.cli import main
from aiinfra_magics.pipelines import provenance
from aiinfra_magics.pipelines.report import render_report, write_report
from aiinfra_magics.pipelines.runner import run_pipeline

WRITE_A = "import os\nos.makedirs('data', exist_ok=True)\nopen(product[0], 'w').write(str(k))"
WRITE_B = "open(product[0], 'w').write(open(upstream['a'][0]).read() * 2)"
HEAVY = {"papermill", "nbformat", "jsonschema", "distributed", "dask", "pyarrow", "mlflow"}


def git(folder: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@127.0.0.1", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=True).stdout


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, client):
    folder = tmp_path_factory.mktemp("lineage")
    write_notebook(folder / "a.ipynb", "k = 1\nproduct = []", WRITE_A)
    write_notebook(folder / "b.ipynb", "upstream = {}\nproduct = []", WRITE_B)
    spec = {
        "name": "lineage",
        "steps": {
            "a": {"notebook": "a.ipynb", "params": {"k": 1}, "products": ["data/a.txt"]},
            "b": {"notebook": "b.ipynb", "after": ["a"], "products": ["b.txt"]},
        },
    }
    (folder / "pipeline.yaml").write_text(json.dumps(spec))
    git(folder, "init", "-q", ".")
    git(folder, "add", "a.ipynb", "b.ipynb", "pipeline.yaml")
    git(folder, "commit", "-q", "-m", "first")
    first = run_pipeline(folder / "pipeline.yaml", client=client)
    assert first.status == "ok", first.summary()
    write_notebook(
        folder / "b.ipynb", "upstream = {}\nproduct = []", WRITE_B.replace("* 2)", "* 2 + '!')")
    )
    second = run_pipeline(
        folder / "pipeline.yaml", client=client, params=["k=2"], trigger="schedule:nightly"
    )
    assert second.status == "ok", second.summary()
    return folder, first, second


def test_each_run_records_trigger_environment_source_and_product_hashes(runs):
    folder, first, second = runs
    assert first.data["trigger"] == {"kind": "manual", "schedule": None}
    assert second.data["trigger"] == {"kind": "schedule", "schedule": "nightly"}

    env = second.data["environment"]
    packages = env["packages"]
    assert packages["papermill"] == metadata.version("papermill")
    assert packages["aiinfra"] == metadata.version("aiinfra")
    assert packages["ruamel-yaml"] == metadata.version("ruamel.yaml")  # PEP 503 names
    lines = "".join(f"{n}=={packages[n]}\n" for n in sorted(packages))
    assert env["packages_hash"] == sha256(lines.encode())
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))

    head = git(folder, "rev-parse", "HEAD").strip()
    assert first.data["source"] == {"commit": head, "dirty": False}
    assert second.data["source"] == {"commit": head, "dirty": True}  # b.ipynb changed

    assert first.steps["a"]["product_sha256"] == {"data/a.txt": sha256(b"1")}
    assert second.steps["a"]["product_sha256"] == {"data/a.txt": sha256(b"2")}
    assert second.steps["b"]["product_sha256"] == {"b.txt": sha256(b"22!")}
    on_disk = json.loads((second.run_dir / "run.json").read_text())
    assert on_disk["steps"]["b"]["product_sha256"] == {"b.txt": sha256(b"22!")}


def lineage_json(capsys, *args: str) -> dict:
    assert main(["pipeline", "lineage", *args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_lineage_names_the_run_and_step_that_made_the_current_content(runs, capsys):
    folder, first, second = runs
    product = folder / "data" / "a.txt"
    found = lineage_json(capsys, str(product))
    assert (found["run_id"], found["step"], found["product"]) == (second.run_id, "a", "data/a.txt")
    assert found["params"] == {"k": 2}
    assert found["code_hash"] == second.steps["a"]["hashes"]["code"]
    assert found["environment_hash"] == second.data["environment"]["packages_hash"]
    assert found["trigger"] == {"kind": "schedule", "schedule": "nightly"}
    assert found["same_path"] is True

    assert main(["pipeline", "lineage", str(product)]) == 0
    text = capsys.readouterr().out
    assert second.run_id in text and "k=2" in text and "schedule:nightly" in text

    try:  # the first run's content again: the first run made it
        product.write_text("1")
        found = lineage_json(capsys, str(product))
        assert (found["run_id"], found["params"]) == (first.run_id, {"k": 1})
        assert found["code_hash"] == first.steps["a"]["hashes"]["code"]

        product.write_text("changed by hand")
        assert main(["pipeline", "lineage", str(product)]) == 1
        err = capsys.readouterr().err
        assert "no run under" in err and "produced the current content" in err
        assert f"last written by run {second.run_id} step a" in err
    finally:
        product.write_text("2")

    copy = folder / "elsewhere" / "copy.txt"  # the same bytes under another name
    copy.parent.mkdir(exist_ok=True)
    shutil.copy(folder / "b.txt", copy)
    found = lineage_json(capsys, str(copy))
    assert (found["run_id"], found["step"], found["same_path"]) == (second.run_id, "b", False)

    assert main(["pipeline", "lineage", str(folder / "nope.txt")]) == 2
    assert "FILE: got" in capsys.readouterr().err


def test_diff_lists_parameters_code_upstream_products_trigger_and_source(runs, capsys, monkeypatch):
    folder, first, second = runs
    spec = str(folder / "pipeline.yaml")
    argv = ["pipeline", "diff", first.run_id, second.run_id, "--pipeline", spec]
    assert main([*argv, "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    a, b = changes["steps"]["a"], changes["steps"]["b"]
    assert a["params"] == {"k": [1, 2]}
    assert "code" not in a  # a's notebook did not change
    assert a["products"] == {"data/a.txt": [sha256(b"1"), sha256(b"2")]}
    assert b["code"] == [first.steps["b"]["hashes"]["code"], second.steps["b"]["hashes"]["code"]]
    assert b["upstream"] == {"a:data/a.txt": [sha256(b"1"), sha256(b"2")]}
    assert b["products"] == {"b.txt": [sha256(b"11"), sha256(b"22!")]}
    assert changes["trigger"] == [first.data["trigger"], second.data["trigger"]]
    assert [s["dirty"] for s in changes["source"]] == [False, True]
    assert "environment" not in changes and changes["same"] is False

    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "param k: 1 -> 2" in text
    assert "trigger: manual -> schedule:nightly" in text
    assert "step b:" in text and "  code: " in text

    monkeypatch.chdir(folder)  # names relative to the pipeline found from here
    assert main(["pipeline", "diff", "last~1", "last", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == changes["steps"]
    assert main(["pipeline", "diff", "last", second.run_id]) == 0
    assert "no differences" in capsys.readouterr().out
    assert main(["pipeline", "diff", "last", "20000101-nope"]) == 2
    assert "RUN_B: '20000101-nope' names no run" in capsys.readouterr().err


def test_diff_lists_package_changes(runs, tmp_path, capsys):
    """Packages: two real run records, one of them copied and its environment edited
    (a run in a second environment with another package would need a second venv)."""
    _, first, _ = runs
    record = json.loads(first.path.read_text())
    env = record["environment"]
    real = env["packages"]["papermill"]
    env["packages"]["papermill"] = "0.0.1"
    removed = env["packages"].pop("ruamel-yaml")
    env["packages"]["tiny-extra"] = "1.0"
    env["packages_hash"] = provenance.packages_hash(env["packages"])
    env["python"] = "3.0.0"
    edited = tmp_path / "elsewhere" / "run.json"
    edited.parent.mkdir()
    edited.write_text(json.dumps(record))

    assert main(["pipeline", "diff", str(first.path), str(edited), "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    assert changes["environment"]["packages"] == {
        "added": {"tiny-extra": "1.0"},
        "removed": {"ruamel-yaml": removed},
        "changed": {"papermill": [real, "0.0.1"]},
    }
    assert changes["environment"]["python"] == [first.data["environment"]["python"], "3.0.0"]
    assert changes["steps"] == {}

    assert main(["pipeline", "diff", str(first.path), str(edited.parent)]) == 0
    text = capsys.readouterr().out
    assert "packages: 1 changed, 1 added, 1 removed" in text
    assert f"~ papermill {real} -> 0.0.1" in text and "+ tiny-extra 1.0" in text


def test_report_shows_trigger_environment_source_and_product_hashes(runs):
    _, _, second = runs
    page = write_report(second).read_text()
    env = second.data["environment"]
    assert "schedule:nightly" in page
    assert env["packages_hash"] in page and f"{len(env['packages'])} packages" in page
    assert f"<li>papermill {env['packages']['papermill']}</li>" in page
    assert f"git {second.data['source']['commit']} (with local changes)" in page
    assert sha256(b"22!") in page and second.steps["b"]["hashes"]["code"] in page


def test_report_escapes_lineage_fields(runs):
    """Values a user controls (schedule and package names, product paths), made hostile."""
    _, _, second = runs
    data = json.loads(json.dumps(second.data))
    data["trigger"] = {"kind": "schedule", "schedule": "<script>s()</script>"}
    data["environment"]["packages"] = {"<img src=x>": "<b>1</b>"}
    data["source"] = {"commit": "<i>c</i>", "dirty": False}
    data["steps"]["a"]["product_sha256"] = {"<svg onload=x>": "<u>h</u>"}
    data["steps"]["a"]["params"] = {"k": "</code><script>"}
    page = render_report(type(second)(data, second.folder), second.run_dir)
    for raw in ("<script>", "<img src=x>", "<b>1</b>", "<i>c</i>", "<svg onload", "<u>h</u>"):
        assert raw not in page
    assert "&lt;script&gt;s()&lt;/script&gt;" in page and "&lt;img src=x&gt;" in page


def test_a_bad_trigger_is_refused_before_anything_runs(runs, capsys):
    folder, _, _ = runs
    before = sorted((folder / "runs").iterdir())
    spec = str(folder / "pipeline.yaml")
    for bad in ("nightly", "schedule", "manual:x", "schedule:"):
        assert main(["pipeline", "run", spec, "--trigger", bad]) == 2
        assert f"--trigger: got '{bad}'; allowed: manual, lab or schedule:NAME" in (
            capsys.readouterr().err
        )
    assert sorted((folder / "runs").iterdir()) == before


def test_a_run_the_server_launches_is_recorded_as_lab(runs, tmp_path):
    from aiinfra_magics.server.launch import main as launch

    folder, _, second = runs
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"pipeline": str(folder / "pipeline.yaml"), "params": {"k": 2}}))
    assert launch([str(job)]) == 0
    latest = sorted((folder / "runs").glob("*/run.json"))[-1]
    record = json.loads(latest.read_text())
    assert record["run_id"] != second.run_id
    assert record["trigger"] == {"kind": "lab", "schedule": None}


def test_environment_is_cached_until_a_path_folder_changes(tmp_path, monkeypatch):
    site = tmp_path / "site"
    dist = site / "fake_pkg-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: Fake_Pkg\nVersion: 1.0\n")
    # Only folders nothing else writes to while the suite runs: the checkout (cwd, tests/)
    # gets coverage files and caches from other workers, which would rightly miss the cache.
    interpreter = (sys.prefix, sys.base_prefix)
    stable = [p for p in sys.path if p and p.startswith(interpreter)]
    monkeypatch.setattr(sys, "path", [str(site), *stable])
    cache = tmp_path / "home"
    env = provenance.environment(cache)
    assert env["packages"]["fake-pkg"] == "1.0"
    assert (cache / provenance.CACHE_FILE).stat().st_mode & 0o777 == 0o600

    # Nothing changed: the cached list is what a new process reads (planted here to tell).
    stored = json.loads((cache / provenance.CACHE_FILE).read_text())
    (key,) = [k for k, v in stored.items() if v["packages"].get("fake-pkg")]
    stored[key]["packages"]["planted"] = "9"
    stored[key]["packages_hash"] = provenance.packages_hash(stored[key]["packages"])
    (cache / provenance.CACHE_FILE).write_text(json.dumps(stored))
    monkeypatch.setattr(provenance, "_memo", {})
    assert provenance.environment(cache)["packages"]["planted"] == "9"

    # An upgrade replaces the .dist-info folder, so the path folder's mtime moves on.
    new = dist.rename(site / "fake_pkg-2.0.dist-info")
    (new / "METADATA").write_text("Metadata-Version: 2.1\nName: Fake_Pkg\nVersion: 2.0\n")
    later = os.stat(site).st_mtime_ns + 10**9  # a coarse clock must not hide the change
    os.utime(site, ns=(later, later))
    monkeypatch.setattr(provenance, "_memo", {})
    env = provenance.environment(cache)
    assert env["packages"]["fake-pkg"] == "2.0" and "planted" not in env["packages"]


def test_lineage_and_diff_import_nothing_heavy(runs):
    folder, first, second = runs
    for args in (
        ["lineage", str(folder / "b.txt")],
        ["diff", first.run_id, second.run_id, "--pipeline", str(folder)],
    ):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "aiinfra_magics", "pipeline", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        loaded = {
            line.split("|")[-1].strip().split(".")[0]
            for line in proc.stderr.splitlines()
            if line.startswith("import time:")
        }
        assert not loaded & HEAVY, f"pipeline {args[0]} imported {sorted(loaded & HEAVY)}"
