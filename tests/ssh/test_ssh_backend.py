"""``--backend ssh`` against a real sshd: start, compute, list, status per host, scale, stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal

import dask
import psutil
import pytest
from aiinfra_cli import aiinfra
from distributed import Client
from waiting import wait_for

from aiinfra_magics.clusters.backends import describe_backends
from aiinfra_magics.clusters.history import read_history
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec


def hosts_of(client: Client) -> list[str]:
    return sorted(w.split("//")[1].rsplit(":", 1)[0] for w in client.scheduler_info()["workers"])


def gone(procs: list[psutil.Process]) -> bool:
    """None of ``procs`` runs any more (zombies count as gone)."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return False
    return True


def session_processes() -> list[psutil.Process]:
    """Every process of this test session, here and on the "hosts"."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("AIINFRA_TEST_SESSION") == os.environ["AIINFRA_TEST_SESSION"]:
                found.append(proc)
    return found


def test_backend_and_its_options_are_declared_everywhere():
    (ssh,) = [b for b in describe_backends() if b["name"] == "ssh"]
    assert ssh["usable"] is True
    names = {o["name"] for o in ssh["options"]}
    assert {
        "hosts", "scheduler", "ssh_user", "ssh_key", "ssh_port", "known_hosts", "ssh_config",
        "remote_python", "workers_per_host", "gpus_per_host",
    } <= names  # fmt: skip
    help_text = aiinfra("cluster", "start", "-h", timeout=60).stdout
    for flag in ("--hosts", "--ssh-key", "--known-hosts", "--remote-python", "--gpus-per-host"):
        assert flag in help_text


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"hosts": "a b"}, "hosts"),
        ({"hosts": "gpu1;rm -rf /"}, "hosts"),
        ({"hosts": "a", "ssh_port": 0}, "ssh-port"),
        ({"hosts": "a", "scheduler": "elsewhere"}, "scheduler"),
        ({"hosts": "a", "gpus_per_host": "lots"}, "gpus-per-host"),
        ({"hosts": "a", "remote_python": "py\nthon"}, "remote-python"),
    ],
)
def test_bad_values_name_the_field(options, field):
    with pytest.raises(ValueError, match=f"^{field}: got "):
        ClusterSpec.from_options({"backend": "ssh", **options})


def test_hosts_are_required():
    spec = ClusterSpec.from_options({"backend": "ssh", "name": "nohosts"})
    with pytest.raises(ValueError, match="^hosts: required with --backend ssh"):
        ClusterManager().prepare(spec)


def test_start_compute_scale_status_stop_with_the_scheduler_on_the_first_host(sshd, aiinfra_home):
    manager = ClusterManager()
    # The client's dask config reaches the workers, but not through any command line.
    with dask.config.set({"aiinfra": {"audit-token": "not-in-argv-7f3a"}}):
        started = manager.start(ClusterSpec.from_options({"name": "boxes", **sshd.options()}))
    try:
        remote = sshd.started_processes()
        assert len(remote) >= 5  # the scheduler, two nannies, their workers
        seen = " ".join(" ".join(p.cmdline()) for p in session_processes() + remote)
        assert "not-in-argv-7f3a" not in seen
        assert started.info.workers == 2
        assert any("scheduler on 127.0.0.1; 2 worker(s)" in n for n in started.notes)
        # The scheduler binds the first host's address, not the machine's other interface.
        assert started.scheduler_address.startswith("tcp://127.0.0.1:")
        assert started.info.dashboard_link.startswith("http://127.0.0.1:")
        with Client(started.scheduler_address, timeout="20s") as client:
            assert hosts_of(client) == ["127.0.0.1", "127.0.0.2"]  # each bound where reached
            assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
            tokens = client.run(lambda: dask.config.get("aiinfra.audit-token", None))
            assert set(tokens.values()) == {"not-in-argv-7f3a"}
        (listed,) = [c for c in manager.list_clusters() if c.name == "boxes"]
        assert listed.backend == "ssh" and listed.workers == 2
        info = manager.scale("boxes", 3)
        assert info.workers == 3
        hosts = manager.status("boxes").data["ssh_hosts"]
        assert sorted(len(h["workers"]) for h in hosts.values()) == [1, 2]
        assert all(w["threads"] >= 1 for h in hosts.values() for w in h["workers"])
        # The owner also knows each worker's SSH session.
        sessions = [s for h in hosts.values() for s in h["sessions"]]
        assert len(sessions) == 3 and {s["session"] for s in sessions} == {"running"}
        assert manager.scale("boxes", 1).workers == 1
        record = json.loads((aiinfra_home / "clusters" / "boxes.json").read_text())
        assert str(sshd.key) in json.dumps(record)  # a path, never a key's content
        assert "PRIVATE KEY" not in json.dumps(record)
    finally:
        manager.stop("boxes")
    assert "boxes" not in [c.name for c in manager.list_clusters()]
    wait_for(lambda: gone(remote), 60, "the remote processes to end")
    assert read_history()[-1]["name"] == "boxes"


def test_cli_start_then_scale_and_stop_from_other_processes(sshd, aiinfra_home):
    """The daemon owns the SSH sessions; scale and stop from another process reach it through
    the remote scheduler (the relay), and the reply is the outcome."""
    flags = sshd.flags().split()
    proc = aiinfra("cluster", "start", "cli", *flags, "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["workers"] == 2
    remote = sshd.started_processes()
    try:
        scaled = aiinfra("cluster", "scale", "cli", "3", "--json", timeout=300)
        assert scaled.returncode == 0, scaled.stderr
        assert json.loads(scaled.stdout)["workers"] == 3
        remote += [p for p in sshd.started_processes() if p not in remote]
        status = aiinfra("cluster", "status", "cli", "--json", timeout=120)
        hosts = json.loads(status.stdout)["ssh_hosts"]  # from another process than the owner
        assert sorted(hosts) == ["127.0.0.1", "127.0.0.2"]
        assert sum(len(h["workers"]) for h in hosts.values()) == 3
    finally:
        stopped = aiinfra("cluster", "stop", "cli", timeout=180)
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: gone(remote), 60, "the remote processes to end")


def test_local_scheduler_and_an_owner_killed_leaves_nothing_on_the_hosts(sshd, aiinfra_home):
    """--scheduler local keeps it in the daemon; when the daemon is SIGKILLed the SSH sessions
    close and every remote process ends (no death_timeout wait, no orphan)."""
    flags = sshd.flags().split()
    proc = aiinfra(
        "cluster", "start", "here", *flags, "--scheduler", "local", "--json", timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((aiinfra_home / "clusters" / "here.json").read_text())
    try:
        shown = json.loads(proc.stdout)
        assert shown["workers"] == 2
        assert shown["scheduler_address"].startswith("tcp://127.0.0.1:")
        with Client(shown["scheduler_address"], timeout="20s") as client:
            assert client.submit(lambda: 41 + 1).result(timeout=60) == 42
        remote = sshd.started_processes()
        assert len(remote) >= 4  # two nannies and their workers
    finally:
        os.kill(record["owner"]["pid"], signal.SIGKILL)
    wait_for(lambda: gone(remote), 60, "the orphaned remote workers to end")
