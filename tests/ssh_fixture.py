"""A real OpenSSH server on loopback for the SSH-cluster tests: the "hosts" are 127.0.0.1 and
127.0.0.2 (all of 127/8 is this machine).

Import the fixtures into a conftest (``from ssh_fixture import sshd, sshd_server``).
``sshd_server`` (session) runs one private ``sshd -D`` as the current user on a free high port
of both addresses, with its own host key and one client key, all in a 0700 folder; at the end
it stops that sshd by its pid and removes the folder. Every session it opens carries the test
session's marker (``SetEnv``), so tests/conftest.py's leftover guard sees remote workers too.

Tests are skipped, with the reason, only when ``sshd`` or ``ssh-keygen`` is missing (``make
test`` installs openssh-server and openssh-client through apt).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from waiting import wait_for

HOSTS = ("127.0.0.1", "127.0.0.2")
START_TIMEOUT_S = 60.0


def sshd_binary() -> str | None:
    return shutil.which("sshd") or shutil.which("sshd", path="/usr/sbin:/usr/local/sbin")


@dataclass
class Sshd:
    """One running private sshd, and what a client needs to reach it."""

    folder: Path
    port: int
    key: Path  # the client's private key
    known_hosts: Path  # both hosts' real host key, as OpenSSH writes it for a non-22 port
    config: Path  # an OpenSSH client config naming port, key, known hosts and user
    host_key_line: str  # "ssh-ed25519 AAAA..." of the server
    user: str
    proc: subprocess.Popen
    hosts: tuple[str, ...] = HOSTS

    def flags(self, hosts: str | None = None) -> str:
        """Connection flags of ``cluster start --backend ssh`` for this server."""
        return (
            f"--backend ssh --hosts {hosts or ','.join(self.hosts)} --ssh-port {self.port} "
            f"--ssh-key {self.key} --known-hosts {self.known_hosts} --ssh-user {self.user}"
        )

    def options(self, **extra: object) -> dict[str, object]:
        """The same as a ClusterSpec dict."""
        return {
            "backend": "ssh",
            "hosts": ",".join(self.hosts),
            "ssh_port": self.port,
            "ssh_key": str(self.key),
            "known_hosts": str(self.known_hosts),
            "ssh_user": self.user,
            **extra,
        }

    def run(self, host: str, command: str) -> subprocess.CompletedProcess:
        """Run ``command`` on ``host`` through the OpenSSH client and this server."""
        return subprocess.run(
            ["ssh", "-F", str(self.config), "-o", "BatchMode=yes", host, command],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def started_processes(self) -> list[psutil.Process]:
        """Every process running under this sshd's sessions now (sshd's own left out).

        Found by the process tree, not by environment: distributed retitles its schedulers
        and workers (setproctitle), which clobbers what /proc shows of their environment.
        Take a snapshot while the sessions run; orphans leave the tree.
        """
        try:
            tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            return []
        found = []
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                if proc.name() != "sshd":
                    found.append(proc)
        return found

    def wrong_known_hosts(self, path: Path) -> Path:
        """A known-hosts file naming another key for both hosts: a changed host key."""
        other = self.folder / "other_host_ed25519"
        if not other.exists():
            _keygen(other)
        key = " ".join(other.with_suffix(".pub").read_text().split()[:2])
        path.write_text("".join(f"[{h}]:{self.port} {key}\n" for h in self.hosts))
        return path


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )


def _free_port() -> int:
    """A port free on every test host address (sshd listens on each of them)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind((HOSTS[0], 0))
            port = sock.getsockname()[1]
        try:
            for host in HOSTS[1:]:
                with socket.socket() as other:
                    other.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port free on every test host address")


def skip_without_sshd() -> None:
    missing = [
        name
        for name, found in (
            ("sshd", sshd_binary()),
            ("ssh-keygen", shutil.which("ssh-keygen")),
            ("ssh", shutil.which("ssh")),
        )
        if not found
    ]
    if missing:
        pytest.skip(
            f"OpenSSH not installed (missing {', '.join(missing)}); "
            "`make test` installs openssh-server and openssh-client through apt"
        )


def start_sshd(folder: Path, hosts: tuple[str, ...] = HOSTS, like: Sshd | None = None) -> Sshd:
    """Start a private sshd under ``folder`` (0700); raise, with its log, if it does not answer.

    ``like``: another host of the same kind as that server's: the same port, host key and
    client key, listening on ``hosts`` only (a third address that can go away on its own).
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if like is None:
        host_key, client_key = folder / "host_ed25519", folder / "client_ed25519"
        _keygen(host_key)
        _keygen(client_key)
        port = _free_port()
    else:
        host_key, client_key, port = like.folder / "host_ed25519", like.key, like.port
    authorized = folder / "authorized_keys"
    shutil.copy(client_key.with_suffix(".pub"), authorized)
    authorized.chmod(0o600)
    user = getpass.getuser()
    mark = os.environ.get("AIINFRA_TEST_SESSION", "")
    listen = "".join(f"ListenAddress {h}:{port}\n" for h in hosts)
    (folder / "sshd_config").write_text(
        f"{listen}"
        f"HostKey {host_key}\n"
        f"PidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "PermitRootLogin prohibit-password\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "AllowTcpForwarding yes\n"
        "PermitUserEnvironment no\n"
        # Sessions carry the test session's marker: the leftover guard then sees what they start.
        + (f"SetEnv AIINFRA_TEST_SESSION={mark}\n" if mark else "")
        + "MaxStartups 100:30:200\n"  # several workers connect at once
        "MaxSessions 100\n"
        "LogLevel ERROR\n"
    )
    # sshd wants its privilege-separation folder even when it runs as an ordinary user.
    with contextlib.suppress(OSError):
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    log = folder / "sshd.log"
    proc = subprocess.Popen(
        [sshd_binary(), "-D", "-f", str(folder / "sshd_config"), "-E", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    host_key_line = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
    known_hosts = folder / "known_hosts"
    known_hosts.write_text("".join(f"[{h}]:{port} {host_key_line}\n" for h in hosts))
    config = folder / "ssh_config"
    config.write_text(
        f"Host {' '.join(hosts)}\n"
        f"  Port {port}\n"
        f"  IdentityFile {client_key}\n"
        f"  UserKnownHostsFile {known_hosts}\n"
        "  StrictHostKeyChecking yes\n"
        f"  User {user}\n"
    )
    server = Sshd(folder, port, client_key, known_hosts, config, host_key_line, user, proc, hosts)
    try:
        for host in hosts:
            wait_for(
                lambda host=host: (
                    proc.poll() is not None or server.run(host, "true").returncode == 0
                ),
                START_TIMEOUT_S,
                f"sshd on {host}:{port}",
                interval=0.2,
            )
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited ({proc.returncode})")
    except BaseException as exc:
        stop_sshd(server)
        text = log.read_text()[-2000:] if log.exists() else "(no log)"
        raise RuntimeError(f"sshd did not come up under {folder}: {exc}\n{text}") from None
    return server


def stop_sshd(server: Sshd) -> None:
    """Stop the sshd by its pid (TERM, then KILL); its sessions close with it."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(10)


@pytest.fixture(scope="session")
def sshd_server():
    """The session's private sshd (skipped only when OpenSSH is missing)."""
    skip_without_sshd()
    folder = Path(tempfile.mkdtemp(prefix="aiinfra-sshd-"))
    server = start_sshd(folder / "sshd")
    try:
        yield server
    finally:
        stop_sshd(server)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def sshd(sshd_server):
    """The session's sshd, for one test."""
    return sshd_server
