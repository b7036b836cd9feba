"""Pipeline runs over REST: start ``aiinfra pipeline run`` and read ``runs/<run_id>/run.json``.

A run takes minutes and starts kernels, so the server never hosts it: it starts
the CLI (the same core and words) as a detached process and reads the run
records the runner writes next to the pipeline. Paths in bodies are relative to
the server's root_dir and may not leave it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tornado import web

from ..checks import as_name, only_fields
from ..errors import AiinfraError, NotFoundError
from ..pipelines.liveness import settle
from .base import AiinfraHandler
from .paths import inside as _inside
from .paths import relative as _relative
from .paths import server_root as _root
from .paths import within as _within

RUN_FIELDS = ("pipeline", "cluster", "params", "force", "only", "resume", "from")
SCAN_DEPTH = 3  # how deep below root_dir to look for runs/ folders
SKIP_DIRS = {"node_modules", ".git", ".venv", "__pycache__", ".ipynb_checkpoints"}
MAX_RUNS = 50
MAX_PARAM = 64 * 1024  # characters of one parameter value (the job file stays small)
# KEY, or STEP.KEY: step names as the spec allows them, keys Python identifiers (ASCII).
PARAM_KEY = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_-]*\.)?[A-Za-z_][A-Za-z0-9_]*")


def _run_folders(root: Path, extra: list[Path]) -> list[Path]:
    """Every ``runs/`` folder next to a pipeline below root (a bounded walk) and launched ones."""
    found = {p / "runs" for p in extra}
    for dirpath, dirnames, _ in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        if "runs" in dirnames:
            found.add(Path(dirpath) / "runs")
        if depth >= SCAN_DEPTH:
            dirnames[:] = []
    return sorted(f for f in found if f.is_dir() and _within(root, f))


def _listed(run: dict[str, Any]) -> dict[str, Any]:
    """A run as the list shows it: without its environment's package list.

    Every record carries every installed distribution (about 7 KB); the list of 50 runs
    the sidebar re-reads would be mostly that. The hash and the count stay; ``GET
    runs/{run_id}`` gives the whole record.
    """
    environment = run.get("environment")
    if isinstance(environment, dict) and isinstance(environment.get("packages"), dict):
        run["environment"] = {
            **{k: v for k, v in environment.items() if k != "packages"},
            "package_count": len(environment["packages"]),
        }
    return run


def _read_runs(root: Path, extra: list[Path]) -> list[dict[str, Any]]:
    runs = []
    for folder in _run_folders(root, extra):
        for record in folder.glob("*/run.json"):
            if not _within(root, record):
                continue  # a run folder or record linked from outside the root
            try:
                data = json.loads(record.read_text())
            except (OSError, ValueError):
                continue  # a run being written, or not ours
            if not isinstance(data, dict):
                continue
            data.setdefault("run_id", record.parent.name)
            settle(data, record.parent)  # a killed run reads interrupted, never running
            data["folder"] = _relative(root, record.parent)
            steps = data.get("steps")
            for step in steps.values() if isinstance(steps, dict) else []:
                # The lab opens files by path below its root: give the executed notebook's.
                if isinstance(step, dict) and isinstance(step.get("notebook"), str):
                    # run.json paths are relative to the pipeline's folder (runs/<id>/..).
                    notebook = record.parent.parent.parent / step["notebook"]
                    step["notebook_path"] = _relative(root, notebook)
            data["_mtime"] = record.stat().st_mtime
            runs.append(data)
    runs.sort(key=lambda r: r.pop("_mtime"), reverse=True)
    return runs[:MAX_RUNS]


class PipelineRunsHandler(AiinfraHandler):
    @web.authenticated
    async def get(self) -> None:
        launches = self.state.launches
        runs = await self.call(_read_runs, _root(self), [Path(x["dir"]) for x in launches.values()])
        self.reply(
            {
                "available": True,
                "runs": [_listed(r) for r in runs],
                "launches": [_launch_view(x) for x in launches.values()],
            }
        )

    @web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        only_fields(body, RUN_FIELDS)
        pipeline = body.get("pipeline")
        if not isinstance(pipeline, str) or not pipeline.strip():
            raise AiinfraError(
                f"pipeline: got {pipeline!r}; allowed: the path of a pipeline.yaml",
                field="pipeline",
            )
        cluster = body.get("cluster")
        if cluster is not None:
            as_name("cluster", cluster)
        params = _params(body.get("params") or {})
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise AiinfraError(f"force: got {force!r}; allowed: true or false", field="force")
        only = _only(body.get("only"))
        resume, from_step = _resume_from(body, only)
        path = _inside(_root(self), pipeline)
        if not path.is_file():
            raise NotFoundError(f"pipeline: no file {pipeline!r}", field="pipeline")
        # 400 with step and field, before anything starts: the spec, params, only, from, resume.
        await self.call(_check_run, _root(self), path, params, only, resume, from_step)
        launch = await self.call(
            self.state.launch_pipeline, path, cluster, params, force, only, resume, from_step
        )
        self.reply(_launch_view(launch), status=202)


def _only(value: Any) -> list[str] | None:
    if value is None or value == []:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise AiinfraError(
            f"only: got {value!r}; allowed: a list of step names (or expanded names)",
            field="only",
        )
    return value


def _resume_from(body: dict[str, Any], only: list[str] | None) -> tuple[bool, list[str] | None]:
    """``resume`` (true or false) and ``from`` (step names), alone or with params only."""
    resume = body.get("resume", False)
    if not isinstance(resume, bool):
        raise AiinfraError(f"resume: got {resume!r}; allowed: true or false", field="resume")
    from_step = body.get("from")
    if isinstance(from_step, str):
        from_step = [from_step]
    if from_step is not None and (
        not isinstance(from_step, list)
        or not from_step
        or not all(isinstance(v, str) and v for v in from_step)
    ):
        raise AiinfraError(
            f"from: got {body.get('from')!r}; allowed: a step name (or an expanded name)",
            field="from",
        )
    if resume and (from_step or only):
        raise AiinfraError("resume: allowed without only and from", field="resume")
    if from_step and only:
        raise AiinfraError("from: allowed without only", field="from")
    return resume, from_step


def _check_run(
    root: Path,
    path: Path,
    params: dict[str, Any],
    only: list[str] | None,
    resume: bool = False,
    from_step: list[str] | None = None,
) -> None:
    """What the runner would refuse, refused now with a 400 instead of a failed launch."""
    from ..pipelines.dag import apply_overrides, expand, select
    from ..pipelines.params import collect
    from ..pipelines.spec import PipelineSpec

    spec = PipelineSpec.from_file(path)
    check_spec_paths(root, spec)
    try:
        spec = apply_overrides(spec, overrides=collect(typed=params))
    except AiinfraError as exc:  # the runner's words name -p; this door's field is params
        message = str(exc).split(": ", 1)[-1]
        raise AiinfraError(f"params: {message}", field="params") from None
    try:
        select(expand(spec), only, False)
    except AiinfraError as exc:
        raise AiinfraError(str(exc).replace("--only:", "only:", 1), field="only") from None
    if resume or from_step:
        from ..pipelines.resume import last_run, plan_from, plan_resume

        flag = "resume" if resume else "from"
        try:
            if resume:
                plan_resume(expand(spec), spec.folder, last_run(spec.folder))
            else:
                plan_from(expand(spec), from_step or [])
        except AiinfraError as exc:  # the runner's words name --resume/--from
            raise AiinfraError(str(exc).replace(f"--{flag}:", f"{flag}:", 1), field=flag) from None


# fsspec schemes that are the local disk under another name: held like plain folders.
LOCAL_SCHEMES = ("file", "local")


def check_spec_paths(root: Path, spec: Any) -> None:
    """Paths a spec file names stay inside the server's root once links are resolved.

    The spec's own checks refuse ``..`` and absolute paths, but a run through the
    server must also not follow a link out of the root, nor write its notebooks
    there through ``output``. A URL ``output`` is papermill's to write and stays
    allowed, unless it is the local disk by another name (``file://``).
    """
    from ..pipelines.outputs import is_url

    def held(field: str, value: str, target: Path, what: str) -> None:
        if not _within(root, target):
            raise AiinfraError(
                f"{field}: got {value!r}, which resolves outside the server's root directory; "
                f"allowed: {what} inside the server's root directory",
                field=field,
            )

    output = spec.output
    if output:
        scheme, _, rest = output.partition("://")
        if not is_url(output):
            held("output", output, spec.folder / output, "a folder (or a URL papermill writes)")
        elif scheme.lower() in LOCAL_SCHEMES:
            local = urlsplit(output).path if scheme.lower() == "file" else rest
            held("output", output, Path(unquote(local)), "a file:// folder (or a remote URL)")
    else:  # executed notebooks go to runs/<run_id>/ next to the spec
        held("output", "runs/", spec.folder / "runs", "a runs/ folder")
    for step in spec.steps.values():
        where = f"steps.{step.name}"
        held(f"{where}.notebook", step.notebook, spec.folder / step.notebook, "a notebook")
        if step.cwd:
            held(f"{where}.cwd", step.cwd, spec.folder / step.cwd, "a folder")


def _params(params: Any) -> dict[str, Any]:
    """Names are KEY or STEP.KEY (identifiers, step names); values JSON of bounded size."""
    allowed = "an object of parameter names (KEY or STEP.KEY) to JSON values"
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and PARAM_KEY.fullmatch(k) for k in params
    ):
        shown = repr(params)[:80]
        raise AiinfraError(f"params: got {shown}; allowed: {allowed}", field="params")
    for key, value in params.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if "\0" in text or len(text) > MAX_PARAM:
            raise AiinfraError(
                f"params: value of {key!r} has a NUL or is over {MAX_PARAM} characters; "
                f"allowed: {allowed}",
                field="params",
            )
    return params


class PipelineRunHandler(AiinfraHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        launches = self.state.launches
        if run_id in launches:
            self.reply(_launch_view(launches[run_id]))
            return
        runs = await self.call(_read_runs, _root(self), [Path(x["dir"]) for x in launches.values()])
        for run in runs:
            if run.get("run_id") == run_id:
                self.reply(run)
                return
        raise NotFoundError(f"run_id: no pipeline run {run_id!r}", field="run_id")

    @web.authenticated
    async def delete(self, run_id: str) -> None:
        """Cancel a run this server launched (SIGINT, then SIGTERM; see runs.cancel)."""
        from .runs import cancel, launch_for

        launch = launch_for(self.state.launches, run_id)
        if launch is None:  # started elsewhere (CLI, schedule, a kernel): cancelled by its record
            runs = await self.call(
                _read_runs, _root(self), [Path(x["dir"]) for x in self.state.launches.values()]
            )
            found = next((r for r in runs if r.get("run_id") == run_id), None)
            if found is None:
                raise NotFoundError(f"run_id: no pipeline run {run_id!r}", field="run_id")
            from ..pipelines.liveness import cancel as cancel_recorded

            self.reply(await self.call(cancel_recorded, _root(self) / found["folder"]))
            return
        self.reply(await self.call(cancel, launch))


def _launch_view(launch: dict[str, Any]) -> dict[str, Any]:
    from .runs import launch_run_id

    code = launch["process"].poll()
    status = "running" if code is None else ("finished" if code == 0 else "failed")
    if code is not None and code < 0:  # killed by a signal: its record says interrupted
        status = "interrupted"
    if code is not None and launch.get("cancelled"):
        status = "cancelled"
    run_id = launch_run_id(launch)
    view = {k: v for k, v in launch.items() if k not in ("process", "run_id_file")}
    return {**view, "run_id": run_id, "status": status, "exit_code": code}
