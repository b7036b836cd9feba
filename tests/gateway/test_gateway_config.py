"""The gateway in dask's config (``gateway.address``, as JupyterHub/daskhub set it) is found
without ``aiinfra gateway add``, under the reserved name ``config``; auth names are
dask-gateway's (issue 25 item 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dask.config
import waiting
import yaml
from gateway_server import forget

from aiinfra_magics.clusters import gateway_store


def aiinfra(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aiinfra_magics", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def site_config(server, directory: Path) -> dict[str, str]:
    """An environment whose only gateway setting is a daskhub-style YAML file in DASK_CONFIG.

    The auth type is dask-gateway's own ``basic``, as a site writes it.
    """
    directory.mkdir()
    (directory / "gateway.yaml").write_text(
        yaml.safe_dump(
            {
                "gateway": {
                    "address": server.address,
                    "proxy-address": server.proxy_address,
                    "auth": {"type": "basic", "kwargs": {"password": server.password}},
                }
            }
        )  # fmt: skip
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_GATEWAY__")}
    return {**env, "DASK_CONFIG": str(directory)}


def test_configured_gateway_is_listed_connected_and_stopped(gateway_server, tmp_path):
    env = site_config(gateway_server, tmp_path / "dask-config")
    shown = json.loads(aiinfra("gateway", "list", "--json", env=env).stdout)
    assert shown == [
        {
            "name": "config",
            "address": gateway_server.address,
            "proxy_address": gateway_server.proxy_address,
            "auth": "basic",
        }
    ]
    options = aiinfra("gateway", "options", "config", env=env)
    assert options.returncode == 0 and "worker_cores" in options.stdout, options.stderr

    gw = gateway_server.client()
    plain = gw.new_cluster(shutdown_on_close=False)
    try:
        name = f"config-{plain.name[:8]}"
        listed = aiinfra("cluster", "list", "--json", env=env)
        assert listed.returncode == 0, listed.stderr
        (row,) = [r for r in json.loads(listed.stdout) if r["name"] == name]
        assert row["backend"] == "gateway" and row["owner"] == {
            "kind": "gateway",
            "gateway": "config",
            "cluster": plain.name,
        }
        stopped = aiinfra("cluster", "stop", name, env=env)
        assert stopped.returncode == 0, stopped.stderr
        waiting.wait_for(lambda: gw.list_clusters() == [], 180, "the gateway to drop it")
    finally:
        forget(plain)
        gateway_server.stop_all_clusters()
        forget(gw)


def test_config_name_is_reserved_and_a_registration_hides_the_config_entry(
    gateway_server, tmp_path
):
    env = site_config(gateway_server, tmp_path / "dask-config")
    refused = aiinfra("gateway", "add", "config", "http://127.0.0.1:1", env=env)
    assert refused.returncode == 2 and "name: got 'config'" in refused.stderr, refused.stderr
    removed = aiinfra("gateway", "remove", "config", env=env)
    assert removed.returncode == 2 and "gateway.address in dask's config" in removed.stderr

    # The same gateway registered by hand: listed once, under the user's name.
    assert aiinfra("gateway", "add", "lab", gateway_server.address + "/", env=env).returncode == 0
    names = [e["name"] for e in json.loads(aiinfra("gateway", "list", "--json", env=env).stdout)]
    assert names == ["lab"]


def test_entries_follow_dask_config_in_process(aiinfra_home):
    with dask.config.set({"gateway.address": None}):
        assert gateway_store.entries() == []
    with dask.config.set({
        "gateway.address": "http://127.0.0.1:1/gw/",
        "gateway.proxy-address": "gateway://127.0.0.1:2",
        "gateway.auth.type": "simple",  # the old name still means basic
    }):  # fmt: skip
        assert gateway_store.entries() == [
            {
                "name": "config",
                "address": "http://127.0.0.1:1/gw",
                "proxy_address": "gateway://127.0.0.1:2",
                "auth": "basic",
            }
        ]
        gateway_store.add("other", "http://127.0.0.1:3")
        assert [e["name"] for e in gateway_store.entries()] == ["other", "config"]


def test_auth_takes_dask_gateways_names_and_the_old_one(gateway_server, aiinfra_home, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_GATEWAY__")}
    env = {**env, "DASK_GATEWAY__AUTH__KWARGS__PASSWORD": gateway_server.password}
    for auth in ("basic", "simple"):
        added = aiinfra("gateway", "add", f"gw-{auth}", gateway_server.address,
                        "--proxy-address", gateway_server.proxy_address, "--auth", auth, env=env)  # fmt: skip
        assert added.returncode == 0, added.stderr
    assert {e["auth"] for e in gateway_store.entries()} == {"basic"}
    bad = aiinfra("gateway", "add", "x", "http://127.0.0.1:1", "--auth", "ldap", env=env)
    assert "auth: got 'ldap'; allowed: basic | jupyterhub | kerberos" in bad.stderr

    # A registration written by an older aiinfra says "simple": it still connects.
    store = gateway_store.store_path()
    data = json.loads(store.read_text())
    data["gw-basic"]["auth"] = "simple"
    store.write_text(json.dumps(data))
    shown = aiinfra("gateway", "options", "gw-basic", env=env)
    assert shown.returncode == 0 and "worker_cores" in shown.stdout, shown.stderr
