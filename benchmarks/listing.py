"""``cluster list`` at a real site's scale (issue 24 aim 5), each case beside its baseline.

``queue``: one real SLURM cluster (1 running job) registered; ``cluster list`` with 2000
other jobs held in the SLURM queue against with none. The 2000 are submitted and
cancelled between blocks (A B A B ...), so each condition is measured several times
at different moments. Aim: within 10%.

``registry``: 200 registered SLURM clusters (records of the one live cluster under 200
names, each with its own jobs file, so every one is read, checked and queued) against an
empty registry, and against that one cluster alone, rotated call by call. Aim: within 100 ms
of the empty one. The live cluster's owner (this process) publishes its state into its
record; the copies get the same fresh state and heartbeat before each round (as 200 living
owners would keep them), so every listing shows 200 running clusters, checked to be so.

Each is timed two ways: the core call ``ClusterManager().list_clusters()`` in this process
(what the sidebar's feed and the magic run; imports are warm) and the whole CLI process
``python -m aiinfra_magics cluster list`` (start-up included).

Brings up its own SLURM (tests/slurm_fixture.py) unless SLURM_CONF is set.

    python benchmarks/listing.py [--repeat 10] [--what queue|registry|all] [--others 2000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SPEC = {"cores": 1, "memory": "1GB", "walltime": "00:30:00", "interface": "lo"}
FILLER = "aiinfra-bench-filler"
CLI = [sys.executable, "-m", "aiinfra_magics", "cluster", "list"]


def timed(f: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def cli_list() -> None:
    subprocess.run(CLI, check=True, capture_output=True, timeout=120)


def in_process() -> None:
    from aiinfra_magics.clusters.manager import ClusterManager

    ClusterManager().list_clusters()


def squeue_ids(*args: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i", *args], capture_output=True, text=True)
    return out.stdout.split()


def submit_others(n: int) -> None:
    """``n`` held jobs that are no cluster's, submitted 8 at a time (about 4 s per 1000)."""

    def one(_: int) -> None:
        subprocess.run(
            ["sbatch", "--hold", "-J", FILLER, "-o", "/dev/null", "--wrap", "sleep 600"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))
    assert len(squeue_ids("-n", FILLER)) == n


def cancel_others() -> None:
    subprocess.run(["scancel", "-n", FILLER], check=True, timeout=60)
    deadline = time.monotonic() + 120
    while squeue_ids("-n", FILLER):
        if time.monotonic() > deadline:
            raise TimeoutError("the held jobs did not leave the queue")
        time.sleep(0.2)


def line(what: str, label: str, times: list[float]) -> float:
    m = statistics.median(times)
    print(
        f"[{what}] {label}: median {m * 1000:.0f} ms  [{', '.join(f'{t * 1000:.0f}' for t in times)}]"
    )
    return m


