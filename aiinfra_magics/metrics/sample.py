"""The one sampler of a machine: the host (psutil) and each GPU NVML sees.

The server's charts (server/sampler.py) and every Dask worker (plugins.py) take
their samples here, so a chart of this machine and a chart of a cluster's host
read the same figures the same way.

Import-light on purpose: psutil only; pynvml is imported when NVML is first
started, and every NVMLError is tolerated per metric, so one unsupported counter
(common on MIG slices and consumer cards) blanks that field only. Nothing here
imports the rest of aiinfra except the two NVML helpers, so the module can be
pickled by value to a remote worker that has no aiinfra installed.

Rates (PCIe, NVLink, network, disk) are bytes/s: PCIe as NVML reports it
(KB/s over its own 20 ms window), the others from the change of a cumulative
counter since the previous sample (None on the first one). ``cpu_percent`` is
the whole machine's busy share (0-100), from the change of ``psutil.cpu_times``
since the previous sample: no state shared with other ``psutil.cpu_percent``
callers in the process.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

from ..devices.nvml import nvml_call as _metric
from ..devices.nvml import text as _text

# NVML's failures in words a user can act on (the class name is all NVML gives).
_WHY = {
    "NVMLError_LibraryNotFound": "no NVIDIA driver is installed (its NVML library was not found)",
    "NVMLError_DriverNotLoaded": "the NVIDIA driver is installed but not loaded",
    "NVMLError_NoPermission": "this user may not read the GPUs",
    "NVMLError_Uninitialized": "NVML could not start",
    "ImportError": "nvidia-ml-py is not installed where the Jupyter server runs",
    "ModuleNotFoundError": "nvidia-ml-py is not installed where the Jupyter server runs",
}


def no_gpu_reason(exc: BaseException | None) -> str:
    """Why there are no GPU figures, in one sentence (no raw NVML error text)."""
    why = "NVML found no GPU" if exc is None else _WHY.get(type(exc).__name__)
    if why is None:
        why = "the GPUs could not be read"
    return f"No GPU on this machine to chart: {why}; the host charts still work."


def _rate(new: float | None, old: float | None, seconds: float) -> float | None:
    if new is None or old is None or seconds <= 0:
        return None
    return max(0.0, (new - old) / seconds)


class Counters:
    """The previous value of each cumulative counter, to turn counters into rates."""

    def __init__(self) -> None:
        self._last: dict[Any, tuple[float, float]] = {}

    def rate(self, key: Any, value: float | None, now: float) -> float | None:
        if value is None:
            return None
        previous = self._last.get(key)
        self._last[key] = (now, value)
        return None if previous is None else _rate(value, previous[1], now - previous[0])


def _nvlink_counters(pynvml: Any, handle: Any) -> tuple[float | None, float | None]:
    """Cumulative NVLink data TX/RX in bytes over all links, or None where not reported."""
    fields = [
        pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX,
        pynvml.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX,
    ]
    values = _metric(pynvml.nvmlDeviceGetFieldValues, handle, fields)
    if not values:
        return None, None
    out = []
    for value in values:
        ok = getattr(value, "nvmlReturn", 1) == 0
        out.append(float(value.value.ullVal) * 1024 if ok else None)  # KiB
    return out[0], out[1]


def _mig_memory(pynvml: Any, handle: Any) -> list[dict[str, Any]]:
    """Each MIG slice of a board with its memory (empty slots skipped; none without MIG)."""
    slices = []
    for slot in range(_metric(pynvml.nvmlDeviceGetMaxMigDeviceCount, handle) or 0):
        mig = _metric(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, slot)
        if mig is None:  # an empty slot: no instance was created there
            continue
        mem = _metric(pynvml.nvmlDeviceGetMemoryInfo, mig)
        slices.append({
            "index": slot,
            "uuid": _text(_metric(pynvml.nvmlDeviceGetUUID, mig)),
            "memory_used": None if mem is None else int(mem.used),
            "memory_total": None if mem is None else int(mem.total),
        })  # fmt: skip
    return slices


def sample_device(index: int, counters: Counters, now: float) -> dict[str, Any]:
    """One GPU's figures (NVML must be started); None for each figure it does not report."""
    import pynvml

    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    util = _metric(pynvml.nvmlDeviceGetUtilizationRates, handle)
    mem = _metric(pynvml.nvmlDeviceGetMemoryInfo, handle)
    power = _metric(pynvml.nvmlDeviceGetPowerUsage, handle)
    tx = _metric(pynvml.nvmlDeviceGetPcieThroughput, handle, pynvml.NVML_PCIE_UTIL_TX_BYTES)
    rx = _metric(pynvml.nvmlDeviceGetPcieThroughput, handle, pynvml.NVML_PCIE_UTIL_RX_BYTES)
    link_tx, link_rx = _nvlink_counters(pynvml, handle)
    return {
        "index": index,
        "uuid": _text(_metric(pynvml.nvmlDeviceGetUUID, handle)),
        "name": _text(_metric(pynvml.nvmlDeviceGetName, handle)),
        "utilization": None if util is None else util.gpu,
        "memory_used": None if mem is None else int(mem.used),
        "memory_total": None if mem is None else int(mem.total),
        "temperature": _metric(
            pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU
        ),
        "power_watts": None if power is None else power / 1000.0,
        "pcie_tx": None if tx is None else tx * 1024.0,  # NVML: KB/s
        "pcie_rx": None if rx is None else rx * 1024.0,
        "nvlink_tx": counters.rate(("nvlink_tx", index), link_tx, now),
        "nvlink_rx": counters.rate(("nvlink_rx", index), link_rx, now),
        "mig": _mig_memory(pynvml, handle),
    }


