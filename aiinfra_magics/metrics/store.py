"""The scheduler's side of the metrics: a bounded ring per host, and what the samples add up to.

Pure (no dask): the scheduler plugin (plugins.py) feeds it what the workers send
and what the scheduler knows of each worker (its GPUs, its memory limit), so
everything here is tested without a scheduler.

Memory stays flat however long a cluster lives: each host keeps at most
``ring_size`` samples (a deque), the store at most ``max_hosts`` hosts, and the
efficiency figures are running sums. Several workers on one host send one host
series: the first to send becomes the host's reporter, the others are told to
stand by (``add`` returns what to tell them) until the reporter leaves.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: What ``add`` asks the plugin to tell a worker.
STANDBY, REPORT = "standby", "report"
DEFAULT_RING = 3600  # an hour of samples at the default rate
DEFAULT_MAX_HOSTS = 4096
#: The numbers of a sample, packed in the ring as doubles (NaN for None): a sample of a host
#: with 8 GPUs takes about 1 KiB instead of about 7 KiB as dicts.
HOST_FIELDS = (
    "cpu_percent", "cpu_count", "memory_used", "memory_total",
    "net_sent", "net_recv", "disk_read", "disk_write",
)  # fmt: skip
GPU_FIELDS = (
    "utilization", "memory_used", "memory_total", "temperature", "power_watts",
    "pcie_tx", "pcie_rx", "nvlink_tx", "nvlink_rx",
)  # fmt: skip
GPU_NAMES = ("index", "uuid", "name", "error")  # kept once per host while they stay the same
MIG_FIELDS = ("index", "uuid", "memory_used", "memory_total")


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _value(x: float) -> float | int | None:
    if math.isnan(x):
        return None
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


class Packed:
    """One sample in the ring: its time, its numbers, and its GPUs' names (shared)."""

    __slots__ = ("timestamp", "numbers", "names", "mig", "has_host")

    def __init__(self, sample: dict[str, Any], previous: Packed | None) -> None:
        self.timestamp = float(sample.get("timestamp") or 0.0)
        host = sample.get("host")
        gpus = list(sample.get("gpus") or [])
        self.has_host = isinstance(host, dict)
        numbers = [_number((host or {}).get(k)) for k in HOST_FIELDS]
        for gpu in gpus:
            numbers += [_number(gpu.get(k)) for k in GPU_FIELDS]
        self.numbers = array("d", numbers)
        names = tuple(tuple(gpu.get(k) for k in GPU_NAMES) for gpu in gpus)
        self.names = previous.names if previous is not None and previous.names == names else names
        mig = tuple(
            tuple(tuple(m.get(k) for k in MIG_FIELDS) for m in gpu.get("mig") or ()) for gpu in gpus
        )
        self.mig = mig if any(mig) else None

    def unpack(self) -> dict[str, Any]:
        n = len(HOST_FIELDS)
        host = (
            {k: _value(x) for k, x in zip(HOST_FIELDS, self.numbers[:n])} if self.has_host else None
        )
        gpus = []
        for i, names in enumerate(self.names):
            start = n + i * len(GPU_FIELDS)
            gpu = {k: v for k, v in zip(GPU_NAMES, names) if k != "error" or v is not None}
            if gpu.get("error") is None:
                numbers = self.numbers[start : start + len(GPU_FIELDS)]
                gpu.update({k: _value(x) for k, x in zip(GPU_FIELDS, numbers)})
                gpu["mig"] = [dict(zip(MIG_FIELDS, m)) for m in self.mig[i]] if self.mig else []
            gpus.append(gpu)
        return {"timestamp": self.timestamp, "host": host, "gpus": gpus}


@dataclass
class HostSeries:
    ring: deque
    workers: set[str] = field(default_factory=set)
    reporter: str | None = None
    reason: str | None = None  # why the host has no GPU figures
    received: float | None = None  # scheduler time of the last sample (integration clock)
    held_gpus: float = 0.0  # GPUs the cluster's workers on this host hold, at the last sample
    utilization: float | None = None  # their mean utilisation (0-100) at the last sample

    def latest(self) -> dict[str, Any] | None:
        return self.ring[-1].unpack() if self.ring else None


def _wanted(gpu: dict[str, Any], visible: set[str] | None) -> bool:
    """Whether a sampled GPU is among those a worker sees (None: it sees them all)."""
    if visible is None:
        return True
    uuid = str(gpu.get("uuid") or "")
    return str(gpu.get("index")) in visible or any(uuid and uuid.startswith(v) for v in visible)


