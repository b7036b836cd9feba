"""The test SLURM itself: a job runs on it, and stopping it leaves no daemon behind."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psutil
from slurm_fixture import skip_without_slurm, start_slurm, stop_slurm, wait_for


def test_a_batch_job_runs_and_leaves_the_queue(slurm, tmp_path):
    out = tmp_path / "hello.out"
    job_id = slurm.run("sbatch", "--parsable", f"--output={out}", "--wrap", "echo hello").strip()
    assert job_id.isdigit()
    wait_for(lambda: not slurm.job_ids(), 60, "the job to finish")
    assert out.read_text().strip() == "hello"


def test_stop_leaves_no_daemon_running():
    skip_without_slurm()  # this test starts its own SLURM, without the session fixture
    prefix = Path(tempfile.mkdtemp(prefix="aiinfra-slurm-", dir="/tmp"))
    try:
        cluster = start_slurm(prefix)
        pids = dict(cluster.pids)
        assert set(pids) == {"munged", "slurmctld", "slurmd"}
        assert all(psutil.pid_exists(pid) for pid in pids.values())
        assert stop_slurm(cluster) == []
        assert not [pid for pid in pids.values() if psutil.pid_exists(pid)]
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