def _cpu_busy(counters: Counters, now: float) -> float | None:
    """The machine's busy share (0-100) since the previous call, from cumulative CPU times."""
    times = psutil.cpu_times()
    total = sum(times)
    idle = times.idle + getattr(times, "iowait", 0.0)
    all_rate = counters.rate("cpu_total", total, now)
    idle_rate = counters.rate("cpu_idle", idle, now)
    if not all_rate or idle_rate is None:
        return None
    return round(min(100.0, max(0.0, 100.0 * (1.0 - idle_rate / all_rate))), 1)


def sample_host(counters: Counters, now: float) -> dict[str, Any]:
    """CPU %, memory, and network/disk throughput of this machine (psutil)."""
    memory = psutil.virtual_memory()
    net = psutil.net_io_counters()
    disk = psutil.disk_io_counters()  # None where the kernel exposes no disk statistics
    return {
        "cpu_percent": _cpu_busy(counters, now),
        "cpu_count": psutil.cpu_count() or 1,
        "memory_used": int(memory.total - memory.available),
        "memory_total": int(memory.total),
        "net_sent": counters.rate("net_sent", None if net is None else net.bytes_sent, now),
        "net_recv": counters.rate("net_recv", None if net is None else net.bytes_recv, now),
        "disk_read": counters.rate("disk_read", None if disk is None else disk.read_bytes, now),
        "disk_write": counters.rate("disk_write", None if disk is None else disk.write_bytes, now),
    }


class HostSampler:
    """Samples this machine and its GPUs; NVML started on first use, shut down on ``close``.

    Not thread-safe: one owner calls ``sample`` (the server's sampler thread, a worker's
    metrics thread).
    """

    def __init__(self, gpus: bool = True) -> None:
        self.gpus = gpus
        self.count: int | None = None  # GPUs NVML sees; None before the first sample
        self.reason: str | None = None  # why there are no GPU figures
        self._counters = Counters()

    def start(self) -> None:
        """Start NVML (never raises) and the CPU and counter baselines."""
        if self.count is not None:
            return
        self.count, self.reason = start_nvml() if self.gpus else (0, None)
        sample_host(self._counters, time.monotonic())  # the first rates come from here

    def sample(self) -> dict[str, Any]:
        """``{"timestamp", "host", "gpus", "reason"}``; a failing GPU or psutil blanks itself only."""
        self.start()
        now = time.monotonic()
        gpus: list[dict[str, Any]] = []
        for index in range(self.count or 0):
            try:
                gpus.append(sample_device(index, self._counters, now))
            except Exception as exc:  # a device vanished or fell off the bus
                gpus.append({"index": index, "error": str(exc)})
        try:
            host = sample_host(self._counters, now)
        except Exception:  # noqa: BLE001 - psutil on an exotic kernel: the GPUs still count
            host = None
        return {"gpus": gpus, "reason": self.reason, "timestamp": time.time(), "host": host}

    def close(self) -> None:
        if self.count:
            stop_nvml()
        self.count = None


