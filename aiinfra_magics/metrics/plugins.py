"""Samples from every worker to its scheduler: a Dask worker plugin and a scheduler plugin.

The scheduler plugin (``MetricsPlugin``) is the one thing to install: on start it
registers the worker plugin on the scheduler, so every worker, present or
joining later (scale, adapt, a new batch job), samples its host. Install it with
``install_metrics(client)`` (any cluster a Client reaches), ``install_remote``
(a scheduler known by address only) or in ``scheduler_kwargs`` (clusters whose
scheduler runs in our process: clusters/cost.py adds it beside the cost plugin).

Each worker sends one small message a tick over its existing stream to the
scheduler (no new connection, no port): its process tree's CPU seconds and RSS
and, if it is its host's reporter, the host sample (``metrics.sample``). The
worker's own GPUs' utilisation is also integrated in the worker, for the
pipeline steps that run there (``step_gpu_mark``/``step_gpu_mean``).

The browser never talks to workers: the server asks the scheduler (``query``,
the ``aiinfra_metrics`` handler) through metrics/query.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin

from . import sample as sampling
from .store import REPORT, MetricsStore

logger = logging.getLogger(__name__)

PLUGIN_NAME = "aiinfra-metrics"
WORKER_PLUGIN = "aiinfra-metrics-worker"
SAMPLE_OP = "aiinfra_metrics_sample"  # worker -> scheduler, on the worker's stream
ROLE_OP = "aiinfra_metrics_role"  # scheduler -> worker: report its host, or stand by
QUERY_OP = "aiinfra_metrics"  # any process -> scheduler: series, latest samples, usage
DEFAULT_INTERVAL_S = 1.0
GPU_KEYS = ("GPU", "gpu", "GPUs", "gpus")  # as clusters/cost.py counts them


def _config(key: str, default: Any) -> Any:
    import dask

    return dask.config.get(key, default)


def _seconds(value: Any, default: float) -> float:
    from dask.utils import parse_timedelta

    try:
        return float(parse_timedelta(value, default="s")) if value is not None else default
    except (TypeError, ValueError):
        return default


class MetricsWorkerPlugin(WorkerPlugin):
    """Samples this worker's process tree, and its host while it is the host's reporter."""

    name = WORKER_PLUGIN
    idempotent = True

    def __init__(self, interval: float = DEFAULT_INTERVAL_S, host: str | None = None) -> None:
        self.interval = float(interval)
        self.host_label = host
        self.usage: sampling.GpuUsage | None = None
        self.reporting = True  # until the scheduler says another worker reports this host
        self.ticks = 0

    def setup(self, worker: Any) -> None:
        self.worker = worker
        # A host label from dask config (``aiinfra.metrics.host``) stands in for the machine's
        # name where several "hosts" share one machine (containers, tests).
        self.host = self.host_label or _config("aiinfra.metrics.host", None) or socket.gethostname()
        visible = sampling.cuda_visible()
        self.visible = [v.strip() for v in visible.split(",") if v.strip()] if visible else None
        resources = dict(getattr(worker.state, "total_resources", {}) or {})
        self.holds_gpus = bool(visible) or any(resources.get(k) for k in GPU_KEYS)
        worker.stream_handlers[ROLE_OP] = self._role
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aiinfra-metrics", daemon=True)
        self._thread.start()

    def teardown(self, worker: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _role(self, role: str = "", **_: Any) -> None:
        self.reporting = role == REPORT

    def _run(self) -> None:
        machine = sampling.HostSampler()
        try:
            machine.start()
            if self.holds_gpus and machine.count:
                with contextlib.suppress(Exception):  # a GPU that cannot be read: no step figures
                    self.usage = sampling.GpuUsage(
                        sampling.visible_gpus(machine.count, sampling.cuda_visible())
                    )
            due = time.monotonic()
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                due = max(due + self.interval, time.monotonic())  # a late tick is not repaid
                self._tick(machine)
        except Exception:  # never take the worker down over its metrics
            logger.warning("aiinfra metrics stopped on this worker", exc_info=True)
        finally:
            machine.close()

    def _tick(self, machine: sampling.HostSampler) -> None:
        now = time.monotonic()
        if self.usage is not None:
            self.usage.tick(now, 3 * self.interval)
        try:
            cpu, rss = sampling.process_tree(os.getpid())
        except Exception:  # noqa: BLE001 - psutil refused: the host sample still counts
            cpu, rss = None, None
        msg: dict[str, Any] = {
            "op": SAMPLE_OP,
            "host": self.host,
            "visible": self.visible,
            "process": None if cpu is None else {"cpu": cpu, "rss": rss},
        }
        if self.reporting:
            msg["sample"] = machine.sample()
        self.ticks += 1
        self.worker.loop.add_callback(self._send, msg)

    def _send(self, msg: dict[str, Any]) -> None:
        stream = getattr(self.worker, "batched_stream", None)
        if stream is None or stream.comm is None or stream.comm.closed():
            return  # not connected (yet, or any more): this tick is lost, the next one counts
        with contextlib.suppress(Exception):  # closing at this very moment
            stream.send(msg)


def _worker_gpus(scheduler: Any, worker: str) -> float:
    """GPUs a worker holds, as the cost plugin counts them (its stint), else its resource."""
    cost = getattr(scheduler, "plugins", {}).get("aiinfra-cost")
    stint = getattr(cost, "stints", {}).get(worker)
    if stint is not None:
        return float(stint.gpus)
    ws = scheduler.workers.get(worker)
    resources = getattr(ws, "resources", None) or {}
    return float(next((resources[k] for k in GPU_KEYS if k in resources), 0.0))


class MetricsPlugin(SchedulerPlugin):
    """Keeps each host's samples (bounded) and the cluster's measured use; answers queries."""

    name = PLUGIN_NAME
    idempotent = True

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL_S,
        ring_size: int | None = None,
        waste_threshold: float = 10.0,
        waste_window: float = 900.0,
        worker_plugin: bytes | None = None,
    ) -> None:
        self.interval = float(interval)
        self.store = MetricsStore(
            ring_size=ring_size or max(60, int(3600 / max(self.interval, 0.001))),
            interval=self.interval,
            waste_threshold=waste_threshold,
            waste_window=waste_window,
        )
        #: The worker plugin pickled where it was made (by value for remote schedulers).
        self.worker_plugin = worker_plugin
        self.scheduler: Any = None

    async def start(self, scheduler: Any) -> None:
        from distributed.protocol.pickle import dumps

        self.scheduler = scheduler
        scheduler.stream_handlers[SAMPLE_OP] = self.receive
        scheduler.handlers[QUERY_OP] = self.query
        plugin = self.worker_plugin or dumps(MetricsWorkerPlugin(self.interval))
        await scheduler.register_worker_plugin(None, plugin, WORKER_PLUGIN, idempotent=True)
        from tornado.ioloop import PeriodicCallback

        # Busy workers counted once a tick, whatever the number of hosts reporting.
        self._counter = PeriodicCallback(self._count_busy, self.interval * 1000)
        self._counter.start()

    async def close(self) -> None:
        counter = getattr(self, "_counter", None)
        if counter is not None:
            counter.stop()

    def _count_busy(self) -> None:
        workers = self.scheduler.workers.values()
        self.store.busy(sum(1 for ws in workers if ws.processing), len(workers))

    def receive(
        self,
        worker: str | None = None,
        host: str | None = None,
        process: dict[str, Any] | None = None,
        sample: dict[str, Any] | None = None,
        visible: list[str] | None = None,
        **_: Any,
    ) -> None:
        scheduler = self.scheduler
        ws = scheduler.workers.get(worker) if worker else None
        if ws is None or not host:
            return
        told = self.store.add(
            worker,
            str(host),
            time.time(),
            process,
            sample,
            visible,
            gpus_of=lambda w: _worker_gpus(scheduler, w),
            memory_limit_of=lambda w: int(
                getattr(scheduler.workers.get(w), "memory_limit", 0) or 0
            ),
        )
        if told:
            self._tell(worker, told)

    def remove_worker(self, scheduler: Any, worker: str, **kwargs: Any) -> None:
        successor = self.store.remove_worker(worker)
        if successor is not None:
            self._tell(successor, REPORT)

    def _tell(self, worker: str, role: str) -> None:
        stream = self.scheduler.stream_comms.get(worker)
        if stream is not None:
            with contextlib.suppress(Exception):  # a worker leaving as we speak
                stream.send({"op": ROLE_OP, "role": role})

    def query(self, since: float | None = None, latest: bool = False, **_: Any) -> dict[str, Any]:
        """The ``aiinfra_metrics`` handler: per-host series after ``since`` (or the latest)."""
        now = time.time()
        return {
            "hosts": self.store.latest() if latest else self.store.series(since),
            "interval": self.interval,
            "ring_size": self.store.ring_size,
            "as_of": now,
            "usage": self.store.usage(now),
        }


def metrics_plugin(spec: Any = None, by_value: bool = False) -> MetricsPlugin:
    """A ``MetricsPlugin`` set from dask config (``aiinfra.metrics.*``, ``aiinfra.waste.*``)
    and the cluster's spec (``waste_threshold``, ``waste_window`` override the config)."""
    from distributed.protocol.pickle import dumps

    if by_value:
        register_by_value()
    interval = _seconds(_config("aiinfra.metrics.interval", None), DEFAULT_INTERVAL_S)
    threshold = getattr(spec, "waste_threshold", None)
    window = getattr(spec, "waste_window", None)
    return MetricsPlugin(
        interval=interval,
        ring_size=_config("aiinfra.metrics.ring", None),
        waste_threshold=float(
            threshold if threshold is not None else _config("aiinfra.waste.threshold", 10.0)
        ),
        waste_window=window
        if window is not None
        else _seconds(_config("aiinfra.waste.window", None), 900.0),
        worker_plugin=dumps(MetricsWorkerPlugin(interval)),
    )


