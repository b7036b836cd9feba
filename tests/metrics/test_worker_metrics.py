"""Samples from every worker reach the scheduler, one series per host, bounded.

Real ``dask scheduler`` and ``dask worker`` processes on two host labels; the plugins
are installed the way an SSH or attached cluster gets them (``cost.install(client)``,
which adds ``install_metrics``), pickled by value. The GPU test gives one worker the
fake NVML device (tests/nvml_fake.py): no GPU can exist here.
"""

from __future__ import annotations

import gc
import sys
import time
from types import SimpleNamespace

import cloudpickle
import pytest
from dask_procs import fake_gpu_env, steady_feed
from distributed import Client
from nvml_fake import load_feed
from waiting import wait_for

from aiinfra_magics.clusters import cost
from aiinfra_magics.clusters.rpc import scheduler_call
from aiinfra_magics.metrics.efficiency import ratio
from aiinfra_magics.metrics.store import GPU_FIELDS, HOST_FIELDS, STANDBY, MetricsStore

BURN_S = 2.0
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this file


def burn(seconds: float) -> float:
    """Use ``seconds`` of CPU (not wall) time, however loaded the machine is."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return time.process_time() - start


def metrics(address: str, **kwargs) -> dict:
    return scheduler_call(address, "aiinfra_metrics", timeout=30, **kwargs)


def hosts(address: str, **kwargs) -> dict[str, dict]:
    return {h["host"]: h for h in metrics(address, **kwargs)["hosts"]}


def test_two_hosts_one_series_each_and_cpu_efficiency_within_the_work(dask_processes):
    address = dask_processes.scheduler()
    dask_processes.worker("a1", "host-a")
    dask_processes.worker("a2", "host-a")
    dask_processes.worker("b1", "host-b")
    with Client(address, timeout=60) as client:
        client.wait_for_workers(3, timeout=120)
        cost.install(client)
        cost.install(client)  # idempotent: one plugin each, not two
        wait_for(
            lambda: (
                (h := hosts(address)).keys() == {"host-a", "host-b"}
                and h["host-a"]["workers"] == 2
                and all(len(x["samples"]) >= 2 for x in h.values())
            ),
            what="samples from both hosts",
        )
        workers = {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}
        started = time.time()
        futures = [
            # A lambda: pickled by value (burn with it), as the workers cannot import this file.
            client.submit(lambda s: burn(s), BURN_S, workers=[workers[n]], pure=False)
            for n in ("a1", "a2", "b1")
        ]
        used = sum(client.gather(futures))
        ended = time.time()
        # The work is in the figures once each worker sent a tick after it.
        report = wait_for(
            lambda: (
                (r := scheduler_call(address, "aiinfra_cost"))["cpu_used_hours"] * 3600 >= used
                and r
            ),
            what="the work's CPU time in the figures",
        )
        assert report["cpu_efficiency"] == ratio(report["cpu_used_hours"], report["core_hours"])
        assert 0 < report["cpu_efficiency"] <= 1
        # At most the work plus what three idle workers and the sampling use meanwhile.
        wall = report["as_of"] - report["since"]
        assert report["cpu_used_hours"] * 3600 <= used + 3 * wall
        assert report["gpu_used_hours"] == 0 and report["gpu_efficiency"] is None
        assert 0 < report["peak_memory"] and report["memory_limit"] > 0

        series = hosts(address, since=started)
        a = series["host-a"]
        # One series per host: two workers share host-a, one of them reports it.
        assert a["reporter"] in (workers["a1"], workers["a2"])
        stamps = [s["timestamp"] for s in a["samples"]]
        assert stamps == sorted(stamps) and all(t > started for t in stamps)
        assert all(b - a_ >= 0.5 for a_, b in zip(stamps, stamps[1:]))  # not one per worker
        during = [s for s in a["samples"] if started < s["timestamp"] <= ended + 1]
        assert during and max(s["host"]["cpu_percent"] for s in during) >= 40  # 2 of 2 cores busy
        latest = hosts(address, latest=True)
        assert latest["host-b"]["latest"]["host"]["memory_total"] > 0
        assert not latest["host-b"]["latest"]["gpus"]  # no GPU here: the host still sampled

        # The reporter leaves: the other worker on host-a takes over its series.
        reporter = a["reporter"]
        other = workers["a1"] if reporter == workers["a2"] else workers["a2"]
        client.retire_workers([reporter], close_workers=True)
        left = time.time()
        after = wait_for(
            lambda: (
                (h := hosts(address, since=left)["host-a"])["reporter"] == other
                and len(h["samples"]) >= 2
                and h
            ),
            what="host-a reported by its remaining worker",
        )
        assert after["workers"] == 1


def test_a_fake_gpu_at_low_utilisation_is_measured_and_warned_about(dask_processes, tmp_path):
    """GPU path: a worker holding one GPU (its resource) that NVML reads at 4 %."""
    address = dask_processes.scheduler()
    feed = steady_feed(load_feed(), util=4)
    dask_processes.worker("g1", "gpu-host", env=fake_gpu_env(tmp_path, feed), resources="GPU=1")
    with Client(address, timeout=60) as client:
        client.wait_for_workers(1, timeout=120)
        cost.install(client, SimpleNamespace(waste_threshold=10.0, waste_window=2.0))
        report = wait_for(
            lambda: (r := scheduler_call(address, "aiinfra_cost"))["warnings"] and r,
            what="the waste warning",
        )
    assert report["gpu_hours"] > 0 and report["now"]["gpus"] == 1
    assert 0 < report["gpu_used_hours"] <= report["gpu_hours"]
    assert 0 < report["gpu_efficiency"] <= 0.05  # 4 % of the time measured, less of all held
    assert report["waste"]["wasteful"] and report["waste"]["threshold"] == 10.0
    assert report["warnings"][0].startswith("wasteful: 1 GPU(s) held under 10% utilisation")
    latest = hosts(address, latest=True)["gpu-host"]["latest"]
    h100, a100 = latest["gpus"]
    assert h100["uuid"] == "GPU-0f5a" and h100["utilization"] == 4
    assert h100["memory_total"] == feed["gpus"][0]["memory_total"] and h100["power_watts"] == 71.0
    assert [m["uuid"] for m in a100["mig"]] == ["MIG-aa01", "MIG-aa02"]
    assert a100["power_watts"] is None  # not reported by the MIG board


def sample_at(t: float) -> dict:
    return {
        "timestamp": t,
        "host": {"cpu_percent": 50.0, "memory_used": 1 << 30, "memory_total": 1 << 34},
        "gpus": [{"index": 0, "uuid": "GPU-1", "utilization": 5}],
        "reason": None,
    }


def test_a_week_of_samples_keeps_the_store_flat():
    """A week at the default rate, a second worker on the host standing by: the ring holds
    its size, the objects the store keeps are as many after the week as after its first day,
    and the efficiency sums keep counting."""
    store = MetricsStore(ring_size=3600, interval=1.0)
    day, week = 24 * 3600, 7 * 24 * 3600
    gpus = {"w1": 1.0, "w2": 0.0}.get

    def feed(start: int, stop: int) -> None:
        for i in range(start, stop):
            t = float(i)
            assert (
                store.add("w1", "h", t, {"cpu": t * 0.5, "rss": 1 << 28}, sample_at(t), None, gpus)
                is None
            )
            if i % 3600 == 0:  # the standby worker tries now and then; it is told to stand by
                assert store.add("w2", "h", t, {"cpu": 0.0}, sample_at(t), None, gpus) == STANDBY

    feed(0, day)
    gc.collect()
    after_a_day = len(gc.get_objects())
    feed(day, week)
    gc.collect()
    assert len(gc.get_objects()) - after_a_day < 100  # flat: nothing kept per sample
    assert len(store.hosts["h"].ring) == 3600
    assert store.hosts["h"].ring[0].timestamp == week - 3600
    assert store.latest()[0]["latest"] == {  # unpacked as it came, absent figures None
        "timestamp": week - 1.0,
        "host": {**dict.fromkeys(HOST_FIELDS), **sample_at(0)["host"]},
        "gpus": [
            {
                "index": 0,
                "uuid": "GPU-1",
                "name": None,
                **dict.fromkeys(GPU_FIELDS),
                "utilization": 5,
                "mig": [],
            }
        ],  # fmt: skip
    }
    usage = store.usage(float(week))
    assert usage["cpu_used_hours"] == pytest.approx((week - 1) * 0.5 / 3600)
    assert usage["gpu_used_hours"] == pytest.approx((week - 1) * 0.05 / 3600)
    assert usage["waste"]["wasteful"]  # 5 % for a week


def test_many_hosts_are_bounded_too():
    store = MetricsStore(ring_size=10, max_hosts=50)
    for i in range(500):
        store.add(f"w{i}", f"h{i}", float(i), None, sample_at(float(i)))
        store.remove_worker(f"w{i}")  # hosts that left are the first to go
    assert len(store.hosts) == 50 and "h499" in store.hosts


def test_an_attached_scheduler_gets_the_workers_metrics(dask_processes):
    """``--backend address``: the plugin is registered on a scheduler we did not start."""
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec

    address = dask_processes.scheduler()
    dask_processes.worker("x1", "elsewhere")
    manager = ClusterManager()
    started = manager.start(ClusterSpec.from_options({"name": "att", "backend": "address",
                                                      "address": address, "dashboard": 8787}))  # fmt: skip
    assert not [n for n in started.notes if "metrics" in n]
    try:
        status = wait_for(
            lambda: (
                (s := manager.status("att")).data["hosts"] and s.data["hosts"][0]["latest"] and s
            ),
            what="the attached scheduler's host",
        )
        assert status.data["hosts"][0]["host"] == "elsewhere"
    finally:
        manager.stop("att")  # forgets it; the scheduler is not ours