def mean_utilization(
    gpus: list[dict[str, Any]], visible: Iterable[set[str] | None]
) -> float | None:
    """Mean utilisation (0-100) of the GPUs the given workers see; None if none reports one."""
    sets = list(visible)
    chosen = [
        g for g in gpus if g.get("utilization") is not None and any(_wanted(g, v) for v in sets)
    ]
    return sum(float(g["utilization"]) for g in chosen) / len(chosen) if chosen else None


class MetricsStore:
    """Per-host series and the cluster's measured use; see the module docstring."""

    def __init__(
        self,
        ring_size: int = DEFAULT_RING,
        interval: float = 1.0,
        max_hosts: int = DEFAULT_MAX_HOSTS,
        waste_threshold: float = 10.0,
        waste_window: float = 900.0,
    ) -> None:
        self.ring_size = max(1, int(ring_size))
        self.interval = float(interval)
        self.max_hosts = max(1, int(max_hosts))
        self.waste_threshold = float(waste_threshold)
        self.waste_window = float(waste_window)
        self.hosts: dict[str, HostSeries] = {}
        self.worker_host: dict[str, str] = {}
        self.visible: dict[str, set[str] | None] = {}  # each worker's GPUs (None: all)
        self._cpu_last: dict[str, float] = {}
        self.cpu_seconds = 0.0  # CPU time the workers' process trees used
        self.gpu_used_seconds = 0.0  # GPU-seconds held, weighted by measured utilisation
        self.gpu_measured_seconds = 0.0  # GPU-seconds held while utilisation was measured
        self.peak_memory = 0  # the largest process-tree RSS of any worker
        self.peak_memory_limit = 0  # that worker's memory limit
        self.peak_memory_fraction: float | None = None  # the largest RSS / limit of any worker
        self.peak_busy_workers = 0
        self.peak_workers = 0
        self.low_since: float | None = None  # held GPUs under the threshold since then

    # -- what workers send ------------------------------------------------------------------

    def add(
        self,
        worker: str,
        host: str,
        now: float,
        process: dict[str, Any] | None = None,
        sample: dict[str, Any] | None = None,
        visible: list[str] | None = None,
        gpus_of: Callable[[str], float] = lambda w: 0.0,
        memory_limit_of: Callable[[str], int] = lambda w: 0,
    ) -> str | None:
        """Take one message of ``worker`` (received at scheduler time ``now``).

        Returns STANDBY when the worker sent a host sample its host already gets from
        another worker, else None.
        """
        series = self._series(host)
        series.workers.add(worker)
        self.worker_host[worker] = host
        self.visible[worker] = None if visible is None else {str(v) for v in visible}
        if process:
            self._process(worker, process, memory_limit_of(worker))
        if sample is None:
            return None
        if series.reporter not in series.workers:  # none yet, or it left
            series.reporter = worker
        if series.reporter != worker:
            return STANDBY
        self._host_sample(series, now, sample, gpus_of)
        return None

    def _series(self, host: str) -> HostSeries:
        series = self.hosts.get(host)
        if series is None:
            if len(self.hosts) >= self.max_hosts:
                self._evict()
            series = self.hosts[host] = HostSeries(ring=deque(maxlen=self.ring_size))
        return series

    def _evict(self) -> None:
        """Forget the host heard from longest ago, preferring hosts no worker is on."""
        order = sorted(
            self.hosts.items(), key=lambda kv: (bool(kv[1].workers), kv[1].received or 0.0)
        )
        del self.hosts[order[0][0]]

    def _process(self, worker: str, process: dict[str, Any], limit: int) -> None:
        cpu = float(process.get("cpu") or 0.0)
        last = self._cpu_last.get(worker)
        if last is not None:
            self.cpu_seconds += max(0.0, cpu - last)  # a tree that lost a child is not negative
        self._cpu_last[worker] = max(cpu, last or 0.0)
        rss = int(process.get("rss") or 0)
        if rss > self.peak_memory:
            self.peak_memory, self.peak_memory_limit = rss, int(limit or 0)
        if limit:
            fraction = rss / limit
            if self.peak_memory_fraction is None or fraction > self.peak_memory_fraction:
                self.peak_memory_fraction = fraction

    def _host_sample(
        self,
        series: HostSeries,
        now: float,
        sample: dict[str, Any],
        gpus_of: Callable[[str], float],
    ) -> None:
        series.reason = sample.get("reason")
        series.ring.append(Packed(sample, series.ring[-1] if series.ring else None))
        holders = [w for w in series.workers if gpus_of(w) > 0]
        held = float(sum(gpus_of(w) for w in holders))
        gpus = list(sample.get("gpus") or [])
        util = mean_utilization(gpus, (self.visible.get(w) for w in holders))
        if series.received is not None and series.held_gpus and util is not None:
            # NVML's reading covers the time since the previous one (up to a few ticks: a
            # silent gap is not measured), for the GPUs held then.
            dt = min(now - series.received, 3 * self.interval)
            if dt > 0:
                self.gpu_used_seconds += series.held_gpus * dt * util / 100.0
                self.gpu_measured_seconds += series.held_gpus * dt
        series.received, series.held_gpus, series.utilization = now, held, util
        self._watch_waste(now)

    def _watch_waste(self, now: float) -> None:
        held = sum(s.held_gpus for s in self.hosts.values() if s.utilization is not None)
        if not held:
            self.low_since = None
            return
        util = self.utilization_now()
        if util is not None and util < self.waste_threshold:
            self.low_since = self.low_since if self.low_since is not None else now
        else:
            self.low_since = None

    def utilization_now(self) -> float | None:
        """Mean utilisation (0-100) of the GPUs the cluster holds, each host weighted by them."""
        measured = [s for s in self.hosts.values() if s.utilization is not None and s.held_gpus]
        held = sum(s.held_gpus for s in measured)
        if not held:
            return None
        return sum(s.held_gpus * s.utilization for s in measured) / held  # type: ignore[operator]

    def busy(self, busy: int, workers: int) -> None:
        """How many workers run tasks now, of how many (the scheduler's count, once a tick)."""
        self.peak_busy_workers = max(self.peak_busy_workers, int(busy))
        self.peak_workers = max(self.peak_workers, int(workers))

    def remove_worker(self, worker: str) -> str | None:
        """Forget a worker; the worker of its host that should report now, if it reported."""
        host = self.worker_host.pop(worker, None)
        self.visible.pop(worker, None)
        self._cpu_last.pop(worker, None)
        series = self.hosts.get(host) if host is not None else None
        if series is None:
            return None
        series.workers.discard(worker)
        if series.reporter != worker:
            return None
        series.reporter = min(series.workers) if series.workers else None
        series.received = None  # the next reporter starts its own clock
        return series.reporter

    # -- what the doors ask -----------------------------------------------------------------

    def series(self, since: float | None = None) -> list[dict[str, Any]]:
        """Each host's samples taken after ``since`` (a Unix time; None: all kept)."""
        out = []
        for name, s in sorted(self.hosts.items()):
            samples = []
            for entry in reversed(s.ring):  # newest first: stop at the first one not wanted
                if since is not None and entry.timestamp <= since:
                    break
                samples.append(entry.unpack())
            samples.reverse()
            out.append({**self._host_info(name, s), "samples": samples})
        return out

    def latest(self) -> list[dict[str, Any]]:
        """Each host's latest sample (its ``host`` figures and ``gpus``)."""
        return [
            {**self._host_info(name, s), "latest": s.latest()}
            for name, s in sorted(self.hosts.items())
        ]

    @staticmethod
    def _host_info(name: str, s: HostSeries) -> dict[str, Any]:
        return {
            "host": name,
            "workers": len(s.workers),
            "reporter": s.reporter,
            "reason": s.reason,
            "held_gpus": s.held_gpus,
            "gpu_utilization": s.utilization,
        }

    def usage(self, now: float) -> dict[str, Any]:
        """The measured figures so far (hours), the waste clock and its warning."""
        low_for = None if self.low_since is None else max(0.0, now - self.low_since)
        return {
            "cpu_used_hours": self.cpu_seconds / 3600.0,
            "gpu_used_hours": self.gpu_used_seconds / 3600.0,
            "gpu_measured_hours": self.gpu_measured_seconds / 3600.0,
            "peak_memory": self.peak_memory,
            "peak_memory_limit": self.peak_memory_limit,
            "peak_memory_fraction": self.peak_memory_fraction,
            "peak_busy_workers": self.peak_busy_workers,
            "peak_workers": self.peak_workers,
            "gpu_utilization_now": self.utilization_now(),
            "waste": {
                "threshold": self.waste_threshold,
                "window": self.waste_window,
                "low_since": self.low_since,
                "low_for": low_for,
                "wasteful": low_for is not None and low_for >= self.waste_window,
            },
        }
