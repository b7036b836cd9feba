"""What hardware this machine has: NVML GPUs (MIG too), TPUs, CPU and memory."""

from __future__ import annotations

from .inventory import SCHEMA, Inventory, inventory, probe, probe_gpus, probe_tpus
from .nvml import GpuProbe, gpu_probe

__all__ = [
    "SCHEMA", "GpuProbe", "Inventory", "gpu_probe", "inventory", "probe", "probe_gpus", "probe_tpus",
]  # fmt: skip
