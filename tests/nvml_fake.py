"""A fake NVML device for machines with no GPU: a ``pynvml`` module that replays a recorded feed.

The only GPU stand-in of the tests (no production code knows of it): injected into
``sys.modules`` in-process (tests/server/test_sampler.py), or put first on a worker
process's ``PYTHONPATH`` through ``fakenvml/pynvml.py`` (tests/metrics), which reads
the feed named by ``AIINFRA_TEST_NVML_FEED``. A feed has NVML's return shapes, one
tick per sample of GPU 0 (see tests/server/data/nvml_feed.json).
"""

from __future__ import annotations

import json
import types
from pathlib import Path

FEED_PATH = Path(__file__).parent / "server" / "data" / "nvml_feed.json"


def load_feed(path: Path = FEED_PATH) -> dict:
    return json.loads(Path(path).read_text())


def fake_pynvml(feed: dict, fail_init: str | None = None) -> types.ModuleType:
    """A ``pynvml`` that replays ``feed``: the tick advances with each sample of GPU 0."""
    nv = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    nv.NVMLError = NVMLError
    for name in ("NVMLError_LibraryNotFound", "NVMLError_NotSupported", "NVMLError_NotFound"):
        setattr(nv, name, type(name, (NVMLError,), {}))
    nv.NVML_TEMPERATURE_GPU = 0
    nv.NVML_PCIE_UTIL_TX_BYTES, nv.NVML_PCIE_UTIL_RX_BYTES = 0, 1
    nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_TX, nv.NVML_FI_DEV_NVLINK_THROUGHPUT_DATA_RX = 138, 139
    state = {"tick": -1}
    gpus, ticks = feed["gpus"], feed["ticks"]

    def now() -> dict:
        return ticks[min(max(state["tick"], 0), len(ticks) - 1)]

    def init():
        if fail_init:
            raise getattr(nv, fail_init)("NVML Shared Library Not Found")

    def handle(index):
        if index == 0:
            state["tick"] += 1
        return ("gpu", index)

    def unsupported():
        raise nv.NVMLError_NotSupported("Not Supported")

    def memory(h):
        if h[0] == "mig":
            _, gpu, slot = h
            total = gpus[gpu]["mig"][slot]["memory_total"]
            return types.SimpleNamespace(used=now()["mig_used"][0][slot], total=total)
        return types.SimpleNamespace(
            used=now()["memory_used"][h[1]], total=gpus[h[1]]["memory_total"]
        )

    def field_values(h, fields):
        ok = gpus[h[1]]["nvlink"]
        key = {138: "nvlink_tx", 139: "nvlink_rx"}
        return [
            types.SimpleNamespace(
                nvmlReturn=0 if ok else 3,
                value=types.SimpleNamespace(ullVal=now()[key[f]][h[1]] if ok else 0),
            )
            for f in fields
        ]

    def power(h):
        return now()["power_mw"][h[1]] if gpus[h[1]]["power"] else unsupported()

    def mig_count(h):
        return len(gpus[h[1]]["mig"]) or unsupported()

    def mig_handle(h, slot):
        if slot >= len(gpus[h[1]]["mig"]):
            raise nv.NVMLError_NotFound("Not Found")
        return ("mig", h[1], slot)

    def uuid(h):
        return gpus[h[1]]["mig"][h[2]]["uuid"] if h[0] == "mig" else gpus[h[1]]["uuid"]

    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: None
    nv.nvmlDeviceGetCount = lambda: len(gpus)
    nv.nvmlDeviceGetHandleByIndex = handle
    nv.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=now()["util"][h[1]])
    nv.nvmlDeviceGetMemoryInfo = memory
    nv.nvmlDeviceGetPowerUsage = power
    nv.nvmlDeviceGetPcieThroughput = lambda h, c: now()["pcie_tx" if c == 0 else "pcie_rx"][h[1]]
    nv.nvmlDeviceGetFieldValues = field_values
    nv.nvmlDeviceGetUUID = uuid
    nv.nvmlDeviceGetName = lambda h: gpus[h[1]]["name"]
    nv.nvmlDeviceGetTemperature = lambda h, s: now()["temp"][h[1]]
    nv.nvmlDeviceGetMaxMigDeviceCount = mig_count
    nv.nvmlDeviceGetMigDeviceHandleByIndex = mig_handle
    nv.nvmlDeviceGetGpuInstanceId = lambda h: h[2]
    nv.nvmlDeviceGetComputeInstanceId = lambda h: 0
    nv.state = state
    return nv
