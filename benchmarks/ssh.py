"""SSH cluster start against raw ``SSHCluster``, measured in the same run, alternated.

Ours: ``ClusterManager().start(--backend ssh --hosts 127.0.0.1,127.0.0.2)`` (the scheduler
on the first host, one worker on each; it probes both hosts first, checks the packages
after, installs the cost plugin and the control relay) until it returns, which is once
the scheduler has both workers. Peer: distributed's ``SSHCluster(["127.0.0.1",
"127.0.0.1", "127.0.0.2"], ...)`` (the same scheduler host and the same two workers, bound
to loopback) + ``Client(cluster).wait_for_workers(2)``. Each is closed before the next
starts. Aim (issue 27): at most 1.1x.

Brings up its own sshd (tests/ssh_fixture.py).

    python benchmarks/ssh.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def ours(server) -> float:
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec

    manager = ClusterManager()
    spec = ClusterSpec.from_options({"name": "bench", **server.options()})
    start = time.perf_counter()
    started = manager.start(spec)
    took = time.perf_counter() - start
    assert started.info.workers == 2, started.info.workers
    manager.stop("bench")
    return took


def raw(server) -> float:
    from distributed import Client, SSHCluster

    options = {
        "port": server.port,
        "username": server.user,
        "client_keys": [str(server.key)],
        "known_hosts": str(server.known_hosts),
    }
    start = time.perf_counter()
    cluster = SSHCluster(
        ["127.0.0.1", "127.0.0.1", "127.0.0.2"],
        connect_options=options,
        scheduler_options={"host": "127.0.0.1", "port": 0, "dashboard_address": "127.0.0.1:0"},
        worker_options={"host": "127.0.0.1", "nthreads": 1},
        remote_python=sys.executable,
    )
    with Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        took = time.perf_counter() - start
    cluster.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("AIINFRA_HOME", tempfile.mkdtemp(prefix="aiinfra-bench-"))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from ssh_fixture import start_sshd, stop_sshd

    folder = Path(tempfile.mkdtemp(prefix="aiinfra-sshd-"))
    server = start_sshd(folder / "sshd")
    try:
        ours(server), raw(server)  # warm: imports, page cache
        times: dict[str, list[float]] = {"ours": [], "raw SSHCluster": []}
        for _ in range(args.repeat):
            times["ours"].append(ours(server))
            times["raw SSHCluster"].append(raw(server))
    finally:
        stop_sshd(server)
        shutil.rmtree(folder, ignore_errors=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    for name, values in times.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:16s} median {median[name]:.2f} s  ({shown})")
    ratio = median["ours"] / median["raw SSHCluster"]
    print(f"start with 2 workers: {ratio:.2f}x raw SSHCluster (aim <= 1.10x)")


if __name__ == "__main__":
    main()
