"""Shared fixtures: a private registry per test and a guard against leftover processes.

Every process a test starts inherits AIINFRA_TEST_SESSION; at the end of the
session any such process still alive fails the run (and is killed, so one
failure does not poison the machine).
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import psutil
import pytest

try:
    from file_seconds import longest_first
except ImportError:  # loaded as the plugin ``tests.conftest`` (tests/test_gpu_marker.py's pytest)
    from tests.file_seconds import longest_first

SESSION_MARK = f"aiinfra-test-{uuid.uuid4().hex[:12]}"
os.environ["AIINFRA_TEST_SESSION"] = SESSION_MARK
# A shell without job control starts background commands with SIGINT ignored (`make test &`
# in a CI script), and an ignored signal stays ignored across exec: every CLI, kernel and
# server a test starts would then ignore the real SIGINT that the Ctrl-C and cancel tests
# send. A handled signal is reset to its default in exec'd children, so handle it here.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# A worker death timeout shorter than the default 60 s, so orphan checks finish sooner; tests
# that measure it set their own. Not shorter: distributed's Nanny also gives a worker process
# this long to start, and three xdist workers on a loaded 2-core machine took over 10 s.
os.environ.setdefault("AIINFRA_DEATH_TIMEOUT", "30")


def _marked_processes() -> list[psutil.Process]:
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            if proc.environ().get("AIINFRA_TEST_SESSION") != SESSION_MARK:
                continue
            # multiprocessing's resource tracker lives exactly as long as this pytest process.
            if proc.ppid() == me and "resource_tracker" in " ".join(proc.cmdline()):
                continue
            found.append(proc)
        except psutil.Error:
            continue
    return found


def leftover_processes(grace: float = 45.0) -> list[psutil.Process]:
    """Processes of this test session still alive after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while True:
        alive = [
            p for p in _marked_processes() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        ]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.25)


@pytest.fixture(autouse=True)
def aiinfra_home(tmp_path, monkeypatch):
    home = tmp_path / "aiinfra-home"
    monkeypatch.setenv("AIINFRA_HOME", str(home))
    yield home


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes():
    yield
    alive = leftover_processes()
    if alive:
        described = [f"{p.pid} {' '.join(p.cmdline()[:4])}" for p in alive]
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        pytest.fail(f"processes left running after the tests: {described}", pytrace=False)


@pytest.fixture
def ip():
    """An IPython InteractiveShell with the extension loaded; the clusters it owns closed and
    the names tests bind (``client``, ``res``) dropped after."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    yield shell
    from aiinfra_magics.clusters import host

    host.close_all()
    for name in ("client", "res"):
        shell.user_ns.pop(name, None)


def pytest_collection_modifyitems(config, items):
    """The longest files first (see longest_first); ``@pytest.mark.gpu`` tests are skipped,
    with NVML's reason, where NVML sees no GPU (pyproject.toml documents the marker so; the
    tests themselves need not check)."""
    longest_first(items)  # file_seconds.py
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    from aiinfra_magics.devices.nvml import gpu_probe

    probe = gpu_probe()
    if probe.count:
        return
    skip = pytest.mark.skip(reason=f"needs a real NVIDIA GPU: {probe.reason}")
    for item in gpu_items:
        item.add_marker(skip)
