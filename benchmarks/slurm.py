"""From ``cluster start --backend slurm`` + ``scale 2`` to 2 workers, against raw dask-jobqueue.

Peer, measured in the same run on the same one-node SLURM and alternated with ours:
``SLURMCluster(cores=1, memory='1GB', ...)`` + ``scale(2)`` + ``Client.wait_for_workers(2)``.
Ours: ``%aiinfra cluster start`` (which also runs ``sbatch --test-only`` first) +
``%aiinfra cluster scale NAME 2`` (which returns once the scheduler sees 2 workers).
Brings up its own SLURM (tests/slurm_fixture.py) unless SLURM_CONF is set.

    python benchmarks/slurm.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SPEC = dict(cores=1, memory="1GB", walltime="00:10:00", interface="lo")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("AIINFRA_HOME", tempfile.mkdtemp(prefix="aiinfra-bench-"))
    slurm = None
    if "SLURM_CONF" not in os.environ:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from slurm_fixture import start_slurm

        slurm = start_slurm(Path(tempfile.mkdtemp(prefix="aiinfra-slurm-", dir="/tmp")))
        os.environ.update(slurm.env)
    try:
        run(args.repeat, slurm)
    finally:
        if slurm is not None:
            import shutil

            from slurm_fixture import stop_slurm

            stop_slurm(slurm)
            shutil.rmtree(slurm.prefix, ignore_errors=True)


def run(repeat: int, slurm) -> None:
    from dask_jobqueue import SLURMCluster
    from distributed import Client
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    logs = tempfile.mkdtemp(prefix="aiinfra-bench-logs-")
    flags = " ".join(f"--{k} {v}" for k, v in SPEC.items())

    def drained() -> None:
        if slurm is not None:
            slurm.cancel_all()

    def raw() -> float:
        t0 = time.perf_counter()
        cluster = SLURMCluster(
            **SPEC, processes=1, log_directory=logs,
            scheduler_options={"dashboard_address": "127.0.0.1:0"},
        )  # fmt: skip
        cluster.scale(2)
        client = Client(cluster)
        client.wait_for_workers(2)
        elapsed = time.perf_counter() - t0
        client.close()
        cluster.close()
        drained()
        return elapsed

    def ours() -> float:
        t0 = time.perf_counter()
        shell.run_line_magic("aiinfra", f"cluster start bench --backend slurm {flags}")
        info = shell.run_line_magic("aiinfra", "cluster scale bench 2")
        elapsed = time.perf_counter() - t0
        assert info.workers == 2, info
        shell.run_line_magic("aiinfra", "cluster stop bench")
        drained()
        return elapsed

    raw(), ours()  # warm imports for both
    raw_t, ours_t = [], []
    for _ in range(repeat):
        raw_t.append(raw())
        ours_t.append(ours())
    r, o = statistics.median(raw_t), statistics.median(ours_t)
    print(f"raw SLURMCluster + scale(2) + wait_for_workers(2): median {r:.2f}s  {raw_t}")
    print(f"aiinfra cluster start + scale 2:                  median {o:.2f}s  {ours_t}")
    print(f"ratio ours/raw: {o / r:.2f}")


if __name__ == "__main__":
    main()
