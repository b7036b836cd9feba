"""Schedules over REST: ``aiinfra/api/schedules`` (routes in ``schedule_handlers``).

Thin over ``pipelines/schedules.py``, the core the CLI calls too: the same checks, the
same views. ``path`` is relative to the server's root and may not leave it; a
pipeline's own paths must stay inside the root as for a run started here; ``params``
are typed JSON values (as ``POST aiinfra/api/pipelines/runs`` takes them), never text
pasted into a notebook. Parameter files and raw text options are the CLI's only: a
request names no file outside the root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tornado import web

from ..checks import as_name, only_fields
from ..errors import AiinfraError
from ..pipelines.schedule_spec import BODY_FIELDS
from .base import AiinfraHandler
from .paths import inside
from .paths import server_root as _root

ACTIONS = ("pause", "resume", "run")


def _home() -> Path:
    from ..paths import aiinfra_home

    return aiinfra_home()


def create(root: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Check a request's schedule against the root, then add it (the core checks the rest).

    Raises:
        InputError: naming the field (``path`` outside the root included); nothing stored.
    """
    from ..pipelines import schedules
    from .pipelines import _params, check_spec_paths

    only_fields(body, BODY_FIELDS)
    path = body.get("path")
    if not isinstance(path, str) or not path.strip():
        raise AiinfraError(
            f"path: got {path!r}; allowed: the path of a pipeline.yaml or a notebook", field="path"
        )
    try:
        resolved = inside(root, path)
    except AiinfraError as exc:  # the shared check names the runs' field
        raise AiinfraError(str(exc).replace("pipeline:", "path:", 1), field="path") from None
    options = {k: v for k, v in body.items() if k != "params"}
    options["path"] = str(resolved)
    try:
        options["values"] = _params(body.get("params") or {})
    except AiinfraError as exc:
        raise AiinfraError(str(exc), field="params") from None
    if resolved.suffix.lower() in (".yaml", ".yml") and resolved.is_file():
        from ..pipelines.spec import PipelineSpec

        check_spec_paths(root, PipelineSpec.from_file(resolved))
    return schedules.add(options, home=_home())


class SchedulesHandler(AiinfraHandler):
    @web.authenticated
    async def get(self) -> None:
        from ..pipelines import scheduler_service, schedules

        home = _home()
        found = await self.call(schedules.list_schedules, home)
        service = await self.call(scheduler_service.status, home)
        self.reply({"schedules": found, "service": service})

    @web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        if not body:
            raise AiinfraError(
                "body: empty; allowed: a JSON object with name, path and cron or every",
                field="body",
            )
        self.reply(await self.call(create, _root(self), body), status=201)


class ScheduleHandler(AiinfraHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        from ..pipelines import schedules

        self.reply(await self.call(schedules.get, as_name("name", name), _home()))

    @web.authenticated
    async def delete(self, name: str) -> None:
        from ..pipelines import schedules

        self.reply(await self.call(schedules.remove, as_name("name", name), _home()))


class ScheduleActionHandler(AiinfraHandler):
    @web.authenticated
    async def post(self, name: str, action: str) -> None:
        from ..pipelines import schedules

        name = as_name("name", name)
        if action not in ACTIONS:  # the route allows only these; kept for a clear message
            raise AiinfraError(
                f"action: got {action!r}; allowed: {', '.join(ACTIONS)}", field="action"
            )
        verb = {"pause": schedules.pause, "resume": schedules.resume, "run": schedules.run_now}[
            action
        ]
        result = await self.call(verb, name, _home())
        self.reply(result, status=202 if action == "run" else 200)


def schedule_handlers() -> list[tuple[str, type]]:
    """URL patterns below base_url (the extension app prepends it)."""
    name = r"(?P<name>[^/]+)"
    return [
        (r"aiinfra/api/schedules", SchedulesHandler),
        (rf"aiinfra/api/schedules/{name}", ScheduleHandler),
        (rf"aiinfra/api/schedules/{name}/(?P<action>pause|resume|run)", ScheduleActionHandler),
    ]
