"""The gateway backend end to end, on the real session gateway: magic, CLI, discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import waiting
from gateway_server import MAX_WORKERS, forget
from IPython.core.interactiveshell import InteractiveShell

from aiinfra_magics.clusters import history
from aiinfra_magics.clusters.manager import ClusterManager


def wait_for(predicate, timeout: float = 180.0, what: str = "condition"):
    return waiting.wait_for(predicate, timeout, what)


def flags(server) -> str:
    return (
        f"--backend gateway --gateway-address {server.address} "
        f"--proxy-address {server.proxy_address} --gateway-auth simple"
    )


def aiinfra(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aiinfra_magics", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **server.env()},
    )


@pytest.fixture
def ip():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    yield shell
    from aiinfra_magics.clusters import host

    host.close_all()
    client = shell.user_ns.pop("client", None)
    if client is not None:
        client.close()


def test_magic_start_scale_compute_stop(gateway, ip):
    ip.run_line_magic(
        "aiinfra", f"cluster start gw {flags(gateway)} --workers 1 --option worker_cores=2"
    )
    client = ip.user_ns["client"]
    assert client.submit(lambda x: x + 1, 1).result(timeout=180) == 2
    info = ClusterManager().scale("gw", 2)
    assert info.workers == 2 and info.threads == 4  # worker_cores=2 reached the gateway
    assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
    status = ClusterManager().status("gw").to_dict()
    assert status["backend"] == "gateway" and status["cost"]["workers_now"] == 2
    ip.run_line_magic("aiinfra", "cluster stop gw")
    with gateway.opened() as gw:
        assert gw.list_clusters() == []
    ended = [e for e in history.read_history() if e["name"] == "gw"]
    assert ended and ended[-1]["reason"] == "stopped" and ended[-1]["cost"]["worker_hours"] > 0


def test_cli_start_capped_scale_list_stop(gateway):
    started = aiinfra(gateway, "cluster", "start", "cli-gw", *flags(gateway).split(), "--json")
    assert started.returncode == 0, started.stderr
    try:
        scaled = aiinfra(gateway, "cluster", "scale", "cli-gw", str(MAX_WORKERS + 2), "--json")
        assert scaled.returncode == 0, scaled.stderr
        shown = json.loads(scaled.stdout)
        assert shown["workers"] == MAX_WORKERS
        assert any("capped by the gateway" in n and str(MAX_WORKERS) in n for n in shown["notes"])
        listed = json.loads(aiinfra(gateway, "cluster", "list", "--json").stdout)
        (row,) = [r for r in listed if r["name"] == "cli-gw"]
        assert row["cost"]["workers_now"] == MAX_WORKERS and row["owner"]["kind"] == "cli"
    finally:
        stopped = aiinfra(gateway, "cluster", "stop", "cli-gw")
    assert stopped.returncode == 0, stopped.stderr
    with gateway.opened() as gw:
        assert gw.list_clusters() == []
    (ended,) = [e for e in history.read_history() if e["name"] == "cli-gw"]
    assert ended["reason"] == "stopped"
    shown = json.loads(aiinfra(gateway, "cluster", "history", "--json").stdout)
    (row,) = [r for r in shown if r["name"] == "cli-gw"]
    assert row["reason"] == "stopped" and row["cost"]["worker_hours"] > 0


def test_list_options_starts_nothing(gateway):
    done = aiinfra(gateway, "cluster", "start", *flags(gateway).split(), "--list-options")
    assert done.returncode == 0, done.stderr
    assert "worker_cores" in done.stdout and "basic | gpu-sim" in done.stdout
    with gateway.opened() as gw:
        assert gw.list_clusters() == []
    bad = aiinfra(gateway, "cluster", "start", *flags(gateway).split(), "--option", "cores=2")
    assert bad.returncode == 2 and "option: this gateway has no option 'cores'" in bad.stderr


def test_plain_client_cluster_is_listed_connected_and_stopped(gateway):
    assert aiinfra(gateway, "gateway", "add", "lab", gateway.address,
                   "--proxy-address", gateway.proxy_address).returncode == 0  # fmt: skip
    gw = gateway.client()
    plain = gw.new_cluster(shutdown_on_close=False)
    try:
        plain.scale(1)
        name = f"lab-{plain.name[:8]}"
        listed = json.loads(aiinfra(gateway, "cluster", "list", "--json").stdout)
        (row,) = [r for r in listed if r["name"] == name]
        assert row["backend"] == "gateway" and row["owner"]["kind"] == "gateway"
        client = ClusterManager().connect(name)
        try:
            assert client.submit(lambda: 41 + 1).result(timeout=180) == 42
        finally:
            client.close()
        stopped = aiinfra(gateway, "cluster", "stop", name)
        assert stopped.returncode == 0, stopped.stderr
        wait_for(lambda: gw.list_clusters() == [], what="the gateway to drop the cluster")
    finally:
        forget(plain)
        gateway.stop_all_clusters()
        forget(gw)
