"""``aiinfra cluster start --backend slurm`` from a shell: the checks run in the cluster daemon.

The CLI hands the spec to a daemon that imports dask-jobqueue anyway, so the
``sbatch --test-only`` check runs there (issue 24 aim 4: the CLI does not pay for
distributed twice). A refusal must still be the same one clear line, with nothing left.
"""

from __future__ import annotations

import subprocess
import sys

CLI = [sys.executable, "-m", "aiinfra_magics"]
FLAGS = ["--backend", "slurm", "--cores", "1", "--memory", "1GB", "--interface", "lo"]


def test_a_refused_job_script_is_one_clear_line_and_leaves_nothing(slurm, aiinfra_home):
    proc = subprocess.run(
        [*CLI, "cluster", "start", "bad", *FLAGS, "--partition", "nope"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "aiinfra: failed: partition: sbatch rejects the job script:"
    ), proc.stderr
    assert "nope" in lines[0]
    assert slurm.job_ids() == []
    assert not list((aiinfra_home / "clusters").glob("*.json"))
