"""``GET aiinfra/api/pipelines/launches/{launch}/log``: the log of a run this server launched.

A launch whose run never started (a bad spec found late, a missing kernel) has
nothing but its log to say why. The lab links to it instead of printing a path
on the server's disk. Only a launch this server started is served, by its id
(or its run's id), and only its own log file in the launches' private folder;
no path ever comes from the request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tornado import web

from ..errors import NotFoundError
from .base import AiinfraHandler

MAX_LOG = 256 * 1024  # bytes of a log's end that are served: the error is at the end


def read_tail(path: Path, limit: int = MAX_LOG) -> tuple[str, bool]:
    """The last ``limit`` bytes of ``path`` as text, and whether earlier bytes were left out.

    Raises:
        OSError: the file cannot be opened (gone, or a link: it is never followed).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as log:
        size = os.fstat(log.fileno()).st_size
        truncated = size > limit
        if truncated:
            log.seek(size - limit)
        data = log.read(limit)
    return data.decode("utf-8", "replace"), truncated


def launch_log(launches: dict[str, dict[str, Any]], folder: Path, key: str) -> dict[str, Any]:
    """The log of launch ``key`` (a launch id or its run's id), read from ``folder`` only.

    Raises:
        NotFoundError: no such launch here, or its log is gone or not in ``folder``.
    """
    from .runs import launch_for

    launch = launch_for(launches, key)
    if launch is None or not launch.get("log"):
        raise NotFoundError(f"launch: no run launched by this server as {key!r}", field="launch")
    path = Path(launch["log"])
    if path.parent.resolve() != folder.resolve():
        raise NotFoundError(f"launch: the log of {key!r} is not in its folder", field="launch")
    try:
        text, truncated = read_tail(path)
    except OSError as exc:
        raise NotFoundError(
            f"launch: the log of {key!r} cannot be read ({exc.strerror or exc})", field="launch"
        ) from None
    return {"launch": launch["launch"], "text": text, "truncated": truncated}


class LaunchLogHandler(AiinfraHandler):
    @web.authenticated
    async def get(self, launch: str) -> None:
        folder = self.state.home() / "pipelines"  # where launch_pipeline writes every log
        self.reply(await self.call(launch_log, self.state.launches, folder, launch))


def launch_log_handlers() -> list[tuple[str, type]]:
    return [(r"aiinfra/api/pipelines/launches/(?P<launch>[A-Za-z0-9_.-]+)/log", LaunchLogHandler)]
