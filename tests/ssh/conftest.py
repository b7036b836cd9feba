"""A real OpenSSH server on loopback for the whole session (see tests/ssh_fixture.py)."""

from __future__ import annotations

from ssh_fixture import sshd, sshd_server  # noqa: F401 - fixtures for this folder
