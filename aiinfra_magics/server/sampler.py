"""One sampler thread shared by every client of the server: GPUs (NVML) and the host (psutil).

NVML calls can take milliseconds (and much longer on a busy or broken driver),
so they never run on the event loop: a daemon thread samples while someone is
asking and parks when nobody has asked for a while. NVML is started lazily on
the first request, and every NVMLError is tolerated per metric, so one
unsupported counter (common on MIG slices and consumer cards) blanks that
field only. Without GPUs the host is still sampled, and ``reason`` says in one
sentence why there are no GPU figures.

Rates (PCIe, NVLink, network, disk) are bytes/s: PCIe as NVML reports it
(KB/s over its own 20 ms window), the others from the change of a cumulative
counter since the previous sample (None on the first one).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psutil

from ..devices.inventory import _mig_slices
from ..devices.nvml import nvml_call as _metric
from ..devices.nvml import text as _text

# How long the thread keeps sampling after the last request: clients poll every
# few seconds, so this covers several polls without sampling for nobody.
IDLE_STOP_S = 30.0

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


class _Counters:
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


def _sample_device(index: int, counters: _Counters, now: float) -> dict[str, Any]:
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
        "mig": [
            {k: s[k] for k in ("index", "uuid", "memory_used", "memory_total")}
            for s in _mig_slices(pynvml, handle)
        ],
    }


def sample_host(counters: _Counters, now: float) -> dict[str, Any]:
    """CPU %, memory, and network/disk throughput of this machine (psutil)."""
    memory = psutil.virtual_memory()
    net = psutil.net_io_counters()
    disk = psutil.disk_io_counters()  # None where the kernel exposes no disk statistics
    return {
        "cpu_percent": psutil.cpu_percent(interval=None),  # since the previous call
        "memory_used": int(memory.total - memory.available),
        "memory_total": int(memory.total),
        "net_sent": counters.rate("net_sent", None if net is None else net.bytes_sent, now),
        "net_recv": counters.rate("net_recv", None if net is None else net.bytes_recv, now),
        "disk_read": counters.rate("disk_read", None if disk is None else disk.read_bytes, now),
        "disk_write": counters.rate("disk_write", None if disk is None else disk.write_bytes, now),
    }


class GpuSampler:
    """Latest GPU and host sample, refreshed by one background thread."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_request = 0.0
        self._count: int | None = None
        self._reason: str | None = None
        self._counters = _Counters()
        self._latest: dict[str, Any] = {"gpus": [], "reason": None, "timestamp": None, "host": None}
        self.samples_taken = 0

    def latest(self) -> dict[str, Any]:
        """The most recent sample; starts the sampler on first use. Never blocks on NVML."""
        self._last_request = time.monotonic()
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._latest = {
                    "gpus": [], "reason": "Looking for GPUs…", "timestamp": None, "host": None
                }  # fmt: skip
                self._thread = threading.Thread(
                    target=self._run, name="aiinfra-sampler", daemon=True
                )
                self._thread.start()
            self._wake.set()
            return dict(self._latest)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._count:
            import pynvml

            try:
                pynvml.nvmlShutdown()
            except pynvml.NVMLError:
                pass

    def _start_nvml(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._count = pynvml.nvmlDeviceGetCount()
            self._reason = None if self._count else no_gpu_reason(None)
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError...
            self._count = 0
            self._reason = no_gpu_reason(exc)

    def _run(self) -> None:
        self._start_nvml()
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement
        while not self._stop.is_set():
            now = time.monotonic()
            gpus: list[dict[str, Any]] = []
            for index in range(self._count or 0):
                try:
                    gpus.append(_sample_device(index, self._counters, now))
                except Exception as exc:  # a device vanished or fell off the bus
                    gpus.append({"index": index, "error": str(exc)})
            try:
                host = sample_host(self._counters, now)
            except Exception:  # noqa: BLE001 - psutil on an exotic kernel: the GPUs still count
                host = None
            with self._lock:
                self._latest = {
                    "gpus": gpus, "reason": self._reason, "timestamp": time.time(), "host": host
                }  # fmt: skip
                self.samples_taken += 1
            if time.monotonic() - self._last_request > IDLE_STOP_S:
                self._wake.clear()
                self._wake.wait()  # park until a client asks again
            else:
                self._stop.wait(self.interval)
