"""A fully cached re-run starts no cluster and no kernel, and loads none of their packages.

The CLI runs in a fresh interpreter under ``-X importtime``, which names every module
as it is imported. This checks behaviour, not speed (benchmarks/pipeline.py --overhead
times it): it fails the day the cached path imports papermill or starts a cluster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from aiinfra_magics.pipelines.runner import run_pipeline

#: What running a step needs and a cached run must not pay for (seconds each here).
RUN_ONLY = {
    "papermill", "nbformat", "jsonschema", "lark", "nbclient", "jupyter_client", "zmq",
    "distributed", "dask", "pyarrow",
}  # fmt: skip
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")


def cli_run(folder: Path, *extra: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aiinfra_magics", "pipeline", "run"]
        + ["pipeline.yaml", "--workers", "1", *extra],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "AIINFRA_HOME": str(folder / "home")},
        timeout=600,
    )
    lines = map(IMPORT_LINE.match, proc.stderr.splitlines())
    return proc, {m.group(1).split(".")[0] for m in lines if m}


def latest(folder: Path) -> dict:
    return json.loads(sorted((folder / "runs").glob("*/run.json"))[-1].read_text())


def test_cached_rerun_imports_and_starts_nothing_a_step_needs(tmp_path, notebook, pipeline_file):
    notebook(
        tmp_path / "a.ipynb",
        "product = []\nk = 1",
        "open(product[0], 'w').write(str(k))",
    )
    notebook(tmp_path / "b.ipynb", "upstream = {}", "print(open(upstream['a'][0]).read())")
    pipeline_file(
        tmp_path,
        {
            "steps": {
                "a": {"notebook": "a.ipynb", "params": {"k": 1}, "products": ["a.txt"]},
                "b": {"notebook": "b.ipynb", "after": ["a"]},
            }
        },
    )
    first = run_pipeline(tmp_path / "pipeline.yaml", workers=1)
    assert first.status == "ok", first.summary()

    proc, loaded = cli_run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = latest(tmp_path)
    assert {s["status"] for s in record["steps"].values()} == {"cached"}
    assert record["cluster"] is None  # no cluster was opened, so no kernel either
    assert not loaded & RUN_ONLY, f"a cached re-run imported {sorted(loaded & RUN_ONLY)}"

    # The probe can fail: once a step must run, the same command loads what runs it.
    proc, loaded = cli_run(tmp_path, "-p", "a.k=2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = latest(tmp_path)
    assert record["steps"]["a"]["status"] == "ok" and record["cluster"]["embedded"]
    assert "papermill" in loaded
    # ... and no more: papermill's HTTP and HDFS handlers' packages wait until a handler is
    # used (startup.py), the kernelspec search no longer imports IPython (kernel_pool.
    # kernel_dirs), and the run's own workers are threads without Dask (local_pool.py), so
    # none of them is on the way to the first step.
    not_needed = {"pyarrow", "urllib3", "requests", "IPython", "distributed", "dask"}
    assert not loaded & not_needed, sorted(loaded & not_needed)
