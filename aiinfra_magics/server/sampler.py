"""One sampler thread shared by every client of the server: this machine's host and GPUs.

The figures come from ``metrics.sample`` (the same sampler every cluster worker
runs, so a chart of this machine and of a cluster's host read alike). NVML calls
can take milliseconds (and much longer on a busy or broken driver), so they
never run on the event loop: a daemon thread samples while someone is asking and
parks when nobody has asked for a while. NVML is started lazily on the first
request. Without GPUs the host is still sampled, and ``reason`` says in one
sentence why there are no GPU figures.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..metrics.sample import Counters as _Counters  # noqa: F401 - the name tests know
from ..metrics.sample import HostSampler, no_gpu_reason, sample_host  # noqa: F401

# How long the thread keeps sampling after the last request: clients poll every
# few seconds, so this covers several polls without sampling for nobody.
IDLE_STOP_S = 30.0


class GpuSampler:
    """Latest GPU and host sample, refreshed by one background thread."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_request = 0.0
        self._machine = HostSampler()
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
        self._machine.close()

    def _run(self) -> None:
        self._machine.start()
        while not self._stop.is_set():
            sample = self._machine.sample()
            with self._lock:
                self._latest = sample
                self.samples_taken += 1
            if time.monotonic() - self._last_request > IDLE_STOP_S:
                self._wake.clear()
                self._wake.wait()  # park until a client asks again
            else:
                self._stop.wait(self.interval)
