"""squeue is asked only about our clusters' jobs, never for the whole queue (issue 24 aim 5).

A site's queue holds 100k jobs and the sidebar re-lists every 5 s, so a listing must not
dump the queue. A ``squeue`` on PATH that records each call (its argv and what the real
squeue printed) and answers as the real one did shows what a listing asked for. The jobs
that are not the cluster's are real held jobs in the test SLURM.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from slurm_fixture import wait_for

from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.slurm import SlurmBackend
from aiinfra_magics.clusters.slurm_queue import jobs_file, note_submitted
from aiinfra_magics.clusters.spec import ClusterSpec

#: Above any id the test SLURM hands out in a session, below its MaxJobId (67043328).
UNKNOWN_JOB = "60000000"


class SqueueLog:
    """Each squeue call since the last ``clear``: argv and the rows the real squeue printed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def clear(self) -> None:
        for path in self.folder.glob("*"):
            path.unlink()

    def calls(self) -> list[str]:
        path = self.folder / "argv"
        return path.read_text().splitlines() if path.exists() else []

    def printed_ids(self) -> set[str]:
        path = self.folder / "stdout"
        lines = path.read_text().splitlines() if path.exists() else []
        return {line.split("|", 1)[0].strip() for line in lines if line.strip()}


@pytest.fixture
def squeue_log(slurm, tmp_path, monkeypatch) -> SqueueLog:
    real = shutil.which("squeue")
    assert real is not None
    bin_dir, log = tmp_path / "bin", tmp_path / "squeue-log"
    bin_dir.mkdir()
    log.mkdir()
    wrapper = bin_dir / "squeue"
    # Plain sh: the recording must not change what squeue answers (rc, stdout, stderr).
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> "{log}/argv"\n'
        f'"{real}" "$@" > "{log}/out.$$" 2> "{log}/err.$$"\n'
        "rc=$?\n"
        f'cat "{log}/out.$$" >> "{log}/stdout"\n'
        f'cat "{log}/out.$$"; cat "{log}/err.$$" >&2\n'
        f'rm -f "{log}/out.$$" "{log}/err.$$"\n'
        "exit $rc\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return SqueueLog(log)


def held_jobs(slurm, n: int) -> list[str]:
    """``n`` real jobs in the queue that are no cluster's (held: they never take the node)."""
    return [
        slurm.run("sbatch", "--hold", "--parsable", "-o", "/dev/null", "--wrap", "sleep 600")
        .strip()
        .split(";")[0]
        for _ in range(n)
    ]


def test_a_listing_asks_squeue_only_about_the_clusters_jobs(slurm, squeue_log, aiinfra_home):
    others = held_jobs(slurm, 3)
    manager = ClusterManager()
    spec = {"cores": 1, "memory": "1GB", "walltime": "00:10:00", "interface": "lo"}
    manager.start(
        ClusterSpec.from_options({"name": "hpc", "backend": "slurm", "workers": 1, **spec})
    )
    try:
        wait_for(lambda: bool(manager.status("hpc").jobs), 60, "the cluster's job in squeue")
        ours = [j["job_id"] for j in manager.status("hpc").jobs]
        assert ours and not set(ours) & set(others)

        squeue_log.clear()
        listed = {c["name"]: c for c in manager.list_clusters().to_dict()}
        assert [j["job_id"] for j in listed["hpc"]["jobs"]] == ours
        calls = squeue_log.calls()
        assert len(calls) == 1, calls
        # The other jobs are in the queue, but squeue was never asked to print them.
        printed = squeue_log.printed_ids()
        assert printed and not printed & set(others), (calls, printed, others)
    finally:
        manager.stop("hpc")


def test_one_squeue_for_all_clusters_and_forgotten_ids_do_not_hide_known_ones(
    slurm, squeue_log, aiinfra_home
):
    first, second, other = held_jobs(slurm, 3)
    # The files a cluster's owner writes as it submits; UNKNOWN_JOB is one SLURM has forgotten.
    note_submitted(jobs_file("a"), first)
    note_submitted(jobs_file("a"), UNKNOWN_JOB)
    note_submitted(jobs_file("b"), second)
    squeue_log.clear()
    a, b = SlurmBackend().live_details_many([{"name": "a"}, {"name": "b"}])
    assert [j["job_id"] for j in a["jobs"]] == [first]
    assert [j["job_id"] for j in b["jobs"]] == [second]
    assert a["queue"] == b["queue"] == "1 pending (JobHeldUser)"
    assert len(squeue_log.calls()) == 1, squeue_log.calls()
    assert other not in squeue_log.printed_ids()


def test_a_single_forgotten_job_is_no_error(slurm, squeue_log, aiinfra_home):
    # squeue fails ("Invalid job id specified") when its one id is unknown: that is "no jobs".
    note_submitted(jobs_file("gone"), UNKNOWN_JOB)
    details = SlurmBackend().live_details({"name": "gone"})
    assert details == {"jobs": [], "queue": "no jobs"}
    assert squeue_log.calls(), "squeue was not asked"


def test_an_empty_cluster_asks_squeue_nothing(slurm, squeue_log, aiinfra_home):
    held_jobs(slurm, 1)
    squeue_log.clear()
    assert SlurmBackend().live_details({"name": "idle"}) == {"jobs": [], "queue": "no jobs"}
    assert squeue_log.calls() == []
