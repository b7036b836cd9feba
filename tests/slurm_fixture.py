"""A real one-node SLURM for the tests: munged + slurmctld + slurmd in a private prefix.

Import the fixtures into a conftest (``from slurm_fixture import slurm, slurm_cluster``).
``slurm_cluster`` (session) starts the daemons once, bound to loopback on free ports,
with their own munge key and socket, pids in files; at the end it cancels every job
and stops each daemon by its pid, so nothing is left running. ``slurm`` (per test)
points SLURM_CONF at it and cancels the test's leftover jobs afterwards.

Tests are skipped, with the reason, only when the SLURM or munge binaries are
missing (``make test`` installs them through apt). A root container with no systemd
needs SlurmUser=root, proctrack/linuxproc, task/none, no accounting, a munge socket
folder with o+x, and RealMemory at least dask-jobqueue's ``--mem`` (slurm 22.05).
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
# Advertised, not detected (SlurmdParameters=config_overrides): the tests then see the
# same node on any machine; 4 one-core jobs fit, a fifth 1-core job or a 5-CPU job cannot.
NODE_CPUS = 4
NODE_MEMORY_MB = 4096  # must be >= the --mem dask-jobqueue writes (1GB -> --mem=954M)
PARTITION = "debug"
START_TIMEOUT_S = 60.0


@dataclass
class SlurmCluster:
    prefix: Path
    conf: Path
    node: str
    cpus: int = NODE_CPUS
    memory_mb: int = NODE_MEMORY_MB
    partition: str = PARTITION
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *args: str, check: bool = True) -> str:
        """Run a SLURM client command against this cluster; return stdout."""
        proc = subprocess.run(
            list(args), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=30
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout

    def job_ids(self) -> list[str]:
        return self.run("squeue", "-h", "-o", "%i").split()

    def cancel_all(self, timeout: float = 60.0) -> None:
        """Cancel every job and wait until squeue is empty."""
        self.run("scancel", f"--user={getpass.getuser()}", check=False)
        wait_for(lambda: not self.job_ids(), timeout, "jobs to leave the queue")


def _missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(path: Path, timeout: float) -> int:
    wait_for(lambda: path.exists() and path.read_text().strip().isdigit(), timeout, str(path))
    return int(path.read_text().strip())


def slurm_conf_text(p: Path, node: str, user: str, ctld_port: int, slurmd_port: int) -> str:
    return f"""\
