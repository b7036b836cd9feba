"""How many GPUs NVML sees, without creating a CUDA context.

Kept apart from the full inventory in ``aiinfra_magics.devices`` because the
cluster backends need only this one answer and must stay cheap to import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


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
