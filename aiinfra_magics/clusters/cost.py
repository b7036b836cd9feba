"""What a cluster has used: a scheduler plugin that counts worker-, core-, GPU- and memory-hours.

The plugin lives on the cluster's scheduler (in the owner's process for local and
cuda clusters, on the gateway's scheduler for gateway clusters: it pickles by
value, so the remote image needs no aiinfra). It keeps one interval per worker
from ``add_worker`` to ``remove_worker`` with that worker's threads, memory limit
and GPUs, and answers the ``aiinfra_cost`` scheduler message from any process.
When the scheduler closes, open intervals end at that moment and the plugin
records why (an idle timeout, or a plain close).
(history.py keeps the figures of ended clusters.)
"""

from __future__ import annotations

import logging
from time import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from ..metrics import plugins as metrics
from ..metrics.efficiency import with_efficiency
from . import stint as stint_module
from .history import FIGURES
from .rpc import COST_OP  # one name for the handler and its callers
from .stint import GB, Stint, worker_gpus

logger = logging.getLogger(__name__)

PLUGIN_NAME = "aiinfra-cost"


class CostPlugin(SchedulerPlugin):
    """Counts resource-hours on the scheduler; ``report()`` is the ``aiinfra_cost`` handler."""

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self, idle_timeout: float | None = None) -> None:
        #: Set on schedulers we cannot configure otherwise (a gateway without that option).
        self.idle_timeout = idle_timeout
        self.scheduler: Any = None
        self.started = time()
        self.stints: dict[str, Stint] = {}
        self.done = dict.fromkeys(FIGURES, 0.0)
        self.ended: float | None = None
        self.end_reason: str | None = None

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.started = time()
        arm_idle(scheduler, self.idle_timeout)  # distributed's own check_idle acts on it
        # Installed late (e.g. through a Client): workers already there count from now.
        for address in scheduler.workers:
            self._join(address, self.started)
        scheduler.handlers[COST_OP] = self.report

    def add_worker(self, scheduler: Any, worker: str) -> None:
        self._join(worker, time())

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        self._leave(worker, time())

    def _join(self, address: str, when: float) -> None:
        ws = self.scheduler.workers.get(address) if self.scheduler is not None else None
        if ws is None or address in self.stints:
            return
        self.stints[address] = Stint(
            joined=when,
            threads=int(ws.nthreads or 0),
            memory_bytes=int(ws.memory_limit or 0),
            gpus=worker_gpus(ws),
        )

    def _leave(self, address: str, when: float) -> None:
        stint = self.stints.pop(address, None)
        if stint is not None:
            for key, value in stint.figures(when).items():
                self.done[key] += value

    async def before_close(self) -> None:
        self.end_reason = close_reason(self.scheduler)

    async def close(self) -> None:
        now = time()
        for address in list(self.stints):
            self._leave(address, now)
        self.ended = now
        if self.end_reason is None:
            self.end_reason = "closed"

    def report(self, **_: Any) -> dict[str, Any]:
        """Figures so far, the rates now, and the idle clock (a scheduler handler: JSON only)."""
        now = self.ended or time()
        figures = dict(self.done)
        for stint in self.stints.values():
            for key, value in stint.figures(now).items():
                figures[key] += value
        scheduler = self.scheduler
        idle_since = getattr(scheduler, "idle_since", None)
        idle_timeout = getattr(scheduler, "idle_timeout", None)
        # What was used beside what was held, where the metrics plugin samples the workers.
        measured = metrics.plugin_of(scheduler)
        usage = measured.store.usage(now) if measured is not None else None
        return with_efficiency({
            **figures,
            "as_of": now,
            "since": self.started,
            "ended": self.ended,
            "end_reason": self.end_reason,
            "now": {
                "workers": len(self.stints),
                "cores": sum(s.threads for s in self.stints.values()),
                "gpus": sum(s.gpus for s in self.stints.values()),
                "memory_gb": sum(s.memory_bytes for s in self.stints.values()) / GB,
            },
            "idle_since": idle_since,
            "idle_timeout": idle_timeout,
        }, usage)  # fmt: skip


def close_reason(scheduler: Any) -> str:
    """Why a scheduler is closing, as far as it can be told from its state."""
    timeout = getattr(scheduler, "idle_timeout", None)
    since = getattr(scheduler, "idle_since", None)
    if timeout and since and time() >= since + timeout:
        return f"idle for {timeout:g}s (idle timeout)"
    return "closed"


def plugin_of(scheduler: Any) -> CostPlugin | None:
    plugin = getattr(scheduler, "plugins", {}).get(PLUGIN_NAME)
    return plugin if isinstance(plugin, CostPlugin) else None


def register_by_value() -> None:
    """Pickle this module by value, so a remote scheduler without aiinfra can run the plugin."""
    import sys

    import cloudpickle

    metrics.register_by_value()  # the report merges the metrics' figures
    for module in (stint_module, sys.modules[__name__]):  # Stint is the plugin's own arithmetic
        if module.__name__ not in cloudpickle.list_registry_pickle_by_value():
            cloudpickle.register_pickle_by_value(module)


def install(client: Any, spec: Any = None) -> None:
    """Add the plugin (and the workers' metrics) to the scheduler of ``client`` (any cluster)."""
    register_by_value()
    client.register_plugin(CostPlugin(), name=PLUGIN_NAME)  # idempotent: a class attribute
    metrics.install_metrics(client, spec)


def scheduler_kwargs(spec: Any = None) -> dict[str, Any]:
    """``scheduler_kwargs`` for LocalCluster-like classes: the cost and metrics plugins from
    the first worker on (``spec``: the cluster's waste settings)."""
    return {"plugins": [CostPlugin(), metrics.metrics_plugin(spec)]}


def arm_idle(scheduler: Any, timeout: float | None) -> None:
    """Start distributed's own idle clock now, on the scheduler's loop.

    Not at scheduler start: its clock runs from then, and on a busy machine starting
    the workers can take longer than a short timeout.
    """
    if timeout:
        scheduler.idle_since = None  # first, so the old clock never meets the new timeout
        scheduler.idle_timeout = timeout


def install_remote(
    address: str,
    connection_args: dict[str, Any] | None = None,
    idle_timeout: float | None = None,
    spec: Any = None,
) -> None:
    """Add the plugin and the workers' metrics to a scheduler reached by address only."""
    from distributed.protocol.pickle import dumps

    from .rpc import scheduler_call

    register_by_value()
    scheduler_call(
        address,
        "register_scheduler_plugin",
        timeout=10,
        connection_args=connection_args,
        plugin=dumps(CostPlugin(idle_timeout)),
        name=PLUGIN_NAME,
        idempotent=True,
    )
    try:
        metrics.install_remote(address, connection_args, spec)
    except Exception:  # the cost figures stand without the measured ones
        logger.warning("could not add the metrics plugin at %s", address, exc_info=True)
