"""``aiinfra/api/events``: one authenticated WebSocket that pushes what changed.

A single :class:`ChangeFeed` per server watches the cluster registry (a cheap
``stat`` of its files every ``WATCH_INTERVAL_S``) and, when anything changed or
``REFRESH_S`` passed, lists the clusters (schedulers probed concurrently, off the
event loop) and the pipeline runs. Only when the serialised result differs from
the last one is a message sent, to every open socket:

``{"type": "clusters", "clusters": [...]}``, ``{"type": "runs", "runs": [...]}``,
``{"type": "metrics", "metrics": {...}}`` (the GPU sampler's latest sample).

Events are sent once, to the sockets open at the time: ``{"type": "run-ended",
"run": {run_id, pipeline, status, folder, failed_steps, duration, trigger, text}}``
when a run seen running (or one new since the feed started) has ended, whoever
started it; the lab shows it as a notification linking to the run view.

A cluster started from a cell reaches an open sidebar within about
``WATCH_INTERVAL_S`` plus one listing; the sidebar polls only while this socket
is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from tornado import websocket

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25
REFRESH_S = 5.0  # worker counts change without a registry write: list this often anyway
METRICS_S = 1.0  # the sampler takes one sample a second: charts move as it does
RUNS_S = 2.0  # run records change as steps finish; a bounded walk of the server's root


def registry_stamp(root: Any) -> tuple:
    """What changes whenever a record is written, replaced or removed (names, mtimes, sizes)."""
    stamp = []
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    with contextlib.suppress(OSError):
                        info = entry.stat()
                        stamp.append((entry.name, info.st_mtime_ns, info.st_size))
    except OSError:
        return ()
    return tuple(sorted(stamp))


class RunEnds:
    """Which runs ended between two listings: each is told once."""

    def __init__(self, since: float) -> None:
        self.since = since  # a run new to the feed is told only if it ended after this
        self.statuses: dict[str, Any] | None = None  # None until the first listing

    def update(self, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from ..pipelines.notify import message

        ended = []
        if self.statuses is not None:
            for run in runs:
                status = run.get("status")
                if status in (None, "running"):
                    continue
                before = self.statuses.get(run.get("run_id"), "new")
                end = run.get("end") if isinstance(run.get("end"), (int, float)) else 0
                if before == "running" or (before == "new" and end >= self.since):
                    event = {k: v for k, v in message(run, None).items() if k != "report"}
                    ended.append({**event, "folder": run.get("folder")})
        self.statuses = {r.get("run_id"): r.get("status") for r in runs}
        return ended


class ChangeFeed:
    """Watches the registry, runs and metrics for all sockets of one server."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.sockets: set[EventsHandler] = set()
        self._last: dict[str, str] = {}
        self._task: asyncio.Task | None = None
        self._kick = asyncio.Event()
        self.root_dir: Any = None  # the server's root, from the first socket's settings
        self.ends = RunEnds(time.time())

    def attach(self, socket: EventsHandler) -> None:
        self.sockets.add(socket)
        for message in self._last.values():  # a new socket starts from the current state
            socket.send(message)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self.kick()

    def detach(self, socket: EventsHandler) -> None:
        self.sockets.discard(socket)

    def kick(self) -> None:
        """Look now (after a change made through this server's REST API)."""
        self._kick.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stamp: tuple | None = None
        listed_at = metrics_at = runs_at = -1e9
        while self.sockets:
            now = loop.time()
            root = await loop.run_in_executor(self.state.executor, _registry_root)
            current = await loop.run_in_executor(self.state.executor, registry_stamp, root)
            if current != stamp or now - listed_at >= REFRESH_S or self._kick.is_set():
                self._kick.clear()
                stamp, listed_at = current, now
                await self._publish("clusters", self._clusters)
            if now - runs_at >= RUNS_S:
                runs_at = now
                runs = await self._publish("runs", self._runs)
                for event in self.ends.update(runs or []):
                    self._send(json.dumps({"type": "run-ended", "run": event}, default=str))
            if now - metrics_at >= METRICS_S:
                metrics_at = now
                await self._publish("metrics", self.state.sampler.latest)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._kick.wait(), WATCH_INTERVAL_S)

    async def _publish(self, kind: str, fetch: Any) -> Any:
        """Fetch ``kind`` and send it if it changed; the value fetched (None on failure)."""
        loop = asyncio.get_running_loop()
        try:
            value = await loop.run_in_executor(self.state.executor, fetch)
        except Exception:  # one failing source must not stop the others
            logger.warning("aiinfra events: %s failed", kind, exc_info=True)
            return None
        message = json.dumps({"type": kind, kind: value}, default=str, sort_keys=True)
        if self._last.get(kind) != message:
            self._last[kind] = message
            self._send(message)
        return value

    def _send(self, message: str) -> None:
        for socket in list(self.sockets):
            socket.send(message)

    def _clusters(self) -> list[dict[str, Any]]:
        from ..clusters.manager import ClusterManager

        return ClusterManager().list_clusters().to_dict()

    def _runs(self) -> list[dict[str, Any]]:
        from pathlib import Path

        from .pipelines import _read_runs

        if self.root_dir is None:
            return []
        return _read_runs(self.root_dir, [Path(x["dir"]) for x in self.state.launches.values()])


def _registry_root() -> Any:
    from ..clusters.registry import registry_dir

    return registry_dir()


class EventsHandler(JupyterHandler, websocket.WebSocketHandler):
    """The push socket; authenticated like every Jupyter WebSocket."""

    @property
    def feed(self) -> ChangeFeed:
        state = self.settings["aiinfra_state"]
        if getattr(state, "feed", None) is None:
            state.feed = ChangeFeed(state)
        return state.feed

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await websocket.WebSocketHandler.get(self, *args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        from pathlib import Path

        feed = self.feed
        if feed.root_dir is None:
            feed.root_dir = Path(self.settings.get("server_root_dir") or os.getcwd()).resolve()
        feed.attach(self)

    def send(self, message: str) -> None:
        with contextlib.suppress(websocket.WebSocketClosedError):
            self.write_message(message)

    def on_message(self, message: str | bytes) -> None:
        pass  # the client only listens

    def on_close(self) -> None:
        self.feed.detach(self)


def push_handlers() -> list[tuple[str, type]]:
    return [(r"aiinfra/api/events", EventsHandler)]
