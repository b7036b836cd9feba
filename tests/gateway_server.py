"""A real ``dask-gateway-server`` for tests and benchmarks: local processes, simple auth, loopback.

Import the fixtures into a conftest or a test module
(``from gateway_server import gateway, gateway_server``), as tests/gateway does.

Everything binds to 127.0.0.1 on free ports (the proxy's own default is all
interfaces on :8000). Scheduler and worker commands are ``dask scheduler`` /
``dask worker``: distributed >= 2026.6 has no ``dask-scheduler`` script, which
the gateway would run by default.
"""

from __future__ import annotations

import contextlib
import getpass
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from aiinfra_magics.clusters.gateway_client import forget  # dask-gateway 2026.3 __del__ workaround

PASSWORD = "aiinfra-test"
MAX_WORKERS = 3  # the gateway's per-cluster cap (tests scale past it on purpose)

CONFIG = """\
# Written by tests/gateway_server.py
from dask_gateway_server.options import Float, Integer, Options, Select

c.DaskGateway.address = "127.0.0.1:{api_port}"       # private API (proxy -> gateway)
c.Proxy.address = "127.0.0.1:{port}"                 # public HTTP; default ':8000' = all interfaces
c.Proxy.tcp_address = "127.0.0.1:{port}"             # scheduler traffic (TLS SNI), same port
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {password!r}
c.DaskGateway.log_level = "INFO"

c.ClusterConfig.scheduler_cmd = [{dask!r}, "scheduler"]
# --host: the worker process otherwise listens on all interfaces (its nanny does not).
c.ClusterConfig.worker_cmd = [{dask!r}, "worker", "--host", "127.0.0.1"]
c.ClusterConfig.worker_cores = 1
c.ClusterConfig.worker_memory = "512 M"
c.ClusterConfig.scheduler_memory = "512 M"
c.ClusterConfig.cluster_max_workers = {max_workers}
c.UnsafeLocalBackend.clusters_directory = {clusters!r}
# The test session's marker lets the leftover-process guard see schedulers and workers too.
c.UnsafeLocalBackend.inherited_environment = [
    "PATH", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "AIINFRA_TEST_SESSION",
]


# gpu-sim: each worker declares one GPU resource (dask config through the environment),
# which aiinfra's cost plugin counts as a GPU: GPU-hours without a GPU.
ENVIRONMENTS = {{
    "basic": {{}},
    "gpu-sim": {{"DASK_DISTRIBUTED__WORKER__RESOURCES__GPU": "1"}},
}}


def options_handler(options):
    return {{
        "worker_cores": options.worker_cores,
        "worker_memory": int(options.worker_memory * 2**30),
        "idle_timeout": options.idle_timeout,
        "environment": ENVIRONMENTS[options.environment],
    }}


c.Backend.cluster_options = Options(
    Integer("worker_cores", default=1, min=1, max=2, label="Worker cores"),
    Float("worker_memory", default=0.5, min=0.25, max=2.0, label="Worker memory (GiB)"),
    Float("idle_timeout", default=0.0, min=0.0, label="Idle timeout (s, 0 = never)"),
    Select("environment", ["basic", "gpu-sim"], default="basic", label="Environment"),
    handler=options_handler,
)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class GatewayServer:
    """A running gateway: its public address, its password and how to stop it."""

    address: str
    proxy_address: str
    password: str
    directory: Path
    process: subprocess.Popen

    def env(self) -> dict[str, str]:
        """Environment that makes the dask-gateway client use this gateway by default."""
        return {
            "DASK_GATEWAY__ADDRESS": self.address,
            "DASK_GATEWAY__PROXY_ADDRESS": self.proxy_address,
            "DASK_GATEWAY__AUTH__TYPE": "basic",
            "DASK_GATEWAY__AUTH__KWARGS__PASSWORD": self.password,
        }

    def client(self, username: str | None = None):  # noqa: ANN201 - dask_gateway.Gateway
        """A plain dask-gateway client; by default the same user aiinfra's simple auth is."""
        from dask_gateway import Gateway
        from dask_gateway.auth import BasicAuth

        return Gateway(
            self.address,
            proxy_address=self.proxy_address,
            auth=BasicAuth(username or getpass.getuser(), self.password),
        )

    @contextlib.contextmanager
    def opened(self):  # noqa: ANN201
        """``client()`` closed for good afterwards (see ``forget``)."""
        gateway = self.client()
        try:
            yield gateway
        finally:
            forget(gateway)

    def stop_all_clusters(self) -> None:
        """Stop every cluster the test user has on this gateway (a test's clean-up)."""
        with self.opened() as gateway:
            for report in gateway.list_clusters():
                gateway.stop_cluster(report.name)

    def log(self) -> str:
        return (self.directory / "server.log").read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the server (it stops its clusters); SIGKILL whatever is left after."""
        stop_gateway(self.process, timeout)


def start_gateway(directory: Path, timeout: float = 120.0) -> GatewayServer:
    directory = Path(directory)
    (directory / "clusters").mkdir(parents=True, exist_ok=True, mode=0o700)
    port, api_port = free_port(), free_port()
    dask = str(Path(sys.executable).with_name("dask"))
    config = CONFIG.format(
        api_port=api_port,
        port=port,
        password=PASSWORD,
        dask=dask,
        max_workers=MAX_WORKERS,
        clusters=str(directory / "clusters"),
    )
    (directory / "dask_gateway_config.py").write_text(config)
    server = str(Path(sys.executable).with_name("dask-gateway-server"))
    log = open(directory / "server.log", "wb")  # noqa: SIM115 - the child keeps it
    process = subprocess.Popen(
        [server, "-f", str(directory / "dask_gateway_config.py")],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: stopping it never signals pytest
    )
    log.close()
    address = f"http://127.0.0.1:{port}"
    gateway = GatewayServer(address, f"gateway://127.0.0.1:{port}", PASSWORD, directory, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"dask-gateway-server exited ({process.returncode}):\n{gateway.log()}"
            )
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{address}/api/health", timeout=2) as reply:
                if reply.status == 200:
                    return gateway
        if time.monotonic() > deadline:
            gateway.stop()
            raise RuntimeError(
                f"dask-gateway-server did not answer in {timeout:g}s:\n{gateway.log()}"
            )
        time.sleep(0.2)


def stop_gateway(process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Stop the server and everything it started (proxy, schedulers, workers)."""
    try:
        tree = [process.pid, *(c.pid for c in psutil.Process(process.pid).children(recursive=True))]
    except psutil.Error:
        tree = [process.pid]
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    # Schedulers and workers run in their own sessions; the server stops them on SIGTERM,
    # this only catches what a failed shutdown left behind.
    for pid in tree[1:]:
        with contextlib.suppress(psutil.Error):
            child = psutil.Process(pid)
            child.terminate()
            child.wait(10)


@pytest.fixture(scope="session")
def gateway_server(tmp_path_factory) -> GatewayServer:
    server = start_gateway(tmp_path_factory.mktemp("gateway"))
    yield server
    server.stop()


@pytest.fixture
def gateway(gateway_server, monkeypatch) -> GatewayServer:
    """The session's gateway, made the dask-gateway client's default for this test."""
    import dask.config
    import dask_gateway  # noqa: F401 - loads its config defaults before we override them

    for key, value in gateway_server.env().items():
        monkeypatch.setenv(key, value)
    with dask.config.set(
        {
            "gateway.address": gateway_server.address,
            "gateway.proxy-address": gateway_server.proxy_address,
            "gateway.auth.type": "basic",
            "gateway.auth.kwargs": {"password": gateway_server.password},
        }
    ):
        yield gateway_server
