"""The aiinfra jupyter-server extension: REST API, dashboard proxy, GPU sampler."""

from __future__ import annotations

import asyncio

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Int

from .handlers import api_handlers
from .proxy import proxy_handlers
from .state import MAX_CLUSTER_STARTS, ServerState


class AiinfraServerApp(ExtensionApp):
    name = "aiinfra"
    # Loaded into jupyter lab / notebook / plain jupyter server alike.
    load_other_extensions = True

    sampler_interval = Float(
        1.0, config=True, help="Seconds between GPU samples while clients are asking."
    )

    max_cluster_starts = Int(
        MAX_CLUSTER_STARTS,
        config=True,
        help="Cluster starts in flight at once through this server; more are refused (429).",
    )

    def initialize_settings(self) -> None:
        self.state = ServerState(
            sampler_interval=self.sampler_interval, max_cluster_starts=self.max_cluster_starts
        )
        self.settings["aiinfra_state"] = self.state
        from ..pipelines.scheduler_revive import revive_quietly

        revive_quietly()  # schedules fire again if their service was killed

    def initialize_handlers(self) -> None:
        self.handlers.extend(api_handlers())
        self.handlers.extend(proxy_handlers())

    async def stop_extension(self) -> None:
        """Close the clusters this server started (others belong to kernels or the CLI)."""
        from ..clusters.manager import ClusterManager
        from ..errors import AiinfraError, OperationError

        loop = asyncio.get_running_loop()
        for name in sorted(self.state.started_clusters):
            try:
                await loop.run_in_executor(self.state.executor, ClusterManager().stop, name)
            except (AiinfraError, OperationError) as exc:  # already gone, or stuck
                self.log.info("aiinfra: cluster %s: %s", name, exc)
        self.state.started_clusters.clear()
        self.state.close()
