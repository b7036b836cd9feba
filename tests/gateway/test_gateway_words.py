"""``aiinfra gateway add|list|remove|options`` through the real CLI and the magic."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from aiinfra_magics.clusters import gateway_store


def aiinfra(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aiinfra_magics", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_add_list_options_remove(gateway, aiinfra_home):
    added = aiinfra(
        "gateway", "add", "lab", gateway.address, "--proxy-address", gateway.proxy_address
    )
    assert added.returncode == 0, added.stderr
    assert "registered" in added.stderr
    store = gateway_store.store_path()
    assert store.stat().st_mode & 0o777 == 0o600
    assert gateway.password not in store.read_text()  # no secret is stored

    listed = json.loads(aiinfra("gateway", "list", "--json").stdout)
    assert listed == [
        {
            "name": "lab",
            "address": gateway.address,
            "proxy_address": gateway.proxy_address,
            "auth": "basic",  # dask-gateway's name; the CLI's old default "simple" means it
        }
    ]

    shown = aiinfra("gateway", "options", "lab", env=gateway.env())
    assert shown.returncode == 0, shown.stderr
    assert (
        "worker_cores" in shown.stdout
        and "1..2" in shown.stdout
        and "basic | gpu-sim" in shown.stdout
    )

    assert aiinfra("gateway", "remove", "lab").returncode == 0
    # Left: the gateway that the fixture's dask config names, no longer hidden by "lab".
    left = json.loads(aiinfra("gateway", "list", "--json").stdout)
    assert [(e["name"], e["address"]) for e in left] == [("config", gateway.address)]


def test_bad_input_is_one_line_naming_the_field(aiinfra_home):
    cases = {
        ("gateway", "add", "Bad Name", "http://127.0.0.1:1"): "name: got 'Bad Name'",
        ("gateway", "add", "ok", "ftp://x"): "url: got 'ftp://x'; allowed: an http(s) URL",
        (
            "gateway",
            "add",
            "ok",
            "http://127.0.0.1:1",
            "--auth",
            "ldap",
        ): "auth: got 'ldap'; allowed: basic | jupyterhub | kerberos",
        (
            "gateway",
            "add",
            "ok",
            "http://127.0.0.1:1",
            "--proxy-address",
            "x y",
        ): "proxy-address: got 'x y'",
        ("gateway", "remove", "nope"): "name: no gateway named 'nope'",
        # issue 25 item 7: `$` in re.match accepted a trailing newline
        ("gateway", "add", "gw1", "http://host/gw\n"): "url: got 'http://host/gw\\n'",
        (
            "gateway",
            "add",
            "gw1",
            "http://127.0.0.1:1",
            "--proxy-address",
            "127.0.0.1:8786\n",
        ): "proxy-address: got '127.0.0.1:8786\\n'",
    }
    for argv, message in cases.items():
        done = aiinfra(*argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_unreachable_gateway_fails_in_one_line(aiinfra_home):
    assert aiinfra("gateway", "add", "gone", "http://127.0.0.1:9").returncode == 0
    done = aiinfra("gateway", "options", "gone")
    assert done.returncode == 1 and "gateway http://127.0.0.1:9: unreachable" in done.stderr