def queue(repeat: int, others: int) -> None:
    blocks = 3
    per_block = max(1, repeat // blocks)
    got: dict[str, dict[str, list[float]]] = {
        "core": {"none": [], "others": []},
        "cli": {"none": [], "others": []},
    }
    in_process(), cli_list()  # warm imports and caches
    for _ in range(blocks):
        for condition in ("none", "others"):
            if condition == "others":
                submit_others(others)
            for _ in range(per_block):
                got["core"][condition].append(timed(in_process))
                got["cli"][condition].append(timed(cli_list))
            if condition == "others":
                cancel_others()
    for how, label in (("core", "list_clusters() in process"), ("cli", "CLI process")):
        none = line("queue", f"{label}, no other jobs", got[how]["none"])
        full = line("queue", f"{label}, {others} other jobs held", got[how]["others"])
        print(f"[queue] {label}: ratio with/without {full / none:.2f} (aim <= 1.10)", flush=True)


def registry(repeat: int, homes: dict[str, str], refresh: Callable[[], None]) -> None:
    """Each registry in turn (the order rotating every round), in process and as a CLI;
    ``refresh`` (untimed) before each round keeps every copy's heartbeat fresh."""

    def at(home: str, f: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            os.environ["AIINFRA_HOME"] = home
            f()

        return run

    for label, f in (("list_clusters() in process", in_process), ("CLI process", cli_list)):
        runs = [(name, at(home, f)) for name, home in homes.items()]
        times: dict[str, list[float]] = {name: [] for name in homes}
        for _, run in runs:
            run()  # warm
        for i in range(repeat):
            refresh()
            for name, run in runs[i % len(runs) :] + runs[: i % len(runs)]:
                times[name].append(timed(run))
        medians = {name: line("registry", f"{label}, {name}", t) for name, t in times.items()}
        empty, *rest = medians
        for name in rest:
            diff = (medians[name] - medians[empty]) * 1000
            print(f"[registry] {label}: {name} - {empty}: {diff:+.0f} ms (aim <= +100 ms)")
        if len(rest) == 2:
            diff = (medians[rest[1]] - medians[rest[0]]) * 1000
            print(f"[registry] {label}: {rest[1]} - {rest[0]}: {diff:+.0f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--what", choices=("queue", "registry", "all"), default="all")
    parser.add_argument("--others", type=int, default=2000)
    parser.add_argument("--clusters", type=int, default=200)
    args = parser.parse_args()
    full_home = tempfile.mkdtemp(prefix="aiinfra-bench-")
    empty_home = tempfile.mkdtemp(prefix="aiinfra-bench-empty-")
    one_home = tempfile.mkdtemp(prefix="aiinfra-bench-one-")
    os.environ["AIINFRA_HOME"] = full_home
    slurm = None
    if "SLURM_CONF" not in os.environ:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from slurm_fixture import start_slurm

        slurm = start_slurm(Path(tempfile.mkdtemp(prefix="aiinfra-slurm-", dir="/tmp")))
        os.environ.update(slurm.env)

    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.slurm_queue import jobs_file
    from aiinfra_magics.clusters.spec import ClusterSpec

    manager = ClusterManager()
    try:
        spec = {"name": "hpc", "backend": "slurm", "workers": 1, **SPEC}
        manager.start(ClusterSpec.from_options(spec))
        deadline = time.monotonic() + 120
        while [j["state"] for j in manager.status("hpc").jobs] != ["RUNNING"]:
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster's job did not start")
            time.sleep(0.2)
        if args.what in ("queue", "all"):
            queue(args.repeat, args.others)
        if args.what in ("registry", "all"):
            from aiinfra_magics.clusters.registry import Registry

            jobs = jobs_file("hpc").read_text()
            # The one live cluster alone, in a registry of its own: what any listing of a
            # live cluster pays apart from the count.
            os.environ["AIINFRA_HOME"] = one_home
            one = Registry()
            jobs_file("hpc").write_text(jobs)
            os.environ["AIINFRA_HOME"] = full_home

            def refresh() -> None:  # what 200 living owners would keep writing
                record = manager.registry.read("hpc")
                for i in range(args.clusters - 1):
                    manager.registry.write({**record, "name": f"copy{i:03d}"})
                one.write(record)

            refresh()
            for i in range(args.clusters - 1):
                jobs_file(f"copy{i:03d}").write_text(jobs)
            listed = manager.list_clusters()
            assert len(listed) == args.clusters, listed
            assert {c.status for c in listed} == {"running"}, listed
            homes = {"empty registry": empty_home, "1 SLURM cluster": one_home}
            all_homes = {**homes, f"{args.clusters} SLURM clusters": full_home}
            registry(args.repeat, all_homes, refresh)
    finally:
        os.environ["AIINFRA_HOME"] = full_home
        for name in manager.registry.names():
            if name != "hpc":
                manager.registry.remove(name)
        manager.stop("hpc")
        if slurm is not None:
            from slurm_fixture import stop_slurm

            stop_slurm(slurm)
            shutil.rmtree(slurm.prefix, ignore_errors=True)
        shutil.rmtree(full_home, ignore_errors=True)
        shutil.rmtree(empty_home, ignore_errors=True)
        shutil.rmtree(one_home, ignore_errors=True)


if __name__ == "__main__":
    main()
