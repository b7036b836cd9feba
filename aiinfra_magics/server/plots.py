"""``GET aiinfra/api/clusters/{name}/plots``: the individual plots a cluster's dashboard serves.

As dask-labextension does, the list is the scheduler's own ``individual-plots.json``,
fetched by the server from the dashboard of a registered cluster (the proxy's one
target rule: ``ServerState.dashboard_target``), never from an address a request names.
With it comes how many of the cluster's workers report a GPU (its ``json/identity.json``):
Dask lists its GPU plots on every scheduler, and the sidebar offers them only where a
worker has a GPU to plot.
"""

from __future__ import annotations

import json
from typing import Any

from tornado import httpclient, web

from .base import AiinfraHandler
from .proxy import TIMEOUT_S, check_name

# The most plots a scheduler may list (Dask serves about 35): a bound on a hostile answer.
MAX_PLOTS = 500


def served_plots(data: Any) -> dict[str, str]:
    """``individual-plots.json`` ({title: "/path"}) kept to titles and relative paths."""
    if not isinstance(data, dict):
        return {}
    plots = {}
    for title, path in list(data.items())[:MAX_PLOTS]:
        if isinstance(title, str) and isinstance(path, str) and path.startswith("/"):
            if ".." not in path and "//" not in path and "?" not in path:
                plots[title] = path
    return plots


def gpu_workers(identity: Any) -> tuple[int, int]:
    """(workers, workers with a GPU) in a scheduler's ``identity``.

    distributed adds a ``gpu`` entry to a worker's startup information and metrics
    only where NVML sees a device (``distributed.worker.add_gpu_metrics``).
    """
    workers = identity.get("workers") if isinstance(identity, dict) else None
    if not isinstance(workers, dict):
        return 0, 0
    with_gpu = 0
    for worker in workers.values():
        if not isinstance(worker, dict):
            continue
        metrics = worker.get("metrics") if isinstance(worker.get("metrics"), dict) else {}
        if worker.get("gpu") or metrics.get("gpu") or any(k.startswith("gpu") for k in metrics):
            with_gpu += 1
    return len(workers), with_gpu


class DashboardPlotsHandler(AiinfraHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        check_name(name)
        base = await self.call(self.state.dashboard_target, name)  # 404: not registered
        plots = served_plots(await self._json(name, f"{base}/individual-plots.json"))
        workers, with_gpu = gpu_workers(await self._json(name, f"{base}/json/identity.json"))
        self.reply({"name": name, "plots": plots, "workers": workers, "gpu_workers": with_gpu})

    async def _json(self, name: str, url: str) -> Any:
        request = httpclient.HTTPRequest(url, request_timeout=TIMEOUT_S, follow_redirects=False)
        try:
            response = await httpclient.AsyncHTTPClient().fetch(request)
            return json.loads(response.body)
        except (OSError, httpclient.HTTPClientError, ValueError) as exc:
            raise web.HTTPError(
                502, f"dashboard of {name!r} did not list its plots: {exc}"
            ) from None


def plots_handlers() -> list[tuple[str, type]]:
    return [(r"aiinfra/api/clusters/(?P<name>[^/]+)/plots", DashboardPlotsHandler)]
