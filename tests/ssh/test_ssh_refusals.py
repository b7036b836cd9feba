"""Refusals before anything starts: one line naming the host and what failed, nothing left."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from aiinfra_cli import aiinfra

from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec
from aiinfra_magics.errors import AiinfraException


def refused(sshd, aiinfra_home, **extra: object) -> str:
    """Start through the CLI (the daemon runs the checks); the one line it printed."""
    options = sshd.options(**extra)
    flags = []
    for key, value in options.items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    proc = aiinfra("cluster", "start", "refused", *flags, timeout=300)
    assert proc.returncode in (1, 2), proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert not list((aiinfra_home / "clusters").glob("refused*.json"))  # no record
    return lines[0]


def test_an_unreachable_host_is_named(sshd, aiinfra_home):
    # 127.0.0.3 is this machine too, but nothing listens on the sshd port there.
    line = refused(sshd, aiinfra_home, hosts="127.0.0.1,127.0.0.3")
    assert line == (
        f"aiinfra: failed: hosts: 127.0.0.3:{sshd.port}: unreachable (Connection refused)"
    )


def test_a_changed_host_key_is_refused(sshd, aiinfra_home, tmp_path):
    wrong = sshd.wrong_known_hosts(tmp_path / "known_hosts")
    line = refused(sshd, aiinfra_home, known_hosts=str(wrong))
    assert line.startswith(f"aiinfra: failed: known-hosts: 127.0.0.1:{sshd.port}: host key SHA256:")
    assert f"does not match the one in {wrong}" in line


def test_an_unknown_host_key_is_never_trusted_on_first_use(sshd, aiinfra_home, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    line = refused(sshd, aiinfra_home, known_hosts=str(empty))
    assert f"known-hosts: 127.0.0.1:{sshd.port}: host key SHA256:" in line
    assert f"is not in {empty}; never trusted on first use" in line


def test_no_such_python_on_the_host(sshd, aiinfra_home):
    line = refused(sshd, aiinfra_home, remote_python="/opt/nowhere/bin/python3")
    assert line.startswith(
        "aiinfra: failed: remote-python: 127.0.0.1: no such Python '/opt/nowhere/bin/python3' ("
    )
    assert line.endswith("/opt/nowhere/bin/python3: No such file or directory)")  # the shell


def fake_release(tmp_path: Path, release: str) -> Path:
    """A python whose distributed reports another release (its metadata found first)."""
    site = tmp_path / "site"
    info = site / f"distributed-{release}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: distributed\nVersion: {release}\n"
    )
    wrapper = tmp_path / "python-old-distributed"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o700)
    return wrapper


def test_a_distributed_of_another_release_is_refused(sshd, aiinfra_home, tmp_path):
    wrapper = fake_release(tmp_path, "2024.1.0")
    line = refused(sshd, aiinfra_home, remote_python=str(wrapper))
    assert line.startswith(
        "aiinfra: failed: remote-python: 127.0.0.1: distributed 2024.1.0 there cannot talk to "
    )
    assert "install distributed==" in line


def test_a_python_without_distributed_is_refused(sshd, aiinfra_home, tmp_path):
    venv = tmp_path / "bare"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    line = refused(sshd, aiinfra_home, remote_python=str(venv / "bin" / "python"))
    assert line.startswith(
        f"aiinfra: failed: remote-python: 127.0.0.1: {venv / 'bin' / 'python'} has no "
        "distributed installed"
    )


def test_the_magic_door_refuses_the_same_way(sshd, aiinfra_home):
    spec = ClusterSpec.from_options(
        {"name": "m", **sshd.options(hosts="127.0.0.2,127.0.0.3", ssh_port=sshd.port)}
    )
    with pytest.raises(AiinfraException, match=r"^hosts: 127\.0\.0\.3:\d+: unreachable") as err:
        ClusterManager().start(spec)
    assert err.value.field == "hosts"
    assert "m" not in [c.name for c in ClusterManager().list_clusters()]


def test_with_no_known_hosts_file_at_all_nothing_is_trusted(sshd, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh: asyncssh has no key to trust
    options = sshd.options()
    del options["known_hosts"]
    spec = ClusterSpec.from_options({"name": "tofu", **options})
    with pytest.raises(AiinfraException) as err:
        ClusterManager().start(spec)
    assert re.fullmatch(
        rf"known-hosts: 127\.0\.0\.1:{sshd.port}: host key SHA256:\S+ is not in "
        r"~/\.ssh/known_hosts; never trusted on first use: .*--known-hosts FILE",
        str(err.value),
    ), str(err.value)
