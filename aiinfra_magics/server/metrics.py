"""REST: a cluster's per-host series from its workers' sampler (through its scheduler)."""

from __future__ import annotations

from tornado import web

from .base import AiinfraHandler


class ClusterMetricsHandler(AiinfraHandler):
    """``GET aiinfra/api/clusters/{name}/metrics?since=T``: ``hosts`` with their ``samples``
    after T (a Unix time; the reply's ``as_of`` is the next request's T)."""

    @web.authenticated
    async def get(self, name: str) -> None:
        from ..metrics.series import cluster_metrics

        since = self.get_query_argument("since", None)
        self.reply(await self.call(cluster_metrics, name, since))


def metrics_handlers() -> list[tuple[str, type]]:
    return [(r"aiinfra/api/clusters/(?P<name>[^/]+)/metrics", ClusterMetricsHandler)]