ClusterName=aiinfratest
SlurmctldHost={node}(127.0.0.1)
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={p}/run/munge.socket
StateSaveLocation={p}/state
SlurmdSpoolDir={p}/spool
SlurmctldPidFile={p}/run/slurmctld.pid
SlurmdPidFile={p}/run/slurmd.pid
SlurmctldLogFile={p}/log/slurmctld.log
SlurmdLogFile={p}/log/slurmd.log
# no cgroups and no accounting daemon: works as root inside a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
# quick scheduling passes so pending/running states settle fast in tests
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=5
NodeName={node} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={NODE_MEMORY_MB} State=UNKNOWN
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def start_slurm(prefix: Path) -> SlurmCluster:
    """Bring up munged, slurmctld and slurmd under ``prefix``; raise if the node is not idle."""
    p = prefix
    for sub in ("etc", "run", "state", "spool", "log", "munge"):
        (p / sub).mkdir(parents=True, exist_ok=True)
    # munged refuses a socket whose directories lack o+x; the key directory stays private.
    for path in (p, p / "run"):
        path.chmod(0o755)
    (p / "munge").chmod(0o700)
    for path in (p / "etc", p / "state", p / "spool", p / "log"):
        path.chmod(0o700 if path.name != "log" else 0o755)
    key = p / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    cluster = SlurmCluster(prefix=p, conf=p / "etc" / "slurm.conf", node=socket.gethostname())
    cluster.node = cluster.node.split(".")[0]
    try:
        subprocess.run(
            [
                "munged",
                f"--socket={p}/run/munge.socket",
                f"--key-file={key}",
                f"--pid-file={p}/run/munged.pid",
                f"--log-file={p}/log/munged.log",
                f"--seed-file={p}/munge/munged.seed",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        cluster.pids["munged"] = _read_pid(p / "run" / "munged.pid", START_TIMEOUT_S)
        cluster.conf.write_text(
            slurm_conf_text(p, cluster.node, getpass.getuser(), _free_port(), _free_port())
        )
        env = {**os.environ, "SLURM_CONF": str(cluster.conf)}
        subprocess.run(
            ["slurmctld", "-c", "-f", str(cluster.conf)], check=True, env=env, timeout=30
        )
        cluster.pids["slurmctld"] = _read_pid(p / "run" / "slurmctld.pid", START_TIMEOUT_S)
        subprocess.run(
            ["slurmd", "-c", "-f", str(cluster.conf), "-N", cluster.node],
            check=True,
            env=env,
            timeout=30,
        )
        cluster.pids["slurmd"] = _read_pid(p / "run" / "slurmd.pid", START_TIMEOUT_S)

        def node_idle() -> bool:
            out = cluster.run("sinfo", "-h", "-n", cluster.node, "-o", "%t", check=False)
            return out.strip() == "idle"

        wait_for(node_idle, START_TIMEOUT_S, f"SLURM node {cluster.node} to be idle")
    except BaseException:
        logs = "\n".join(
            f"--- {f.name}\n{f.read_text()[-2000:]}" for f in sorted((p / "log").glob("*.log"))
        )
        stop_slurm(cluster)
        raise RuntimeError(f"SLURM did not come up under {p}:\n{logs}") from None
    return cluster


def stop_slurm(cluster: SlurmCluster) -> list[str]:
    """Cancel every job, then stop each daemon by its pid (TERM, then KILL). Return leftovers."""
    if cluster.pids.get("slurmctld") and _alive(cluster.pids["slurmctld"]):
        try:
            cluster.cancel_all(timeout=30)
        except (TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            pass  # the daemons go anyway; their job steps die with slurmd below
    # Also pids written by daemons we did not record yet (a start that failed half-way).
    for name in ("slurmd", "slurmctld", "munged"):
        pid_file = cluster.prefix / "run" / f"{name}.pid"
        if name not in cluster.pids and pid_file.exists():
            text = pid_file.read_text().strip()
            if text.isdigit():
                cluster.pids[name] = int(text)
    left = []
    for name in ("slurmd", "slurmctld", "munged"):
        pid = cluster.pids.get(name)
        if pid is None or not _alive(pid):
            continue
        os.kill(pid, signal.SIGTERM)
        try:
            wait_for(lambda pid=pid: not _alive(pid), 10, f"{name} to exit")
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            try:
                wait_for(lambda pid=pid: not _alive(pid), 10, f"{name} to die")
            except TimeoutError:
                left.append(f"{name} ({pid})")
    return left


def skip_without_slurm() -> None:
    """Skip the calling test, saying why, where the SLURM or munge binaries are missing."""
    missing = _missing_binaries()
    if missing:
        pytest.skip(
            f"SLURM not installed (missing {', '.join(missing)}); "
            "`make test` installs slurm-wlm and munge through apt"
        )


@pytest.fixture(scope="session")
def slurm_cluster():
    """The session's one-node SLURM (skipped only when the binaries are missing)."""
    skip_without_slurm()
    # Not pytest's tmp dir: that is 0700 and munged insists on o+x above its socket.
    prefix = Path(tempfile.mkdtemp(prefix="aiinfra-slurm-", dir="/tmp"))
    cluster = start_slurm(prefix)
    try:
        yield cluster
    finally:
        left = stop_slurm(cluster)
        shutil.rmtree(prefix, ignore_errors=True)
        if left:
            pytest.fail(f"SLURM daemons would not stop: {left}", pytrace=False)


@pytest.fixture
def slurm(slurm_cluster, monkeypatch):
    """SLURM_CONF set for this test; the test's jobs are cancelled after it."""
    for key, value in slurm_cluster.env.items():
        monkeypatch.setenv(key, value)
    yield slurm_cluster
    slurm_cluster.cancel_all()
