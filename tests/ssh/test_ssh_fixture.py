"""The sshd fixture itself: both loopback "hosts" answer, sessions carry the test marker."""

from __future__ import annotations

import os

import asyncssh
import pytest


def test_both_hosts_answer_through_openssh(sshd):
    for host in sshd.hosts:
        done = sshd.run(host, "echo $AIINFRA_TEST_SESSION")
        assert done.returncode == 0, done.stderr
        # The leftover guard of tests/conftest.py sees whatever a session starts.
        assert done.stdout.strip() == os.environ["AIINFRA_TEST_SESSION"]


async def test_asyncssh_trusts_only_the_known_host_key(sshd, tmp_path):
    async with asyncssh.connect(
        "127.0.0.2",
        port=sshd.port,
        username=sshd.user,
        client_keys=[str(sshd.key)],
        known_hosts=str(sshd.known_hosts),
    ) as conn:
        assert (await conn.run("echo ok", check=True)).stdout.strip() == "ok"
    wrong = sshd.wrong_known_hosts(tmp_path / "known_hosts")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(
            "127.0.0.1",
            port=sshd.port,
            username=sshd.user,
            client_keys=[str(sshd.key)],
            known_hosts=str(wrong),
        )
