"""``mlflow:`` in the spec: a real run logged to a real MLflow SQLite store in tmp."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nbfiles import write_notebook

from aiinfra_magics.doors.cli import main
from aiinfra_magics.errors import InputError
from aiinfra_magics.pipelines.mlflow_log import key, redact, resolve_uri
from aiinfra_magics.pipelines.report import write_report
from aiinfra_magics.pipelines.runner import run_pipeline
from aiinfra_magics.pipelines.spec import PipelineSpec

WRITE = "import os\nos.makedirs(os.path.dirname(product[0]) or '.', exist_ok=True)\n"


def make_pipeline(folder: Path, mlflow: dict | None) -> Path:
    write_notebook(
        folder / "a.ipynb", "k = 1\nproduct = []", WRITE + "open(product[0], 'w').write(str(k))"
    )
    write_notebook(
        folder / "train.ipynb",
        "lr = 0.0\nproduct = []\nupstream = {}",
        WRITE + "open(product[0], 'w').write(f'{lr}')",
    )
    spec = {
        "name": "tracked",
        "steps": {
            "a": {"notebook": "a.ipynb", "params": {"k": 1}, "products": ["data/a.txt"]},
            "train": {
                "notebook": "train.ipynb",
                "after": ["a"],
                "grid": {"lr": [0.1, 0.2]},
                "products": ["models/m-{lr}.txt"],
            },
        },
    }
    if mlflow is not None:
        spec["mlflow"] = mlflow
    path = folder / "pipeline.yaml"
    path.write_text(json.dumps(spec))
    return path


def test_a_run_is_logged_with_params_metrics_artifacts_and_lineage_tags(tmp_path, client):
    from mlflow.tracking import MlflowClient

    spec = make_pipeline(
        tmp_path, {"tracking_uri": "sqlite:///store/mlflow.db", "experiment": "nightly-models"}
    )
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@127.0.0.1"]
    subprocess.run([*git, "init", "-q", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()

    run = run_pipeline(spec, client=client, trigger="schedule:nightly")
    assert run.status == "ok", run.summary()
    logged = run.data["mlflow"]
    assert logged["status"] == "logged", logged
    assert json.loads(run.path.read_text())["mlflow"] == logged

    store = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/store/mlflow.db")
    experiment = store.get_experiment_by_name("nightly-models")
    (found,) = store.search_runs([experiment.experiment_id])
    assert found.info.run_id == logged["run_id"]
    assert found.info.status == "FINISHED" and found.info.run_name == run.run_id

    params = found.data.params
    assert params["a/k"] == "1"
    assert params["train/lr:0.1/lr"] == "0.1" and params["train/lr:0.2/lr"] == "0.2"

    metrics = found.data.metrics
    assert metrics["a/duration_s"] == pytest.approx(run.steps["a"]["duration"])
    assert metrics["train/lr:0.2/core_hours"] == pytest.approx(
        run.steps["train[lr=0.2]"]["cost"]["core_hours"]
    )
    assert metrics["duration_s"] == pytest.approx(run.data["duration"])
    assert metrics["steps/ok"] == 3

    tags = found.data.tags
    assert tags["aiinfra.run_id"] == run.run_id
    assert tags["aiinfra.trigger"] == "schedule" and tags["aiinfra.schedule"] == "nightly"
    assert tags["aiinfra.environment_hash"] == run.data["environment"]["packages_hash"]
    assert tags["aiinfra.git_commit"] == tags["mlflow.source.git.commit"] == head
    assert tags["aiinfra.code/a"] == run.steps["a"]["hashes"]["code"]

    names = {a.path for a in store.list_artifacts(found.info.run_id, "aiinfra")}
    assert names == {"aiinfra/report.html", "aiinfra/run.json"}
    models = {a.path for a in store.list_artifacts(found.info.run_id, "products/models")}
    assert models == {"products/models/m-0.1.txt", "products/models/m-0.2.txt"}
    got = store.download_artifacts(found.info.run_id, "products/data/a.txt", str(tmp_path))
    assert Path(got).read_text() == "1"
    # Artifacts sit beside the database, not in whatever folder the runner started in.
    assert (tmp_path / "store" / "mlartifacts").is_dir()

    assert logged["run_id"] in write_report(run).read_text()


def test_a_failure_to_log_is_recorded_and_never_fails_the_run(tmp_path, client):
    (tmp_path / "blocker").write_text("a file where the store's folder would go")
    spec = make_pipeline(tmp_path, {"tracking_uri": "sqlite:///blocker/mlflow.db"})
    run = run_pipeline(spec, client=client)
    assert run.status == "ok", run.summary()
    logged = json.loads(run.path.read_text())["mlflow"]
    assert logged["status"] == "failed" and logged["error"], logged
    assert logged["experiment"] == "tracked"  # the pipeline's name by default
    assert "not logged to" in write_report(run).read_text()


def test_a_missing_mlflow_is_refused_before_the_run_naming_the_extra(tmp_path, capsys, monkeypatch):
    spec = make_pipeline(tmp_path, {"tracking_uri": "sqlite:///m.db"})
    monkeypatch.setitem(sys.modules, "mlflow", None)  # how Python blocks an import
    assert main(["pipeline", "run", str(spec), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "mlflow: the spec logs runs to MLflow but mlflow is not installed" in err
    assert "pip install 'aiinfra[mlflow]'" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("mlflow", "field", "message"),
    [
        ("sqlite:///m.db", "mlflow", "mlflow: got 'sqlite:///m.db'; allowed: a mapping"),
        ({"uri": "x"}, "mlflow.uri", "mlflow: unknown field 'uri'; allowed: tracking_uri"),
        ({"tracking_uri": 5}, "mlflow.tracking_uri", "mlflow.tracking_uri: got 5; allowed:"),
        ({"tracking_uri": "a\nb"}, "mlflow.tracking_uri", "mlflow.tracking_uri: got 'a\\nb'"),
        ({"experiment": ""}, "mlflow.experiment", "mlflow.experiment: got ''; allowed:"),
        ({"experiment": ["x"]}, "mlflow.experiment", "mlflow.experiment: got ['x']"),
    ],
)
def test_bad_mlflow_settings_name_the_field(tmp_path, mlflow, field, message):
    data = {"steps": {"a": {"notebook": "a.ipynb"}}, "mlflow": mlflow}
    with pytest.raises(InputError) as err:
        PipelineSpec.from_dict(data, tmp_path, check_files=False)
    assert err.value.field == field
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_local_stores_are_relative_to_the_pipeline_folder(tmp_path):
    spec = PipelineSpec.from_dict(
        {"name": "p", "steps": {"a": {"notebook": "a.ipynb"}}, "mlflow": {}},
        tmp_path,
        check_files=False,
    )
    assert spec.mlflow == {"tracking_uri": None, "experiment": "p"}
    here = tmp_path.resolve()
    assert resolve_uri("sqlite:///db/m.db", here) == f"sqlite:///{here}/db/m.db"
    assert resolve_uri("sqlite:////abs/m.db", here) == "sqlite:////abs/m.db"
    assert resolve_uri("mlruns", here) == (here / "mlruns").as_uri()
    assert resolve_uri("file:mlruns", here) == (here / "mlruns").as_uri()
    assert resolve_uri("http://127.0.0.1:5000", here) == "http://127.0.0.1:5000"
    assert resolve_uri("databricks", here) == "databricks"


def test_keys_and_recorded_uris():
    assert key("train[lr=0.1,bs=32]", "lr") == "train/lr:0.1_bs:32/lr"
    assert key("a[p=..]", "x") == "a/p:../x"
    assert key("a[p=/]", "x") == "a/p:/_/x"
    assert redact("postgresql://me:s3cr@t@127.0.0.1/db") == "postgresql://me:***@127.0.0.1/db"
    assert redact("http://127.0.0.1:5000/x") == "http://127.0.0.1:5000/x"
