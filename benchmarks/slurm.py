"""SLURM benchmarks, each against a peer measured in the same run, alternated.

``magic`` (issue 24 aim 4): ``%aiinfra cluster start bench --backend slurm ... --workers 2``
then ``client.wait_for_workers(2)`` on the Client it binds, against raw dask-jobqueue
``SLURMCluster(n_workers=2, ...)`` + ``Client(cluster).wait_for_workers(2)`` in the same
process. Aim: at most 1.1x.

``cli`` (issue 24 aim 4): ``aiinfra cluster start hpc --backend slurm ... --workers 2`` as a
shell runs it, until the scheduler has 2 workers (polled from here every 50 ms), against a
fresh ``python -c`` process doing the same with raw dask-jobqueue until it prints that 2
workers are ready. Aim: at most 1.1x.

``start``: from ``cluster start --backend slurm`` + ``scale 2`` to 2 workers, against raw
dask-jobqueue ``SLURMCluster(cores=1, memory='1GB', ...)`` + ``scale(2)`` +
``Client.wait_for_workers(2)``. Ours: ``%aiinfra cluster start`` (which also runs
``sbatch --test-only`` first) + ``%aiinfra cluster scale NAME 2`` (which returns once the
scheduler sees 2 workers).

``pipeline``: the same 3-step pipeline (prepare -> train, evaluate; each a notebook in a
fresh kernel writing one product) with ``run_pipeline(cluster=NAME)`` on a running 2-worker
SLURM cluster (its start is not counted: see ``start``), against ``run_pipeline()`` on the
embedded local cluster (2 workers, its start counted: that is what a user waits for).

Brings up its own SLURM (tests/slurm_fixture.py) unless SLURM_CONF is set.

    python benchmarks/slurm.py [--repeat 5] [--what magic|cli|start|pipeline|aim4|all]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SPEC = dict(cores=1, memory="1GB", walltime="00:10:00", interface="lo")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--what", choices=("magic", "cli", "start", "pipeline", "aim4", "all"), default="aim4"
    )
    args = parser.parse_args()
    os.environ.setdefault("AIINFRA_HOME", tempfile.mkdtemp(prefix="aiinfra-bench-"))
    slurm = None
    if "SLURM_CONF" not in os.environ:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from slurm_fixture import start_slurm

        slurm = start_slurm(Path(tempfile.mkdtemp(prefix="aiinfra-slurm-", dir="/tmp")))
        os.environ.update(slurm.env)
    try:
        if args.what in ("magic", "aim4", "all"):
            magic(args.repeat, slurm)
        if args.what in ("cli", "aim4", "all"):
            cli(args.repeat, slurm)
        if args.what in ("start", "all"):
            run(args.repeat, slurm)
        if args.what in ("pipeline", "all"):
            pipeline(args.repeat)
    finally:
        if slurm is not None:
            import shutil

            from slurm_fixture import stop_slurm

            stop_slurm(slurm)
            shutil.rmtree(slurm.prefix, ignore_errors=True)


def drain(slurm) -> None:
    """Every job gone before the next round, so each starts on an empty node."""
    if slurm is not None:
        slurm.cancel_all()
    else:
        import subprocess

        def empty() -> bool:
            out = subprocess.run(["squeue", "-h", "-u", str(os.getuid()), "-o", "%i"],
                                 capture_output=True, text=True)  # fmt: skip
            return not out.stdout.split()

        deadline = time.monotonic() + 60
        while not empty() and time.monotonic() < deadline:
            time.sleep(0.2)


def alternated(repeat: int, raw, ours) -> tuple[list[float], list[float]]:
    """Each once to warm imports and caches, then ``repeat`` rounds, alternating who goes first."""
    raw(), ours()
    raw_t: list[float] = []
    ours_t: list[float] = []
    for i in range(repeat):
        for f, into in ((raw, raw_t), (ours, ours_t))[:: 1 if i % 2 == 0 else -1]:
            into.append(f())
    return raw_t, ours_t


def report(
    what: str, raw_t: list[float], ours_t: list[float], label_raw: str, label_ours: str
) -> None:
    r, o = statistics.median(raw_t), statistics.median(ours_t)
    fmt = ", ".join  # short lists: every figure, for the noise
    print(f"[{what}] {label_raw}: median {r:.2f}s  [{fmt(f'{t:.2f}' for t in raw_t)}]")
    print(f"[{what}] {label_ours}: median {o:.2f}s  [{fmt(f'{t:.2f}' for t in ours_t)}]")
    print(f"[{what}] ratio ours/raw: {o / r:.2f} (aim <= 1.10)", flush=True)


def _in_process() -> tuple[Any, Any, Any, str, str]:
    """What both in-process cases use: dask-jobqueue's class, Client, a shell with the
    magic loaded, a log folder and the magic's flags for SPEC."""
    from distributed import Client
    from IPython.core.interactiveshell import InteractiveShell

    from aiinfra_magics.clusters.slurm_submit import jobqueue

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    logs = tempfile.mkdtemp(prefix="aiinfra-bench-logs-")
    flags = " ".join(f"--{k} {v}" for k, v in SPEC.items())
    return jobqueue().SLURMCluster, Client, shell, logs, flags


