"""Pipelines on a SLURM cluster: steps run in kernels inside the jobs, the record names them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from slurm_fixture import wait_for

from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.pipelines.record import RunRecord

CLI = [sys.executable, "-m", "aiinfra_magics"]
# What the kernel saw: proves the step's kernel ran inside a SLURM job.
STEP = (
    "import json, os, socket\n"
    "for p in product:\n"
    "    os.makedirs(os.path.dirname(p) or '.', exist_ok=True)\n"
    "    json.dump({'job': os.environ.get('SLURM_JOB_ID'), 'host': socket.gethostname()},"
    " open(p, 'w'))"
)
PARAMS = "upstream = {}\nproduct = []"


def make_notebook(path: Path, params: str, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(params)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def slurm_spec(name: str, **extra: object) -> ClusterSpec:
    return ClusterSpec.from_options(
        {
            "name": name,
            "backend": "slurm",
            "cores": 1,
            "memory": "1GB",
            "walltime": "00:10:00",
            "interface": "lo",
            **extra,
        }  # fmt: skip
    )


def three_steps(folder: Path) -> Path:
    """prepare -> (train, evaluate): three steps, two of them able to run at once."""
    for name in ("prepare", "train", "evaluate"):
        make_notebook(folder / f"{name}.ipynb", PARAMS, STEP)
    path = folder / "pipeline.yaml"
    spec = {
        "name": "onslurm",
        "defaults": {"timeout": 120},
        "steps": {
            "prepare": {"notebook": "prepare.ipynb", "products": ["data/prepare.json"]},
            "train": {
                "notebook": "train.ipynb",
                "after": ["prepare"],
                "products": ["out/train.json"],
            },
            "evaluate": {
                "notebook": "evaluate.ipynb",
                "after": ["prepare"],
                "products": ["out/evaluate.json"],
            },
        },
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_three_step_pipeline_runs_in_the_jobs_and_names_them(slurm, tmp_path):
    manager = ClusterManager()
    manager.start(slurm_spec("hpc", workers=2))
    try:
        wait_for(lambda: manager.status("hpc").workers == 2, 120, "two SLURM workers")
        jobs = {j["job_id"] for j in manager.status("hpc").jobs}
        assert len(jobs) == 2
        path = three_steps(tmp_path / "pipe")
        proc = subprocess.run(
            [*CLI, "pipeline", "run", str(path), "--cluster", "hpc"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        run = RunRecord.load(path.parent)
        assert run.status == "ok"
        assert run.data["cluster"]["name"] == "hpc"
        for name, step in run.steps.items():
            assert step["status"] == "ok", (name, step)
            assert step["slurm_job_id"] in jobs and step["slurm_node"] == slurm.node
            # The product landed in the pipeline folder, written by a kernel inside that job.
            (product,) = step["products"]
            seen = json.loads((path.parent / product).read_text())
            assert seen["job"] == step["slurm_job_id"]
    finally:
        manager.stop("hpc")


def _can_hide_folders() -> bool:
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True
    )
    return probe.returncode == 0


hides_folders = pytest.mark.skipif(
    not _can_hide_folders(), reason="needs mount namespaces (unshare -m) to hide a folder"
)


def python_that_cannot_see(folder: Path, wrapper: Path) -> Path:
    """A python for the jobs that runs with an empty tmpfs over ``folder``: a node-local
    folder of the same name, as on a cluster whose nodes do not share that filesystem."""
    wrapper.write_text(
        "#!/bin/sh\n"
        "exec unshare -m --propagation private sh -c "
        f'\'mount -t tmpfs none "$0" && exec "$@"\' {folder} {sys.executable} "$@"\n'
    )
    wrapper.chmod(0o700)
    return wrapper


@hides_folders
def test_a_worker_that_cannot_see_the_folder_is_one_clear_error(slurm, tmp_path):
    path = three_steps(tmp_path / "pipe")
    wrapper = python_that_cannot_see(path.parent, tmp_path / "python-elsewhere")
    manager = ClusterManager()
    manager.start(slurm_spec("blind", workers=1, python=str(wrapper)))
    try:
        wait_for(lambda: manager.status("blind").workers == 1, 120, "one SLURM worker")
        (job,) = [j["job_id"] for j in manager.status("blind").jobs]
        proc = subprocess.run(
            [*CLI, "pipeline", "run", str(path), "--cluster", "blind"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 1
        *_, line = proc.stderr.strip().splitlines()  # after the run's header line
        assert line.startswith("aiinfra: failed: cluster: worker tcp://127.0.0.1:")
        assert f"SLURM job {job}) cannot see the pipeline folder {path.parent}" in line
        assert "filesystem that every node of the cluster shares" in line
        assert not (path.parent / "data").exists()  # no step ran
    finally:
        manager.stop("blind")


@hides_folders
def test_a_worker_that_joins_after_the_start_is_checked_too(slurm, tmp_path):
    """Issue 25 item 11: ``--adapt 0:1`` has no worker when the run starts, so nothing can be
    checked up front; the job adaptive scaling submits must still be checked before its step."""
    path = three_steps(tmp_path / "pipe")
    wrapper = python_that_cannot_see(path.parent, tmp_path / "python-elsewhere")
    manager = ClusterManager()
    manager.start(slurm_spec("late", adapt="0:1", python=str(wrapper)))
    try:
        assert manager.status("late").workers == 0 and not manager.status("late").jobs
        proc = subprocess.run(
            [*CLI, "pipeline", "run", str(path), "--cluster", "late"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        manager.stop("late")
    assert proc.returncode == 1, proc.stderr
    *_, line = proc.stderr.strip().splitlines()
    assert line.startswith("aiinfra: failed: cluster: worker tcp://127.0.0.1:"), line
    assert f"cannot see the pipeline folder {path.parent}" in line
    run = RunRecord.load(path.parent)
    assert run.data["cluster"]["workers"] == 0  # nobody to check when the run began
    step = run.steps["prepare"]
    assert step["kind"] == "folder-not-shared" and step["error"] in line
    assert f"SLURM job {step['slurm_job_id']})" in line  # the job that joined later
