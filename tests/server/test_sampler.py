"""The one sampler: GPUs through NVML (a recorded feed stands in for a GPU here), the host for real.

The GPU path runs against a fake ``pynvml`` module (tests/nvml_fake.py) injected into
``sys.modules`` for these tests only; it replays ``data/nvml_feed.json`` (NVML's return shapes,
one tick per sample). The host path and the no-GPU sentence use the real
machine and the real nvidia-ml-py.
"""

from __future__ import annotations

import sys

import psutil
import pytest
from nvml_fake import fake_pynvml, load_feed
from waiting import wait_for

from aiinfra_magics.server import sampler as sampler_module
from aiinfra_magics.server.sampler import GpuSampler, _Counters, no_gpu_reason

FEED = load_feed()


@pytest.fixture
def sampler():
    made: list[GpuSampler] = []

    def make(interval: float = 0.01) -> GpuSampler:
        s = GpuSampler(interval=interval)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _samples(s: GpuSampler, n: int) -> list[dict]:
    """The next ``n`` distinct samples, as a client asking all the time would see them."""
    seen: list[dict] = []

    def more():
        latest = s.latest()
        if latest["timestamp"] is not None and (
            not seen or latest["timestamp"] != seen[-1]["timestamp"]
        ):
            seen.append(latest)
        return len(seen) >= n

    wait_for(more, what=f"{n} samples")
    return seen


def test_gpu_figures_follow_the_recorded_feed(monkeypatch, sampler):
    nv = fake_pynvml(FEED)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    # An hour between samples: the one sample taken is the first reading, whatever the load.
    s = sampler(interval=3600)
    first = _samples(s, 1)[0]
    assert first["reason"] is None
    h100, a100 = first["gpus"]
    tick = FEED["ticks"][0]  # the first sample reads the first tick
    assert h100["name"] == "NVIDIA H100 80GB HBM3" and h100["uuid"] == "GPU-0f5a"
    assert h100["utilization"] == tick["util"][0]
    assert h100["memory_used"] == tick["memory_used"][0]
    assert h100["memory_total"] == FEED["gpus"][0]["memory_total"]
    assert (
        h100["pcie_tx"] == tick["pcie_tx"][0] * 1024
        and h100["pcie_rx"] == tick["pcie_rx"][0] * 1024
    )
    assert h100["power_watts"] == pytest.approx(71.0)
    assert h100["nvlink_tx"] is None  # a rate needs two readings of the counter
    assert h100["mig"] == []
    # The MIG board: its slices with their memory; no NVLink, no power (NVML says not supported).
    assert [m["uuid"] for m in a100["mig"]] == ["MIG-aa01", "MIG-aa02"]
    assert a100["mig"][0]["memory_total"] == 10200547328
    assert a100["power_watts"] is None and a100["nvlink_tx"] is None and a100["nvlink_rx"] is None

    # Rates need two readings of the counters: a second sampler reads on, slowly enough that its
    # second reading (the feed's last tick) is seen before a third one repeats that tick.
    later = _samples(sampler(interval=5), 2)[-1]
    assert later["gpus"][0]["nvlink_tx"] > 0 and later["gpus"][0]["nvlink_rx"] > 0
    assert later["gpus"][1]["nvlink_tx"] is None
    assert later["host"]["memory_total"] == psutil.virtual_memory().total


def test_counter_rates_are_bytes_per_second():
    counters = _Counters()
    assert counters.rate("x", 1000.0, now=10.0) is None
    assert counters.rate("x", 3000.0, now=12.0) == 1000.0
    assert counters.rate("x", 2000.0, now=13.0) == 0.0  # a counter reset is not a negative rate
    assert counters.rate("x", None, now=14.0) is None


@pytest.mark.parametrize("failure", ["NVMLError_LibraryNotFound", None])
def test_without_gpus_one_friendly_sentence_and_the_host_still_sampled(
    monkeypatch, sampler, failure
):
    if failure is not None:  # NVML present but no driver, as on this kind of machine
        monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(FEED, fail_init=failure))
    # failure None: the real nvidia-ml-py on this machine, whatever it finds
    s = sampler()
    samples = _samples(s, 3)
    last = samples[-1]
    if failure is None and last["gpus"]:
        pytest.skip("this machine has GPUs: the GPU path is covered by test_gpu.py")
    assert last["gpus"] == []
    reason = last["reason"]
    assert reason.startswith("No GPU on this machine to chart: ") and reason.endswith(".")
    assert "NVMLError" not in reason and "Shared Library" not in reason
    assert reason.count(".") == 1  # one sentence
    host = last["host"]
    assert 0 <= host["cpu_percent"] <= 100 * psutil.cpu_count()
    assert 0 < host["memory_used"] <= host["memory_total"] == psutil.virtual_memory().total
    assert (
        host["net_sent"] is not None and host["net_sent"] >= 0
    )  # a rate from the second sample on


def test_reasons_name_what_to_do():
    assert "no NVIDIA driver" in no_gpu_reason(
        type("NVMLError_LibraryNotFound", (Exception,), {})()
    )
    assert "not loaded" in no_gpu_reason(type("NVMLError_DriverNotLoaded", (Exception,), {})())
    assert "nvidia-ml-py is not installed" in no_gpu_reason(ImportError("no pynvml"))
    assert "found no GPU" in no_gpu_reason(None)
    assert sampler_module.IDLE_STOP_S > 0