def magic(repeat: int, slurm) -> None:
    """In one process: the magic with --workers 2 against SLURMCluster(n_workers=2)."""
    SLURMCluster, Client, shell, logs, flags = _in_process()  # noqa: N806 - a class

    def raw() -> float:
        t0 = time.perf_counter()
        cluster = SLURMCluster(
            **SPEC, processes=1, n_workers=2, log_directory=logs,
            scheduler_options={"dashboard_address": "127.0.0.1:0"},
        )  # fmt: skip
        client = Client(cluster)
        client.wait_for_workers(2)
        elapsed = time.perf_counter() - t0
        client.close()
        cluster.close()
        drain(slurm)
        return elapsed

    def ours() -> float:
        t0 = time.perf_counter()
        shell.run_line_magic("aiinfra", f"cluster start bench --backend slurm {flags} --workers 2")
        shell.user_ns["client"].wait_for_workers(2)
        elapsed = time.perf_counter() - t0
        shell.user_ns.pop("client").close()
        shell.run_line_magic("aiinfra", "cluster stop bench")
        drain(slurm)
        return elapsed

    report(
        "magic", *alternated(repeat, raw, ours),
        "raw SLURMCluster(n_workers=2) + Client.wait_for_workers(2)",
        "%aiinfra cluster start --workers 2 + client.wait_for_workers(2)",
    )  # fmt: skip


RAW_PROCESS = """\
import sys
from dask_jobqueue import SLURMCluster
from distributed import Client
cluster = SLURMCluster(cores=1, memory="1GB", walltime="00:10:00", interface="lo", processes=1,
                       n_workers=2, log_directory=sys.argv[1],
                       scheduler_options={"dashboard_address": "127.0.0.1:0"})
client = Client(cluster)
client.wait_for_workers(2)
print("ready", flush=True)
sys.stdin.read()  # hold the cluster until told to go (stdin closed)
client.close()
cluster.close()
"""


def cli(repeat: int, slurm) -> None:
    """Fresh processes: ``aiinfra cluster start ... --workers 2`` against raw dask-jobqueue."""
    import subprocess

    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.rpc import scheduler_identity

    logs = tempfile.mkdtemp(prefix="aiinfra-bench-logs-")
    flags = [a for k, v in SPEC.items() for a in (f"--{k}", str(v))]
    manager = ClusterManager()

    def raw() -> float:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", RAW_PROCESS, logs],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - t0
        assert line.strip() == "ready", line
        proc.stdin.close()
        proc.wait(60)
        drain(slurm)
        return elapsed

    def ours() -> float:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "aiinfra_magics", "cluster", "start", "hpc",
             "--backend", "slurm", *flags, "--workers", "2"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        address = manager.record("hpc")["scheduler_address"]
        deadline = time.monotonic() + 300
        while len(scheduler_identity(address).get("workers", {})) < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("2 workers did not come")
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        manager.stop("hpc")
        drain(slurm)
        return elapsed

    report(
        "cli", *alternated(repeat, raw, ours),
        "fresh python: raw SLURMCluster(n_workers=2) until 2 workers",
        "aiinfra cluster start --workers 2 until 2 workers",
    )  # fmt: skip


def run(repeat: int, slurm) -> None:
    SLURMCluster, Client, shell, logs, flags = _in_process()  # noqa: N806 - a class

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


STEP = (
    "import json, os\n"
    "for p in product:\n"
    "    os.makedirs(os.path.dirname(p) or '.', exist_ok=True)\n"
    "    json.dump({'job': os.environ.get('SLURM_JOB_ID')}, open(p, 'w'))"
)


def three_steps(folder: Path) -> Path:
    import nbformat
    import yaml

    for name in ("prepare", "train", "evaluate"):
        nb = nbformat.v4.new_notebook()
        first = nbformat.v4.new_code_cell("upstream = {}\nproduct = []")
        first.metadata["tags"] = ["parameters"]
        nb.cells = [first, nbformat.v4.new_code_cell(STEP)]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    spec = {
        "name": "bench",
        "steps": {
            "prepare": {"notebook": "prepare.ipynb", "products": ["data/prepare.json"]},
            "train": {"notebook": "train.ipynb", "after": ["prepare"], "products": ["out/t.json"]},
            "evaluate": {
                "notebook": "evaluate.ipynb",
                "after": ["prepare"],
                "products": ["out/e.json"],
            },
        },
    }
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def pipeline(repeat: int) -> None:
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec
    from aiinfra_magics.pipelines.runner import run_pipeline

    path = three_steps(Path(tempfile.mkdtemp(prefix="aiinfra-bench-pipe-")))
    manager = ClusterManager()
    manager.start(
        ClusterSpec.from_options({"name": "benchpipe", "backend": "slurm", "workers": 2, **SPEC})
    )
    try:
        deadline = time.monotonic() + 300
        while manager.status("benchpipe").workers < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("2 SLURM workers did not come")
            time.sleep(0.5)

        def timed(**kw) -> float:
            t0 = time.perf_counter()
            run = run_pipeline(path, force=True, **kw)
            elapsed = time.perf_counter() - t0
            assert run.status == "ok", run.summary()
            if kw.get("cluster"):
                assert all(s.get("slurm_job_id") for s in run.steps.values())
            return elapsed

        timed(cluster="benchpipe"), timed()  # warm imports for both
        on_slurm, local = [], []
        for _ in range(repeat):
            on_slurm.append(timed(cluster="benchpipe"))
            local.append(timed())
    finally:
        manager.stop("benchpipe")
    s, lo = statistics.median(on_slurm), statistics.median(local)
    print(f"3-step pipeline on the SLURM cluster (2 jobs): median {s:.2f}s  {on_slurm}")
    print(f"3-step pipeline, embedded local cluster:        median {lo:.2f}s  {local}")
    print(f"ratio slurm/local: {s / lo:.2f}")


if __name__ == "__main__":
    main()
