"""What the lab's run dialog and run view need besides listing runs.

- ``GET aiinfra/api/pipelines/spec?path=REL``: the parsed spec (steps, their
  params and grids, the expanded nodes), so the dialog can build a form from it.
- ``POST aiinfra/api/pipelines/promote``: ``%aiinfra promote`` for a notebook open in the lab.
- cancelling a run this server launched (``DELETE aiinfra/api/pipelines/runs/{run_id}``):
  SIGINT first (the runner stops its kernels and records every step), SIGTERM if
  it does not end, SIGKILL only as the last resort.

Paths come relative to the server's root and may not leave it, exactly as
``POST aiinfra/api/pipelines/runs`` checks ``pipeline``.
"""

from __future__ import annotations

import math
import signal
import subprocess
from pathlib import Path
from typing import Any

from tornado import web

from ..checks import only_fields
from ..errors import AiinfraError, NotFoundError, OperationError, field_error
from .base import AiinfraHandler
from .paths import inside as _inside
from .paths import relative as _relative
from .paths import server_root as _root

PROMOTE_FIELDS = ("notebook", "pipeline", "name", "after", "params")
CANCEL_GRACE_S = 20.0  # the runner needs a moment to stop kernels and write run.json


def inside(root: Path, relative: Any, field: str) -> Path:
    """``relative`` resolved below ``root`` (400 naming ``field`` when it is not a path there)."""
    if not isinstance(relative, str) or not relative.strip():
        raise field_error(field, relative, "a path relative to the server's root directory")
    try:
        return _inside(root, relative)
    except AiinfraError as exc:  # _inside names the field of POST runs
        message = str(exc).split(": ", 1)[-1]
        raise AiinfraError(f"{field}: {message}", field=field) from None


def _plain(value: Any) -> Any:
    """JSON for a value read from YAML (NaN and dates as the text a user would write)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def describe_spec(root: Path, path: Path) -> dict[str, Any]:
    """The spec of ``path`` as the run dialog shows it (raises 400 for an invalid spec)."""
    from ..pipelines.dag import expand
    from ..pipelines.spec import PipelineSpec

    spec = PipelineSpec.from_file(path)
    steps = []
    for step in spec.steps.values():
        steps.append(
            {
                "name": step.name,
                "notebook": step.notebook,
                "notebook_path": _relative(root, spec.folder / step.notebook),
                "after": list(step.after),
                "params": _plain(step.params),
                "grid": {k: _plain(list(v)) for k, v in step.grid.items()},
                "products": list(step.products),
                "kernel": step.kernel,
                "timeout": step.timeout,
                "retries": step.retries,
            }
        )
    nodes = [
        {"name": name, "step": node.base, "upstream": list(node.upstream)}
        for name, node in expand(spec).items()
    ]
    return {
        "path": _relative(root, path),
        "name": spec.name,
        "folder": _relative(root, spec.folder),
        "steps": steps,
        "nodes": nodes,
    }


class PipelineSpecHandler(AiinfraHandler):
    @web.authenticated
    async def get(self) -> None:
        relative = self.get_query_argument("path", None)
        root = _root(self)
        path = inside(root, relative, "path")
        if not path.is_file():
            raise NotFoundError(f"path: no file {relative!r}", field="path")
        self.reply(await self.call(describe_spec, root, path))


def _after(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [a.strip() for a in value.split(",") if a.strip()]
    if isinstance(value, list) and all(isinstance(a, str) and a for a in value):
        return value
    raise field_error("after", value, "a list of step names (or one comma-separated string)")


class PromoteHandler(AiinfraHandler):
    """``%aiinfra promote`` for a notebook named by its path below the server's root."""

    @web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        only_fields(body, PROMOTE_FIELDS)
        root = _root(self)
        notebook = inside(root, body.get("notebook"), "notebook")
        if notebook.suffix != ".ipynb" or not notebook.is_file():
            raise NotFoundError(f"notebook: no notebook {body.get('notebook')!r}", field="notebook")
        pipeline = body.get("pipeline")
        pipeline_path = inside(root, pipeline, "pipeline") if pipeline else None
        name = body.get("name") or None
        if name is not None and not isinstance(name, str):
            raise field_error("name", name, "a step name")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise field_error("params", params, "an object of parameter names to values")
        from ..pipelines.promote import promote

        done = await self.call(
            promote,
            notebook,
            pipeline=pipeline_path,
            name=name,
            after=_after(body.get("after")),
            typed=params,
        )
        self.reply(
            {
                "step": done.step,
                "pipeline": _relative(root, done.pipeline),
                "notes": done.notes,
            },
            status=201,
        )


def launch_for(launches: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any] | None:
    """The launch that is (or produced) ``run_id``: a launch id or the runner's run id."""
    if run_id in launches:
        return launches[run_id]
    return next((x for x in launches.values() if launch_run_id(x) == run_id), None)


def launch_run_id(launch: dict[str, Any]) -> str | None:
    """The runner's run id, once the launched process has written it."""
    if not launch.get("run_id"):
        try:
            launch["run_id"] = Path(launch["run_id_file"]).read_text().strip() or None
        except (KeyError, OSError):
            return None
    return launch.get("run_id")


def cancel(launch: dict[str, Any], grace: float = CANCEL_GRACE_S) -> dict[str, Any]:
    """End a launched run: SIGINT, then SIGTERM, then SIGKILL (blocking; run in a thread)."""
    proc: subprocess.Popen = launch["process"]
    if proc.poll() is not None:
        raise OperationError(
            f"run {launch_run_id(launch) or launch['launch']} already ended "
            f"(exit code {proc.returncode})"
        )
    steps = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        # The process only: its kernels belong to it and are stopped by its handler.
        proc.send_signal(sig)
        steps.append(sig.name)
        try:
            proc.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        proc.kill()
        proc.wait()
        steps.append("SIGKILL")
    launch["cancelled"] = True
    return {
        "launch": launch["launch"],
        "run_id": launch_run_id(launch),
        "status": "cancelled",
        "signals": steps,
        "exit_code": proc.returncode,
    }


def runs_handlers() -> list[tuple[str, type]]:
    return [
        (r"aiinfra/api/pipelines/spec", PipelineSpecHandler),
        (r"aiinfra/api/pipelines/promote", PromoteHandler),
    ]
