"""REST handlers: devices, clusters, pipeline runs, GPU metrics (routes in ``api_handlers``).

Each verb reads its input, calls one core function and writes JSON; the field
names are the CLI's option names, so a body is the same dict a ClusterSpec is
built from at every door.
"""

from __future__ import annotations

from typing import Any

from tornado import web

from ..checks import as_int
from ..clusters.spec import MAX_WORKERS
from ..errors import AiinfraError
from .base import AiinfraHandler, RequestError
from .launchlog import launch_log_handlers
from .metrics import metrics_handlers
from .pipelines import PipelineRunHandler, PipelineRunsHandler
from .plots import plots_handlers
from .push import push_handlers
from .runs import runs_handlers
from .schedules import schedule_handlers

PATCH_FIELDS = ("workers", "adapt")


class DevicesHandler(AiinfraHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply(await self.state.inventory.get())


class GpuMetricsHandler(AiinfraHandler):
    @web.authenticated
    def get(self) -> None:
        # latest() only copies the last sample under a lock: safe on the event loop.
        self.reply(self.state.sampler.latest())


class BackendsHandler(AiinfraHandler):
    @web.authenticated
    async def get(self) -> None:
        from ..clusters.backends import describe_backends

        # Probing usability (NVML, imports) blocks: off the event loop.
        backends = await self.call(describe_backends)
        self.reply({"backends": backends, "auto": await self.call(_auto_choice)})


class ClustersHandler(AiinfraHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply({"clusters": await self.state.clusters.get()})

    @web.authenticated
    async def post(self) -> None:
        from ..clusters.manager import ClusterManager
        from ..clusters.spec import ClusterSpec

        body = self.json_body()
        if not body:
            raise RequestError(
                400, "body: empty; allowed: a JSON object with at least a name", "body"
            )
        spec = ClusterSpec.from_options(body)  # 400 naming the field
        # Bounded and on its own pool: 429 beyond the bound, reads never wait behind it.
        info, notes = await self.state.start_cluster(
            ClusterManager().start_detached,
            spec,
            owner_kind="server",
            owner_pid=self.state.owner_pid,
        )
        self.state.started_clusters.add(info.name)
        self.state.clusters.invalidate()
        _kick(self.state)
        self.reply({**info.to_dict(), "notes": notes}, status=201)


class ClusterHandler(AiinfraHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        from ..clusters.manager import ClusterManager

        info = await self.call(ClusterManager().status, name)
        self.reply(info.to_dict())

    @web.authenticated
    async def patch(self, name: str) -> None:
        from ..clusters.manager import ClusterManager
        from ..clusters.spec import parse_adapt

        body = self.json_body()
        unknown = [key for key in body if key not in PATCH_FIELDS]
        if unknown or not body:
            field = unknown[0] if unknown else "body"
            raise RequestError(
                400,
                f"{field}: {'unknown field' if unknown else 'empty'}; "
                f"allowed: {' or '.join(PATCH_FIELDS)}",
                field,
            )
        if "workers" in body and "adapt" in body:
            raise RequestError(400, "adapt: give either workers or adapt, not both", "adapt")
        if "workers" in body:
            workers = _workers(body["workers"])
            info = await self.call(ClusterManager().scale, name, workers)
        else:
            minimum, maximum = parse_adapt(body["adapt"])
            info = await self.call(ClusterManager().adapt, name, minimum, maximum)
        self.state.clusters.invalidate()
        _kick(self.state)
        self.reply(info.to_dict())

    @web.authenticated
    async def delete(self, name: str) -> None:
        from ..clusters.manager import ClusterManager

        note = await self.call(ClusterManager().stop, name)
        self.state.started_clusters.discard(name)
        self.state.forget_target(name)
        self.state.clusters.invalidate()
        _kick(self.state)
        self.reply({"name": name, "status": "stopped", "message": note})


def _auto_choice() -> str | None:
    """The backend ``auto`` starts here (the dialog shows its defaults); None if none can."""
    from ..clusters.manager import resolve_backend
    from ..clusters.spec import ClusterSpec

    try:
        return resolve_backend(ClusterSpec.from_options({"backend": "auto"}))[0].backend
    except AiinfraError:
        return None


def _kick(state: Any) -> None:
    """Tell the push channel to look now: this server just changed a cluster."""
    feed = getattr(state, "feed", None)
    if feed is not None:
        feed.kick()


def _workers(value: Any) -> int:
    if isinstance(value, str):  # a JSON body gives numbers as numbers
        raise AiinfraError(f"workers: got {value!r}; allowed: an integer >= 0", field="workers")
    return as_int("workers", value, minimum=0, maximum=MAX_WORKERS)


def api_handlers() -> list[tuple[str, type, dict[str, Any]] | tuple[str, type]]:
    """URL patterns below base_url; the extension app prepends base_url."""
    name = r"(?P<name>[^/]+)"
    return [
        (r"aiinfra/api/devices", DevicesHandler),
        (r"aiinfra/api/backends", BackendsHandler),
        (r"aiinfra/api/metrics/gpu", GpuMetricsHandler),
        (r"aiinfra/api/clusters", ClustersHandler),
        (rf"aiinfra/api/clusters/{name}", ClusterHandler),
        *metrics_handlers(),
        *plots_handlers(),
        (r"aiinfra/api/pipelines/runs", PipelineRunsHandler),
        (r"aiinfra/api/pipelines/runs/(?P<run_id>[^/]+)", PipelineRunHandler),
        *runs_handlers(),
        *launch_log_handlers(),
        *push_handlers(),
        *schedule_handlers(),
    ]
