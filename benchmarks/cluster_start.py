"""Time from ``%aiinfra cluster start`` to a connected client, against raw Dask.

Peer, measured in the same run and alternated with ours: ``LocalCluster(n_workers=2)``
+ ``Client(cluster)``. Also times attach-by-name (``%aiinfra cluster connect``) to
an already running cluster. Prints medians and the ratio.

    python benchmarks/cluster_start.py [--repeat 7] [--backend local|cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backend", default="local")
    parser.add_argument("--workers", type=int, default=2, help="cuda: at most the number of GPUs")
    args = parser.parse_args()
    os.environ.setdefault("AIINFRA_HOME", tempfile.mkdtemp(prefix="aiinfra-bench-"))

    from distributed import Client, LocalCluster
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    n = args.workers

    def raw() -> float:
        t0 = time.perf_counter()
        if args.backend == "cuda":
            from dask_cuda import LocalCUDACluster

            cluster = LocalCUDACluster(n_workers=n, dashboard_address=":0")
        else:
            cluster = LocalCluster(n_workers=n, dashboard_address=":0")
        client = Client(cluster)
        elapsed = time.perf_counter() - t0
        client.close()
        cluster.close()
        return elapsed

    def ours() -> float:
        t0 = time.perf_counter()
        shell.run_line_magic(
            "aiinfra", f"cluster start bench --backend {args.backend} --workers {n}"
        )
        elapsed = time.perf_counter() - t0
        assert shell.user_ns["client"].submit(abs, -1).result() == 1
        shell.run_line_magic("aiinfra", "cluster stop bench")
        return elapsed

    raw(), ours()  # warm imports and the spawn machinery for both
    raw_t, ours_t = [], []
    for _ in range(args.repeat):
        raw_t.append(raw())
        ours_t.append(ours())

    shell.run_line_magic(
        "aiinfra", f"cluster start attach --backend {args.backend} --workers {n} --client-var owner"
    )
    attach_t = []
    for _ in range(args.repeat * 3):
        t0 = time.perf_counter()
        shell.run_line_magic("aiinfra", "cluster connect attach --client-var other")
        attach_t.append(time.perf_counter() - t0)
        shell.user_ns["other"].close()
    shell.run_line_magic("aiinfra", "cluster stop attach")

    r, o, a = statistics.median(raw_t), statistics.median(ours_t), statistics.median(attach_t)
    print(f"backend={args.backend} workers={n} repeat={args.repeat}")
    print(f"{'case':<42}{'median s':>10}")
    print(f"{'raw LocalCluster + Client':<42}{r:>10.3f}")
    print(f"{'%aiinfra cluster start (+ client)':<42}{o:>10.3f}")
    print(f"{'%aiinfra cluster connect NAME':<42}{a:>10.4f}")
    print(f"ratio ours/raw: {o / r:.3f}   attach: {a * 1000:.1f} ms")


if __name__ == "__main__":
    main()
