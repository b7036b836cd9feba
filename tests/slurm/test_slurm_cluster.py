"""The slurm backend against a real one-node SLURM: start, scale, queue, refusals, stop."""

from __future__ import annotations

import json
import subprocess
import sys

import dask.config
import psutil
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from slurm_fixture import wait_for

from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.errors import OperationError

CLI = [sys.executable, "-m", "aiinfra_magics"]
# Loopback only: scheduler and workers talk over lo, as every test must.
FLAGS = "--backend slurm --cores 1 --memory 1GB --walltime 00:10:00 --interface lo"


@pytest.fixture
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    yield shell
    from aiinfra_magics.clusters import host

    host.close_all()
    shell.user_ns.pop("client", None)


def processes_of(address: str) -> list[psutil.Process]:
    """Worker processes pointed at the scheduler ``address``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if address in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def states(info) -> list[tuple[str, str | None]]:
    return sorted((job["state"], job["reason"]) for job in info.to_dict().get("jobs", []))


def test_magic_start_scale_status_stop(ip, slurm):
    info = ip.run_line_magic("aiinfra", f"cluster start hpc {FLAGS}")
    assert info.backend == "slurm" and info.scheduler_address.startswith("tcp://127.0.0.1:")
    address = info.scheduler_address
    assert ip.run_line_magic("aiinfra", "cluster scale hpc 2").workers == 2
    status = ip.run_line_magic("aiinfra", "cluster status hpc")
    assert states(status) == [("RUNNING", None), ("RUNNING", None)]
    assert sorted(j["job_id"] for j in status.jobs) == sorted(slurm.job_ids())
    assert all(j["time_left"] and j["node"] == slurm.node for j in status.jobs)
    assert ip.user_ns["client"].submit(lambda x: x + 1, 1).result(timeout=60) == 2
    ip.run_line_magic("aiinfra", "cluster stop hpc")
    wait_for(lambda: not slurm.job_ids(), 60, "the queue to empty")
    wait_for(lambda: not processes_of(address), 60, "the workers to exit")


def test_cli_start_scale_status_stop(slurm, aiinfra_home):
    def cli(*argv: str) -> str:
        proc = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    cli("cluster", "start", "hpc", *FLAGS.split())
    try:
        cli("cluster", "scale", "hpc", "2")
        status = json.loads(cli("cluster", "status", "hpc", "--json"))
        assert status["workers"] == 2
        assert sorted(j["state"] for j in status["jobs"]) == ["RUNNING", "RUNNING"]
        assert "2 running" in cli("cluster", "status", "hpc")
    finally:
        cli("cluster", "stop", "hpc")
    wait_for(lambda: not slurm.job_ids(), 60, "the queue to empty")


def test_pending_job_shows_its_reason(slurm):
    manager = ClusterManager()
    # Each job takes the whole node: the second one waits for Resources.
    spec = ClusterSpec.from_options(
        {
            "name": "big",
            "backend": "slurm",
            "cores": slurm.cpus,
            "memory": "1GB",
            "walltime": "00:10:00",
            "interface": "lo",
        }  # fmt: skip
    )
    manager.start(spec)
    try:
        with dask.config.set({"aiinfra.scale-wait": "3s"}):  # one worker can come, not two
            scaled = manager.scale("big", 2)
        # issue 25 item 10: not silently the wrong count: how many joined, and the queue
        notes = scaled.to_dict().get("notes") or []
        assert any(" of 2 workers joined within " in n and "; jobs: " in n for n in notes), notes
        wait_for(
            lambda: states(manager.status("big")) == [("PENDING", "Resources"), ("RUNNING", None)],
            90,
            "one running and one pending job",
        )
        assert "1 pending (Resources)" in manager.status("big").queue
    finally:
        manager.stop("big")


def test_rejected_job_script_is_one_clear_error(ip, slurm):
    with pytest.raises(UsageError, match=r"^partition: sbatch rejects the job script: .*nope"):
        ip.run_line_magic("aiinfra", f"cluster start bad {FLAGS} --partition nope")
    with pytest.raises(
        OperationError, match=r"^sbatch rejects the job script: .*node configuration.*many cores"
    ):
        ClusterManager().start(
            ClusterSpec.from_options(
                {"name": "wide", "backend": "slurm", "cores": slurm.cpus + 1, "memory": "1GB"}
            )
        )
    assert slurm.job_ids() == []
    assert len(ClusterManager().list_clusters()) == 0


def test_worker_past_its_lifetime_is_replaced_under_adapt(slurm):
    manager = ClusterManager()
    spec = ClusterSpec.from_options(
        {
            "name": "short",
            "backend": "slurm",
            "cores": 1,
            "memory": "1GB",
            "walltime": "00:05:00",
            "lifetime": "15s",
            "interface": "lo",
            "adapt": "1:1",
        }  # fmt: skip
    )
    manager.start(spec)
    try:
        wait_for(lambda: manager.status("short").workers == 1, 90, "the first worker")
        first = {j["job_id"] for j in manager.status("short").jobs}

        def replaced() -> bool:
            info = manager.status("short")
            running = {j["job_id"] for j in info.jobs if j["state"] == "RUNNING"}
            return info.workers == 1 and bool(running) and not running & first

        wait_for(replaced, 180, "a new job to replace the retired worker")
    finally:
        manager.stop("short")
