"""One GPU sampler thread shared by every client of the server.

NVML calls can take milliseconds (and much longer on a busy or broken driver),
so they never run on the event loop: a daemon thread samples while someone is
asking and parks when nobody has asked for a while. NVML is started lazily on
the first request, and every NVMLError is tolerated per metric, so one
unsupported counter (common on MIG slices and consumer cards) blanks that
field only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..devices.nvml import nvml_call as _metric
from ..devices.nvml import text as _text

# How long the thread keeps sampling after the last request: clients poll every
# few seconds, so this covers several polls without sampling for nobody.
IDLE_STOP_S = 30.0


def _sample_device(index: int) -> dict[str, Any]:
    import pynvml

    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    util = _metric(pynvml.nvmlDeviceGetUtilizationRates, handle)
    mem = _metric(pynvml.nvmlDeviceGetMemoryInfo, handle)
    power = _metric(pynvml.nvmlDeviceGetPowerUsage, handle)
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
    }


class GpuSampler:
    """Latest GPU sample, refreshed by one background thread."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_request = 0.0
        self._count: int | None = None
        self._reason: str | None = None
        self._latest: dict[str, Any] = {"gpus": [], "reason": None, "timestamp": None}
        self.samples_taken = 0

    def latest(self) -> dict[str, Any]:
        """The most recent sample; starts the sampler on first use. Never blocks on NVML."""
        self._last_request = time.monotonic()
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._latest = {"gpus": [], "reason": "sampler starting", "timestamp": None}
                self._thread = threading.Thread(
                    target=self._run, name="aiinfra-gpu-sampler", daemon=True
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
            self._reason = None if self._count else "NVML found no GPU on this machine"
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError...
            self._count = 0
            self._reason = f"no NVIDIA GPU available: {exc.__class__.__name__}: {exc}"

    def _run(self) -> None:
        self._start_nvml()
        while not self._stop.is_set():
            gpus: list[dict[str, Any]] = []
            for index in range(self._count or 0):
                try:
                    gpus.append(_sample_device(index))
                except Exception as exc:  # a device vanished or fell off the bus
                    gpus.append({"index": index, "error": str(exc)})
            with self._lock:
                self._latest = {"gpus": gpus, "reason": self._reason, "timestamp": time.time()}
                self.samples_taken += 1
            if not self._count:
                return  # nothing will change on a machine without GPUs: stop sampling
            if time.monotonic() - self._last_request > IDLE_STOP_S:
                self._wake.clear()
                self._wake.wait()  # park until a client asks again
            else:
                self._stop.wait(self.interval)