def start_nvml() -> tuple[int, str | None]:
    """(GPUs NVML sees, why none) after starting NVML; never raises."""
    try:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        return count, None if count else no_gpu_reason(None)
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError...
        return 0, no_gpu_reason(exc)


def stop_nvml() -> None:
    try:
        import pynvml

        pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - shutting down what may never have started
        pass


def process_tree(pid: int | None = None) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of a process and all its descendants.

    Each process's CPU time is counted once: live ones as they run, ended ones in their
    reaper's ``children_*`` (a kernel's subprocesses included), so the total only grows.
    """
    proc = psutil.Process(pid)
    t = proc.cpu_times()
    cpu = t.user + t.system + t.children_user + t.children_system
    rss = proc.memory_info().rss
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
            cpu += c.user + c.system + c.children_user + c.children_system
            rss += child.memory_info().rss
        except psutil.Error:  # ended between the listing and the reading
            pass
    return cpu, rss


def visible_gpus(count: int, visible: str | None) -> list[Any]:
    """NVML handles of the GPUs ``CUDA_VISIBLE_DEVICES`` names (all ``count`` when unset)."""
    import pynvml

    if not visible:
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    handles = []
    for item in (v.strip() for v in visible.split(",")):
        if item.isdigit() and int(item) < count:
            handles.append(pynvml.nvmlDeviceGetHandleByIndex(int(item)))
        elif item and not item.isdigit():
            handle = _metric(pynvml.nvmlDeviceGetHandleByUUID, item)
            if handle is not None:
                handles.append(handle)
    return handles


class GpuUsage:
    """Utilisation of the GPUs this process was given, integrated over time.

    A step marks the integral when it starts and reads the mean and the peak since then
    when it ends (``since``): the mean is exact over hours with constant memory; the peak
    looks back over the last ``PEAK_TICKS`` readings. One NVML call per GPU a tick: a
    worker holding no GPU reads none.
    """

    PEAK_TICKS = 3600

    def __init__(self, handles: list[Any]) -> None:
        from collections import deque

        self.handles = handles
        self.util_seconds = 0.0  # the integral of the mean utilisation (0-1) over time
        self.seconds = 0.0  # the time covered by readings
        self.ticks = 0
        self.recent: deque[tuple[int, float]] = deque(maxlen=self.PEAK_TICKS)
        self._last: float | None = None  # when the previous reading was taken

    def tick(self, now: float, max_gap: float) -> float | None:
        """Read each GPU's utilisation; return their mean (0-1), None if none reports one."""
        import pynvml

        readings = []
        for handle in self.handles:
            util = _metric(pynvml.nvmlDeviceGetUtilizationRates, handle)
            if util is not None:
                readings.append(float(util.gpu) / 100.0)
        mean = sum(readings) / len(readings) if readings else None
        self.ticks += 1
        if mean is not None:
            self.recent.append((self.ticks, mean))
        if self._last is not None and mean is not None:
            # NVML's figure covers its own recent window: credit it back to the last reading,
            # but no further than a tick or two (a stalled worker is not measured as busy).
            dt = min(now - self._last, max_gap)
            if dt > 0:
                self.util_seconds += dt * mean
                self.seconds += dt
        self._last = now
        return mean

    def mark(self) -> tuple[float, float, int]:
        return self.util_seconds, self.seconds, self.ticks

    def since(self, mark: tuple[float, float, int] | None) -> tuple[float | None, float | None]:
        """(mean, peak) utilisation (0-1) between ``mark`` and now; None when nothing was read."""
        if mark is None:
            return None, None
        seconds = self.seconds - mark[1]
        mean = max(0.0, min(1.0, (self.util_seconds - mark[0]) / seconds)) if seconds > 0 else None
        peaks = [u for n, u in self.recent if n > mark[2]]
        return mean, (max(peaks) if peaks else None)


def cuda_visible() -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")
