"""Dask Gateway through aiinfra vs the plain dask-gateway client, and the cost plugin's overhead.

1. Start + scale to 2 workers + first task, on one real ``dask-gateway-server``
   (local processes, loopback; started here, stopped at the end): the plain
   client (``new_cluster``, ``scale(2)``, ``get_client``) against
   ``%aiinfra cluster start --backend gateway --workers 2``, alternated.
2. A 10k-task graph on a 2-worker LocalCluster with and without the cost plugin,
   alternated.

Prints medians and ratios (aiinfra / plain; plugin / none).

    python benchmarks/gateway.py [--repeat 5] [--tasks 10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def gateway_runs(repeat: int) -> tuple[list[float], list[float]]:
    import dask.config
    import dask_gateway  # noqa: F401 - its config defaults first
    from gateway_server import forget, start_gateway
    from IPython.core.interactiveshell import InteractiveShell

    server = start_gateway(Path(tempfile.mkdtemp(prefix="aiinfra-bench-gw-")))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    flags = (
        f"--backend gateway --gateway-address {server.address} "
        f"--proxy-address {server.proxy_address} --gateway-auth simple --workers 2"
    )

    def plain() -> float:
        gw = server.client()
        t0 = time.perf_counter()
        cluster = gw.new_cluster(shutdown_on_close=True)
        cluster.scale(2)
        client = cluster.get_client(set_as_default=False)
        client.wait_for_workers(2, timeout=300)
        assert client.submit(abs, -1).result() == 1
        elapsed = time.perf_counter() - t0
        client.close()
        cluster.shutdown()
        forget(cluster)
        forget(gw)
        return elapsed

    def ours() -> float:
        t0 = time.perf_counter()
        shell.run_line_magic("aiinfra", f"cluster start bench {flags}")
        client = shell.user_ns["client"]
        client.wait_for_workers(2, timeout=300)
        assert client.submit(abs, -1).result() == 1
        elapsed = time.perf_counter() - t0
        shell.run_line_magic("aiinfra", "cluster stop bench")
        return elapsed

    with dask.config.set({"gateway.auth.kwargs": {"password": server.password}}):
        try:
            plain(), ours()  # warm imports on both paths
            plain_t, ours_t = [], []
            for _ in range(repeat):
                plain_t.append(plain())
                ours_t.append(ours())
        finally:
            server.stop()
    return plain_t, ours_t


def plugin_runs(repeat: int, tasks: int) -> tuple[list[float], list[float]]:
    """CPU seconds of this process (scheduler, client and 2 thread workers all live here:
    less at the mercy of other load on the machine than wall time)."""
    from distributed import Client, LocalCluster

    from aiinfra_magics.clusters.cost import CostPlugin

    def run(with_plugin: bool) -> float:
        kwargs = {"plugins": [CostPlugin()]} if with_plugin else {}
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0", scheduler_kwargs=kwargs,
            ) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            client.wait_for_workers(2)
            t0 = time.process_time()
            futures = client.map(abs, range(-tasks, 0))
            total = client.submit(sum, futures).result()
            elapsed = time.process_time() - t0
            assert total == tasks * (tasks + 1) // 2
            transitions.append(cluster.scheduler.transition_counter)
            return elapsed

    transitions: list[int] = []
    run(False), run(True)
    none_t, with_t = [], []
    for _ in range(repeat):
        none_t.append(run(False))
        with_t.append(run(True))
    # The plugin's only per-task work is the inherited no-op ``transition`` hook, which the
    # scheduler calls once per transition: that call's cost times the count bounds it.
    plugin = CostPlugin()
    per_call = min(timeit.repeat(lambda: plugin.transition("k", "a", "b", stimulus_id="s"),
                                 number=100_000, repeat=5)) / 100_000  # fmt: skip
    bound = per_call * statistics.median(transitions)
    print(f"  transitions per run {statistics.median(transitions):.0f}; no-op hook call "
          f"{per_call * 1e9:.0f} ns; bound on the plugin's share {bound:.4f} s")  # fmt: skip
    return none_t, with_t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--only", choices=("gateway", "plugin"), default=None)
    args = parser.parse_args()
    os.environ.setdefault("AIINFRA_HOME", tempfile.mkdtemp(prefix="aiinfra-bench-"))

    if args.only != "plugin":
        report_gateway(args.repeat)
    if args.only != "gateway":
        report_plugin(args.repeat, args.tasks)


def report_gateway(repeat: int) -> None:
    plain_t, ours_t = gateway_runs(repeat)
    p, o = statistics.median(plain_t), statistics.median(ours_t)
    print(f"gateway start + scale 2 + first task, median of {repeat}:")
    print(f"  plain dask-gateway client  {p:6.2f} s   {[round(t, 2) for t in plain_t]}")
    print(f"  aiinfra (magic)            {o:6.2f} s   {[round(t, 2) for t in ours_t]}")
    print(f"  ratio aiinfra / plain      {o / p:6.3f}")


def report_plugin(repeat: int, tasks: int) -> None:
    none_t, with_t = plugin_runs(repeat, tasks)
    n, w = statistics.median(none_t), statistics.median(with_t)
    print(f"{tasks}-task graph on 2 thread workers, CPU s of the process, median of {repeat}:")
    print(f"  no plugin                  {n:6.3f} s   {[round(t, 3) for t in none_t]}")
    print(f"  cost plugin                {w:6.3f} s   {[round(t, 3) for t in with_t]}")
    print(f"  ratio plugin / none        {w / n:6.3f}")


if __name__ == "__main__":
    main()
