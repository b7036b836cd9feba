"""NVML without a CUDA context: the GPU count probe and the helpers every reader shares.

The cluster backends need only ``gpu_probe()``, the inventory and the sampler read
more through ``nvml_call``; all stay cheap to import (pynvml is imported late).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


def nvml_call(fn: Any, *args: Any) -> Any:
    """Call one NVML query; None when this device does not support it.

    Many queries are unsupported on some boards (power on MIG slices,
    utilisation while MIG is on), so each value is optional on its own.
    """
    import pynvml

    try:
        return fn(*args)
    except pynvml.NVMLError:
        return None


def text(value: Any) -> Any:
    # Older nvidia-ml-py releases return bytes for strings.
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class GpuProbe:
    count: int
    reason: str  # why count is what it is, for one-line notes
    uuids: tuple[str, ...] = ()


def gpu_probe() -> GpuProbe:
    """Ask NVML for the GPUs; never raises."""
    try:
        import pynvml
    except ImportError:
        return GpuProbe(0, "nvidia-ml-py is not installed")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return GpuProbe(0, f"NVML unavailable ({exc})")
    try:
        count = pynvml.nvmlDeviceGetCount()
        uuids = []
        for index in range(count):
            uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(index))
            uuids.append(uuid.decode() if isinstance(uuid, bytes) else uuid)
    except pynvml.NVMLError as exc:
        return GpuProbe(0, f"NVML error ({exc})")
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    reason = f"NVML sees {count} GPU(s)" + (f"; CUDA_VISIBLE_DEVICES={visible}" if visible else "")
    return GpuProbe(count, reason if count else "NVML sees no GPU", tuple(uuids))
