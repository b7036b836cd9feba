"""What the workers' metrics cost (issue 28): CPU on a worker, memory and time on the scheduler.

``worker``: real ``dask worker`` processes (no nanny, one thread) on one ``dask scheduler``:
pairs started together, one of each pair with the metrics plugin (its host's reporter:
the full host sample, the heavier role) and one without, idle for ``--seconds``; each
process's own CPU time over that window (psutil) is compared. Rounds alternate which
of the pair is started first. Aim: the plugin adds under 1 % of one core at the
default rate (1 s). Also the sampler alone, in this process: CPU seconds per tick of a
reporter (host sample + process tree) and of a standby worker (process tree only).

``scheduler``: ``MetricsStore.add`` fed 10^6 samples (two hosts, two workers each) with
tracemalloc: memory held once the rings are full and after the million, and the time
per sample.

    python benchmarks/telemetry.py [--what worker|scheduler|all] [--seconds 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psutil

DASK = str(Path(sys.executable).with_name("dask"))


def start_scheduler(folder: Path) -> tuple[subprocess.Popen, str]:
    file = folder / "scheduler.json"
    proc = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    while not (file.exists() and file.read_text().strip()):
        time.sleep(0.1)
    return proc, json.loads(file.read_text())["address"]


def start_worker(address: str, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [DASK, "worker", address, "--name", name, "--nthreads", "1", "--no-nanny",
         "--no-dashboard", "--host", "127.0.0.1"],
        env={**os.environ, "DASK_AIINFRA__METRICS__HOST": name},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def worker_round(seconds: float, first_with: bool) -> tuple[float, float]:
    """(CPU % of one core) of a worker with the plugin and of one without, side by side."""
    from distributed import Client

    from aiinfra_magics.metrics import plugins

    with tempfile.TemporaryDirectory() as tmp:
        scheduler, address = start_scheduler(Path(tmp))
        names = ["with", "without"] if first_with else ["without", "with"]
        procs = {n: start_worker(address, n) for n in names}
        try:
            with Client(address, timeout=60) as client:
                client.wait_for_workers(2, timeout=120)
                workers = {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}
                # The plugin on one worker only: registered on both, taken off the peer.
                client.register_plugin(
                    plugins.metrics_plugin(by_value=True), name=plugins.PLUGIN_NAME
                )
                client.run(
                    lambda dask_worker: [
                        dask_worker.plugins.pop(plugins.WORKER_PLUGIN).teardown(dask_worker)
                    ],
                    workers=[workers["without"]],
                )
                time.sleep(3)  # start-up settles; the plugin's NVML start is behind it
                ps = {n: psutil.Process(p.pid) for n, p in procs.items()}
                before = {n: cpu_seconds(p) for n, p in ps.items()}
                t0 = time.monotonic()
                time.sleep(seconds)
                wall = time.monotonic() - t0
                after = {n: cpu_seconds(p) for n, p in ps.items()}
                ticks = client.run(
                    lambda dask_worker: getattr(
                        dask_worker.plugins.get(plugins.WORKER_PLUGIN), "ticks", None
                    )
                )
                assert ticks[workers["with"]] and ticks[workers["without"]] is None, ticks
        finally:
            for p in [*procs.values(), scheduler]:
                p.terminate()
                p.wait(30)
    return tuple(100 * (after[n] - before[n]) / wall for n in ("with", "without"))


def sampler_alone(ticks: int = 300) -> tuple[float, float]:
    """CPU seconds per tick of a reporter and of a standby worker, in this process."""
    from aiinfra_magics.metrics.sample import HostSampler, process_tree

    machine = HostSampler()
    machine.start()
    t0 = time.process_time()
    for _ in range(ticks):
        machine.sample()
        process_tree(os.getpid())
    reporter = (time.process_time() - t0) / ticks
    t0 = time.process_time()
    for _ in range(ticks):
        process_tree(os.getpid())
    standby = (time.process_time() - t0) / ticks
    machine.close()
    return reporter, standby


def bench_worker(seconds: float, rounds: int) -> None:
    reporter, standby = sampler_alone()
    print(
        f"sampler alone: reporter {reporter * 1e3:.2f} ms CPU a tick ({reporter * 100:.3f} % of "
        f"a core at 1 s), standby {standby * 1e3:.2f} ms ({standby * 100:.3f} %)"
    )
    added = []
    for r in range(rounds):
        with_, without = worker_round(seconds, first_with=r % 2 == 0)
        added.append(with_ - without)
        print(
            f"round {r + 1}: worker with plugin {with_:.3f} % of a core, without "
            f"{without:.3f} %, added {with_ - without:+.3f} %"
        )
    print(
        f"added by the plugin: median {statistics.median(added):+.3f} % of a core "
        f"(min {min(added):+.3f}, max {max(added):+.3f}; {rounds} rounds of {seconds:g} s)"
    )


def bench_scheduler(samples: int) -> None:
    from aiinfra_magics.metrics.store import MetricsStore

    host = {"cpu_percent": 12.5, "cpu_count": 64, "memory_used": 1 << 36, "memory_total": 1 << 38,
            "net_sent": 1.5e6, "net_recv": 2.5e6, "disk_read": 0.0, "disk_write": 4.1e5}  # fmt: skip
    gpu = {"index": 0, "uuid": "GPU-0f5a", "name": "NVIDIA H100", "utilization": 37,
           "memory_used": 1 << 34, "memory_total": 85520809984, "temperature": 51,
           "power_watts": 312.0, "pcie_tx": 1e8, "pcie_rx": 4e8, "nvlink_tx": 2e9,
           "nvlink_rx": 2e9, "mig": []}  # fmt: skip
    store = MetricsStore()  # the defaults: 3600 samples a host
    hosts = [("h1", "w1", "w2"), ("h2", "w3", "w4")]
    gpus = {"w1": 1.0, "w2": 1.0, "w3": 1.0, "w4": 1.0}.get

    def feed(start: int, stop: int) -> None:
        for i in range(start, stop):
            name, reporter, standby = hosts[i % 2]
            t = float(i // 2)
            sample = {"timestamp": t, "host": dict(host),
                      "gpus": [dict(gpu, index=k) for k in range(8)], "reason": None}  # fmt: skip
            store.add(reporter, name, t, {"cpu": t, "rss": 1 << 30}, sample, None, gpus)
            store.add(standby, name, t, {"cpu": t, "rss": 1 << 30}, None, None, gpus)

    tracemalloc.start()
    full_at = 2 * 2 * store.ring_size
    feed(0, full_at)
    full = tracemalloc.get_traced_memory()[0]
    feed(full_at, samples)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    timed = 100_000
    t0 = time.perf_counter()
    feed(samples, samples + timed)  # without tracemalloc's own cost
    per = (time.perf_counter() - t0) / timed
    print(
        f"scheduler store, 2 hosts x 8 GPUs, {samples:,} host samples (+ as many standby "
        f"messages): {full / 2**20:.1f} MiB once the rings were full, {after / 2**20:.1f} MiB "
        f"after; {per * 1e6:.1f} us a host sample and its standby message (sample built included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=("worker", "scheduler", "all"), default="all")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=1_000_000)
    args = parser.parse_args()
    print(
        f"{platform.node()}: {psutil.cpu_count()} cores, load {os.getloadavg()[0]:.1f} "
        f"{os.getloadavg()[1]:.1f}, python {platform.python_version()}"
    )
    if args.what in ("worker", "all"):
        bench_worker(args.seconds, args.rounds)
    if args.what in ("scheduler", "all"):
        bench_scheduler(args.samples)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
