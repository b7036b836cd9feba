"""``mlflow: {tracking_uri, experiment}`` in the spec: each run logged as an MLflow run.

The extra ``aiinfra[mlflow]`` installs it (mlflow-skinny, with SQLAlchemy and alembic for
a local ``sqlite:///`` store). mlflow is imported only when a run ends and its spec asks:
it takes about a second to import. What is logged:

- parameters: each step's, as ``STEP/KEY`` (a grid point ``train[lr=0.1]`` is ``train/lr:0.1``);
- metrics: the run's and each step's duration (``STEP/duration_s``) and cost figures;
- artifacts: the report and run.json (``aiinfra/``), every product (``products/``) and the
  executed notebooks (``notebooks/``);
- tags: the aiinfra run id, pipeline, status, trigger, environment hash and git commit, and
  each step's code hash (``aiinfra.code/STEP``).

Logging never fails the run: what happened is returned for run.json's ``mlflow`` field.
"""

from __future__ import annotations

import importlib.util
import logging
import posixpath
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError, field_error

# Runs are record.RunRecord objects, not imported: spec.py imports this module, and
# record -> cache -> dag -> spec would close a cycle.
RunRecord = Any

FIELDS = ("tracking_uri", "experiment")
EXTRA = "pip install 'aiinfra[mlflow]'"
URI_ALLOWED = (
    "an MLflow tracking URI (sqlite:///PATH, file:PATH, http(s)://HOST, databricks) "
    "or a folder relative to the pipeline"
)
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
NAMED_STORES = ("databricks", "databricks-uc", "uc")
#: What MLflow allows in a param or metric key (Linux); anything else becomes "_".
KEY_CHARS = re.compile(r"[^/\w.\- :]")
#: MLflow's per-request limits (log_batch) and the longest param value it keeps.
BATCH = {"params": 100, "metrics": 1000, "tags": 100}
MAX_PARAM = 6000
STATUSES = {"ok": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
COST_FIGURES = (
    "gpu_hours",
    "core_hours",
    "memory_gb_hours",
    "cpu_hours",
    "cpu_efficiency",
    "gpu_efficiency",
    "gpu_used_hours",
)


# -- the spec's mlflow: field ---------------------------------------------------------------


def check_settings(value: Any, folder: Path, pipeline: str) -> dict[str, Any] | None:
    """The validated ``mlflow:`` mapping, its paths resolved against the pipeline folder.

    Raises:
        InputError: naming ``mlflow`` or ``mlflow.FIELD``.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise field_error("mlflow", value, "a mapping with keys " + ", ".join(FIELDS))
    for key in value:
        if key not in FIELDS:
            raise InputError(
                f"mlflow: unknown field {key!r}; allowed: {', '.join(FIELDS)}",
                field=f"mlflow.{key}",
            )
    uri = value.get("tracking_uri")
    if uri is not None:
        if not isinstance(uri, str) or not uri.strip() or not uri.isprintable() or len(uri) > 2000:
            raise field_error("mlflow.tracking_uri", uri, URI_ALLOWED)
        uri = resolve_uri(uri.strip(), folder)
    experiment = value.get("experiment", pipeline)
    if (
        not isinstance(experiment, str)
        or not experiment.strip()
        or not experiment.isprintable()
        or len(experiment) > 500
    ):
        raise field_error(
            "mlflow.experiment", experiment, "an experiment name (default: the pipeline's)"
        )
    return {"tracking_uri": uri, "experiment": experiment.strip()}


def resolve_uri(uri: str, folder: Path) -> str:
    """Local stores relative to the pipeline folder, as every path in the spec is.

    ``sqlite:///runs.db`` (three slashes: relative, in SQLAlchemy's reading), ``file:mlruns``
    and a plain ``mlruns`` name places under the folder; absolute ones and servers stay.
    """
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str((folder / uri[len("sqlite:///") :]).resolve())
    if uri.startswith("file:") and not uri.startswith("file:/"):
        return (folder / uri[len("file:") :]).resolve().as_uri()
    if uri in NAMED_STORES or SCHEME.match(uri):
        return uri
    return (folder / uri).resolve().as_uri()


def require_mlflow() -> None:
    """Refuse a run whose spec logs to MLflow when mlflow is missing, before anything runs.

    Raises:
        InputError: naming ``mlflow`` and the extra that installs it.
    """
    try:
        found = importlib.util.find_spec("mlflow") is not None
    except (ImportError, ValueError):  # a blocked import (None in sys.modules) or a broken one
        found = False
    if not found:
        raise InputError(
            "mlflow: the spec logs runs to MLflow but mlflow is not installed; "
            f"allowed: {EXTRA}, or no mlflow: in the spec",
            field="mlflow",
        )


# -- logging a run --------------------------------------------------------------------------


def key(*parts: str) -> str:
    """An MLflow key from a step and a name: ``train[lr=0.1]`` -> ``train/lr:0.1``."""
    text = "/".join(p.replace("[", "/").replace("]", "").replace("=", ":") for p in parts)
    text = KEY_CHARS.sub("_", text)
    # MLflow refuses names that a path normalisation would change ("a//b", "../x").
    parts = [p if p not in ("", ".", "..") else "_" for p in text.split("/")]
    text = "/".join(parts)
    return text if posixpath.normpath(text) == text else KEY_CHARS.sub("_", text.replace("/", "_"))


def redact(uri: str | None) -> str | None:
    """The URI without a password (``postgresql://user:secret@host`` -> ``user:***@host``):
    it goes into run.json and the report."""
    if not uri:
        return uri
    return re.sub(r"(://[^/@:]*):[^/]*@", r"\1:***@", uri)


def _param_value(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM]


def _ms(ts: Any) -> int | None:
    return int(ts * 1000) if isinstance(ts, (int, float)) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _artifact_location(uri: str | None) -> str | None:
    """Artifacts of a new experiment in a local SQLite store: beside the database.

    MLflow's default is ``./mlruns`` relative to whatever the runner's cwd happens to be.
    """
    if uri and uri.startswith("sqlite:////"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    return None


def collect(run: RunRecord) -> tuple[dict[str, str], list[tuple[str, float, int]], dict[str, str]]:
    """What the MLflow run gets: params, metrics (key, value, ms) and tags."""
    data = run.data
    end = _ms(data.get("end")) or int(time.time() * 1000)
    params: dict[str, str] = {}
    metrics: list[tuple[str, float, int]] = []
    tags: dict[str, str] = {}
    for name, step in run.steps.items():
        for param, value in (step.get("params") or {}).items():
            params[key(name, param)] = _param_value(value)
        when = _ms(step.get("end")) or end
        if (took := _number(step.get("duration"))) is not None:
            metrics.append((key(name, "duration_s"), took, when))
        cost = step.get("cost") if isinstance(step.get("cost"), dict) else {}
        for figure in COST_FIGURES:
            if (value := _number(cost.get(figure))) is not None:
                metrics.append((key(name, figure), value, when))
        code = (step.get("hashes") or {}).get("code")
        if code:
            tags["aiinfra.code/" + key(name)] = code
    if (took := _number(data.get("duration"))) is not None:
        metrics.append(("duration_s", took, end))
    total = data.get("cost") if isinstance(data.get("cost"), dict) else {}
    for figure in COST_FIGURES:
        if (value := _number(total.get(figure))) is not None:
            metrics.append((f"cost/{figure}", value, end))
    for status, count in run.counts().items():
        metrics.append((f"steps/{status}", float(count), end))
    trigger = data.get("trigger") or {}
    source = data.get("source") or {}
    env = data.get("environment") or {}
    tags.update(
        {
            "aiinfra.run_id": run.run_id,
            "aiinfra.pipeline": str(data.get("pipeline")),
            "aiinfra.status": str(data.get("status")),
            "aiinfra.trigger": str(trigger.get("kind") or "unknown"),
            "aiinfra.environment_hash": str(env.get("packages_hash") or ""),
            "aiinfra.python": str(env.get("python") or ""),
            "mlflow.source.name": str(data.get("file") or ""),
            "mlflow.source.type": "JOB",
        }
    )
    if trigger.get("schedule"):
        tags["aiinfra.schedule"] = str(trigger["schedule"])
    if source.get("commit"):
        tags["aiinfra.git_commit"] = tags["mlflow.source.git.commit"] = str(source["commit"])
        tags["aiinfra.git_dirty"] = str(bool(source.get("dirty"))).lower()
    return params, metrics, tags


def log_run(
    run: RunRecord, settings: dict[str, Any], write_report: Callable[[Any], Path]
) -> dict[str, Any]:
    """Log ``run`` as an MLflow run; never raises (what happened is the returned dict).

    ``write_report(run)`` writes the run's HTML report and returns its path.
    """
    started = time.monotonic()
    out: dict[str, Any] = {
        "tracking_uri": redact(settings.get("tracking_uri")),
        "experiment": settings["experiment"],
    }
    quiet = logging.getLogger("mlflow")
    level = quiet.level
    try:
        quiet.setLevel(logging.WARNING)  # not its "Creating initial database tables" lines
        out.update(_log(run, settings, write_report))
        out["status"] = "logged"
    except Exception as exc:  # noqa: BLE001 - any failure to log is recorded, never raised
        text = str(exc).strip().splitlines()
        out.update(status="failed", error=f"{type(exc).__name__}: {text[0] if text else ''}"[:500])
    finally:
        quiet.setLevel(level)
    out["seconds"] = round(time.monotonic() - started, 3)
    return out


def _log(
    run: RunRecord, settings: dict[str, Any], write_report: Callable[[Any], Path]
) -> dict[str, Any]:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    uri = settings.get("tracking_uri")
    client = MlflowClient(tracking_uri=uri)
    name = settings["experiment"]
    found = client.get_experiment_by_name(name)
    experiment_id = (
        found.experiment_id
        if found is not None
        else client.create_experiment(name, artifact_location=_artifact_location(uri))
    )
    params, metrics, tags = collect(run)
    mlflow_run = client.create_run(
        experiment_id, start_time=_ms(run.data.get("start")), run_name=run.run_id
    )
    run_id = mlflow_run.info.run_id
    status = STATUSES.get(run.status, "FAILED")
    try:
        items = {
            "params": [Param(k, v) for k, v in params.items()],
            "metrics": [Metric(k, v, ms, 0) for k, v, ms in metrics],
            "tags": [RunTag(k, v) for k, v in tags.items()],
        }
        for kind, size in BATCH.items():
            for i in range(0, len(items[kind]), size):
                client.log_batch(run_id, **{kind: items[kind][i : i + size]})
        client.log_artifact(run_id, str(write_report(run)), "aiinfra")
        client.log_artifact(run_id, str(run.path), "aiinfra")
        artifacts = _log_files(client, run_id, run)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, status, end_time=_ms(run.data.get("end")))
    return {"experiment_id": experiment_id, "run_id": run_id, "artifacts": artifacts}


def _log_files(client: Any, run_id: str, run: RunRecord) -> int:
    """Products of the steps that have them now (made or kept by this run), and the
    executed notebooks on this file system; returns how many were logged."""
    logged = 0
    for step in run.steps.values():
        if step.get("status") not in ("ok", "cached"):
            continue
        for product in step.get("products") or []:
            path = run.folder / product
            where = posixpath.join("products", posixpath.dirname(product)).rstrip("/")
            if path.is_file():
                client.log_artifact(run_id, str(path), where)
            elif path.is_dir():
                client.log_artifacts(run_id, str(path), posixpath.join("products", product))
            else:
                continue
            logged += 1
        notebook = step.get("notebook")
        if step.get("status") == "ok" and notebook and "://" not in notebook:
            path = run.folder / notebook
            if path.is_file():
                client.log_artifact(run_id, str(path), "notebooks")
                logged += 1
    return logged