_BY_VALUE = (
    "aiinfra_magics.devices.nvml",
    "aiinfra_magics.metrics.sample",
    "aiinfra_magics.metrics.store",
    "aiinfra_magics.metrics.efficiency",
    __name__,
)


def register_by_value() -> None:
    """Pickle these modules by value, so a remote scheduler or worker needs no aiinfra."""
    import importlib

    import cloudpickle

    registered = cloudpickle.list_registry_pickle_by_value()
    for name in _BY_VALUE:
        if name not in registered:
            cloudpickle.register_pickle_by_value(
                sys.modules.get(name) or importlib.import_module(name)
            )


def install_metrics(client: Any, spec: Any = None) -> None:
    """Sample every worker of ``client``'s cluster (idempotent: once per scheduler).

    For backends that start workers through a Client (SSH, an attached scheduler).

    Raises:
        Whatever ``Client.register_plugin`` raises when the scheduler refuses plugins
        (``distributed.scheduler.pickle: false``).
    """
    client.register_plugin(metrics_plugin(spec, by_value=True), name=PLUGIN_NAME)  # idempotent


def install_remote(
    address: str, connection_args: dict[str, Any] | None = None, spec: Any = None
) -> None:
    """Install on a scheduler reached by address only (no Client needed)."""
    from distributed.protocol.pickle import dumps

    from ..clusters.rpc import scheduler_call

    scheduler_call(
        address,
        "register_scheduler_plugin",
        timeout=10,
        connection_args=connection_args,
        plugin=dumps(metrics_plugin(spec, by_value=True)),
        name=PLUGIN_NAME,
        idempotent=True,
    )


def plugin_of(scheduler: Any) -> MetricsPlugin | None:
    plugin = getattr(scheduler, "plugins", {}).get(PLUGIN_NAME)
    return plugin if plugin is not None and hasattr(plugin, "store") else None


def step_gpu_mark() -> Any:
    """Where this worker's GPU-utilisation integral stands (a step keeps it from its start)."""
    usage = _worker_usage()
    return None if usage is None else usage.mark()


def step_gpu_usage(mark: Any) -> tuple[float | None, float | None]:
    """(mean, peak) utilisation (0-1) of this worker's GPUs since ``mark``; None if not measured."""
    usage = _worker_usage()
    return (None, None) if usage is None else usage.since(mark)


def _worker_usage() -> sampling.GpuUsage | None:
    try:
        from distributed import get_worker

        plugin = get_worker().plugins.get(WORKER_PLUGIN)
    except ValueError:  # not inside a worker
        return None
    return getattr(plugin, "usage", None)
