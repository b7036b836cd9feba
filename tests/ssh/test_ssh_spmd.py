"""``%%aiinfra spmd`` across SSH hosts, and its start barrier (JAX on CPU, gloo)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading

import psutil
import pytest
from IPython.core.error import UsageError
from ssh_fixture import start_sshd, stop_sshd
from waiting import wait_for

from aiinfra_magics.errors import OperationError
from aiinfra_magics.jax.spmd import SpmdOptions, run_cell
from aiinfra_magics.jax.spmd_barrier import why_failed, why_missing

CELL = """
import os
from jax.experimental import multihost_utils
ids = multihost_utils.process_allgather(jnp.array([process_id])).ravel().tolist()
(process_id, jax.process_count(), ids, os.environ["SSH_CONNECTION"].split()[2])
"""


def session_processes(word: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if word in " ".join(proc.info["cmdline"] or []) and (
                proc.environ().get("AIINFRA_TEST_SESSION") == os.environ["AIINFRA_TEST_SESSION"]
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def worker_process_on(host: str, sshd) -> psutil.Process:
    """The Dask worker process (the nanny's child) that sshd started on ``host``."""
    for proc in sshd.started_processes():
        with contextlib.suppress(psutil.Error):
            if f"[tcp://{host}:" in " ".join(proc.cmdline()) and "worker" in proc.cmdline()[0]:
                return proc
    raise AssertionError(f"no worker process on {host}")


def test_an_spmd_cell_spans_two_ssh_hosts(ip, sshd):
    ip.run_line_magic("aiinfra", f"cluster start boxes {sshd.flags()}")
    assert ip.run_cell_magic("aiinfra", "spmd --cluster boxes --out res", CELL) is None
    assert ip.user_ns["res"] == [(0, 2, [0, 1], "127.0.0.1"), (1, 2, [0, 1], "127.0.0.2")]
    ip.run_line_magic("aiinfra", "cluster stop boxes")


class Recorder:
    """sys.stdout for one test: keeps every write (from any thread) and passes it on."""

    def __init__(self, passed_to) -> None:
        self.passed_to, self.parts, self.lock = passed_to, [], threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            self.parts.append(text)
        return self.passed_to.write(text)

    def flush(self) -> None:
        self.passed_to.flush()

    def text(self) -> str:
        with self.lock:
            return "".join(self.parts)


def test_each_process_output_reaches_the_cell_while_it_runs(ip, sshd, tmp_path, monkeypatch):
    """Issue 27 item 5: each process's stdout and stderr show in the cell, prefixed by its
    process id, while the cell still runs (here: every process waits for a file that the
    test creates only once it has seen their lines)."""
    go = tmp_path / "go"
    cell = f"""
import os, sys, time
host = os.environ["SSH_CONNECTION"].split()[2]
print(f"out of {{process_id}} on {{host}}", flush=True)
print(f"err of {{process_id}} on {{host}}", file=sys.stderr, flush=True)
deadline = time.monotonic() + 300  # bounds only a failed test: the test creates the file
while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
    time.sleep(0.05)
os.path.exists({str(go)!r})
"""
    out = Recorder(sys.stdout)
    monkeypatch.setattr(sys, "stdout", out)
    ip.run_line_magic("aiinfra", f"cluster start live {sshd.flags()}")
    ended: dict[str, object] = {}

    def run() -> None:
        try:
            ended["value"] = ip.run_cell_magic("aiinfra", "spmd --cluster live --out res", cell)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the test below
            ended["error"] = exc

    cell_thread = threading.Thread(target=run, name="spmd-cell")
    cell_thread.start()
    expected = [
        f"[p{pid}] {kind} of {pid} on {host}"
        for pid, host in enumerate(sshd.hosts)
        for kind in ("out", "err")
    ]
    try:
        wait_for(
            lambda: "error" in ended or all(line in out.text().splitlines() for line in expected),
            180,
            "every process's lines in the cell's output",
        )
        assert "error" not in ended, ended.get("error")
        # Seen while the cell runs: its processes are still waiting for the file.
        assert cell_thread.is_alive() and not go.exists()
    finally:
        go.touch()
        cell_thread.join(180)
    assert not cell_thread.is_alive(), "the cell did not end once the file was there"
    assert "error" not in ended, ended.get("error")
    assert ip.user_ns["res"] == [True, True]
    assert all(out.text().splitlines().count(line) == 1 for line in expected), out.text()
    ip.run_line_magic("aiinfra", "cluster stop live")
    wait_for(lambda: not session_processes("spmd_child"), 60, "no SPMD process left")


def test_a_host_that_never_joins_is_named_within_the_timeout(ip, sshd):
    """A hung host (its worker stopped): the cell fails by name after --join-timeout instead
    of hanging in jax.distributed.initialize, and no process of the cell is left running."""
    ip.run_line_magic("aiinfra", f"cluster start hung {sshd.flags()}")
    worker = worker_process_on("127.0.0.2", sshd)
    address = next(w for w in ip.user_ns["client"].scheduler_info()["workers"] if "127.0.0.2" in w)
    worker.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(UsageError) as err:
            ip.run_cell_magic("aiinfra", "spmd --cluster hung --join-timeout 5", CELL)
        assert str(err.value) == (
            f"spmd: process 1 on 127.0.0.2 (its worker {address} never started it "
            "(unresponsive or busy)) did not join within 5s; every process was stopped"
        )
        # Process 0 had joined and waited at the barrier: it was stopped.
        wait_for(lambda: not session_processes("spmd_child"), 60, "the joined process to stop")
    finally:
        worker.send_signal(signal.SIGCONT)
    # The woken worker finds its task given up (or stopped at the barrier): nothing starts.
    wait_for(lambda: not session_processes("spmd_child"), 90, "no SPMD process left")
    ip.run_line_magic("aiinfra", "cluster stop hung")


def test_a_process_that_cannot_import_jax_fails_the_barrier_by_name(tmp_path, monkeypatch):
    """Local SPMD, same barrier: an import error's first line, the process and its host."""
    broken = tmp_path / "site" / "jax"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('broken jax for the test')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    with pytest.raises(OperationError) as err:
        run_cell("1", SpmdOptions.from_options({"processes": 2, "platform": "cpu"}))
    # Whichever failed first (or both) is named, with the import error's first line.
    assert re.fullmatch(
        r"spmd: process [01] on 127\.0\.0\.1 \(cannot import jax: broken jax for the test\)"
        r"(; process 1 on 127\.0\.0\.1 \(cannot import jax: broken jax for the test\))? "
        r"failed before joining; every process was stopped",
        str(err.value),
    ), str(err.value)
    wait_for(lambda: not session_processes("spmd_child"), 60, "no SPMD process left")


def test_reasons_a_process_did_not_join():
    assert why_failed({"rc": -9, "error": "stopped by signal 9"}) == "killed by signal 9"
    assert (
        why_failed({"rc": 1, "error": "cannot import jax: No module named 'jax'\nmore"})
        == "cannot import jax: No module named 'jax'"
    )
    assert why_missing(None, "tcp://h:1", alive=False) == "its worker tcp://h:1 left the cluster"
    assert why_missing({"started": True}, "tcp://h:1", alive=True).startswith(
        "it started but did not check in"
    )


def test_a_missing_worker_is_named_and_started_when_it_comes():
    from aiinfra_magics.jax.spmd_absent import Absent, Absentees, missing

    layout = {"10.0.0.2-0": "10.0.0.2", "10.0.0.3-0": "10.0.0.3"}
    assert missing(layout, {"tcp://10.0.0.2:1": {"name": "10.0.0.2-0"}}) == [
        ("10.0.0.3-0", "10.0.0.3")
    ]
    started: list[tuple[int, str]] = []
    absent = Absentees(
        [Absent(1, "10.0.0.3-0", "10.0.0.3")],
        None,
        5,
        lambda pid, address: started.append((pid, address)),
    )
    assert absent.reason(1) == "no worker there"  # no record: nothing to probe with
    absent.adopt({"tcp://10.0.0.3:7": {"name": "10.0.0.3-0"}})
    assert started == [(1, "tcp://10.0.0.3:7")] and 1 not in absent


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_join_timeout_is_checked(value):
    with pytest.raises(ValueError, match=f"^join-timeout: got '{value}'; allowed: seconds"):
        SpmdOptions.from_options({"processes": 1, "join_timeout": value})


def test_a_tpu_slice_leaves_the_cluster_to_jax_and_a_mixed_one_is_refused():
    """Placement only (no TPU here): every host a TPU VM -> platform tpu, JAX's own cluster
    detection names coordinator and processes; --platform tpu with a non-TPU host refused."""
    from aiinfra_magics.errors import InputError
    from aiinfra_magics.jax.spmd_barrier import placement

    workers = ["tcp://10.0.0.2:1", "tcp://10.0.0.3:1"]
    tpu = {"gpus": 0, "plugin": False, "own_gpu": None, "tpu": True}
    cpu = {**tpu, "tpu": False}
    said: list[str] = []
    assert placement(workers, {0: tpu, 1: tpu}, "auto", said.append) == ("tpu", [None, None])
    assert placement(workers, {0: tpu, 1: cpu}, "auto", said.append) == ("cpu", [None, None])
    with pytest.raises(InputError, match="^platform: got 'tpu' but 10.0.0.3 is not a TPU VM host"):
        placement(workers, {0: tpu, 1: cpu}, "tpu", said.append)


def _running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (a zombie waits for a reaper that may not be ours: it runs nothing)."""
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def test_a_host_that_went_away_is_a_process_that_never_joins(ip, sshd, tmp_path):
    """Issue 27: a host with nothing listening (its sshd gone, its worker killed) is still a
    process of the program, not silently left out: the cell fails by name after
    --join-timeout, with the reason probed as `cluster start` words it, and nothing runs on."""
    third = start_sshd(tmp_path / "sshd3", hosts=("127.0.0.3",), like=sshd)
    try:
        known = tmp_path / "known_hosts"  # one file trusting the same host key on both
        known.write_text(sshd.known_hosts.read_text() + third.known_hosts.read_text())
        flags = sshd.flags("127.0.0.1,127.0.0.3").replace(str(sshd.known_hosts), str(known))
        ip.run_line_magic("aiinfra", f"cluster start gone {flags}")
        client = ip.user_ns["client"]
        assert sorted(w["host"] for w in client.scheduler_info()["workers"].values()) == [
            "127.0.0.1",
            "127.0.0.3",
        ]
        # The host goes away: its tree stopped (no worker can restart), its sshd gone, then
        # everything under it killed, so that nothing answers on 127.0.0.3 any more.
        tree = psutil.Process(third.proc.pid).children(recursive=True)
        assert tree, "nothing ran under the third sshd"
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGSTOP)
        stop_sshd(third)
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGKILL)
        wait_for(lambda: not _running(tree), 60, "everything under 127.0.0.3 to end")
        wait_for(
            lambda: all(
                w["host"] != "127.0.0.3" for w in client.scheduler_info()["workers"].values()
            ),
            60,
            "the scheduler to drop the worker on 127.0.0.3",
        )
        with pytest.raises(UsageError) as err:
            ip.run_cell_magic("aiinfra", "spmd --cluster gone --join-timeout 5", CELL)
        assert str(err.value) == (
            f"spmd: process 1 on 127.0.0.3 (no worker there; ssh 127.0.0.3:{sshd.port}: "
            "unreachable (Connection refused)) did not join within 5s; every process was stopped"
        )
        # Process 0 (on 127.0.0.1) had joined and waited at the barrier: it was stopped.
        wait_for(lambda: not session_processes("spmd_child"), 60, "no SPMD process left")
        ip.run_line_magic("aiinfra", "cluster stop gone")
        assert not _running(tree)
    finally:
        stop_sshd(third)


def test_a_worker_scaled_away_is_not_expected(ip, sshd):
    """Only the workers the cluster means to run are expected: after `cluster scale 1` the
    cell runs as one process on the worker left, instead of waiting for the one retired."""
    ip.run_line_magic("aiinfra", f"cluster start fewer {sshd.flags()}")
    ip.run_line_magic("aiinfra", "cluster scale fewer 1")
    client = ip.user_ns["client"]
    wait_for(lambda: len(client.scheduler_info()["workers"]) == 1, 60, "one worker left")
    assert (
        ip.run_cell_magic("aiinfra", "spmd --cluster fewer --join-timeout 30 --out res", CELL)
        is None
    )
    assert ip.user_ns["res"] == [(0, 1, [0], "127.0.0.1")]
    ip.run_line_magic("aiinfra", "cluster stop fewer")


def test_a_missing_worker_that_comes_back_joins_the_cell(ip, sshd):
    """Why the barrier waits for a missing worker instead of failing at once: its nanny
    restarts it under the same name, and its process then starts and joins the program."""
    ip.run_line_magic("aiinfra", f"cluster start back {sshd.flags()}")
    client = ip.user_ns["client"]
    worker = worker_process_on("127.0.0.2", sshd)
    nanny = worker.parent()
    nanny.send_signal(signal.SIGSTOP)  # it cannot restart the worker until it goes on
    try:
        worker.send_signal(signal.SIGKILL)
        wait_for(
            lambda: all(
                w["host"] != "127.0.0.2" for w in client.scheduler_info()["workers"].values()
            ),
            60,
            "the scheduler to drop the killed worker",
        )
        ended: dict[str, object] = {}

        def run() -> None:
            try:
                ended["value"] = ip.run_cell_magic(
                    "aiinfra", "spmd --cluster back --join-timeout 120 --out res", CELL
                )
            except BaseException as exc:  # noqa: BLE001 - re-raised by the test below
                ended["error"] = exc

        cell_thread = threading.Thread(target=run, name="spmd-cell")
        cell_thread.start()
        # The cell runs (process 0 is up) while the worker of process 1 is still missing.
        wait_for(
            lambda: "error" in ended or session_processes("spmd_child"),
            120,
            "process 0 to start",
        )
        assert "error" not in ended, ended.get("error")
    finally:
        nanny.send_signal(signal.SIGCONT)
    cell_thread.join(180)
    assert not cell_thread.is_alive(), "the cell did not end once the worker came back"
    assert "error" not in ended, ended.get("error")
    assert ip.user_ns["res"] == [(0, 2, [0, 1], "127.0.0.1"), (1, 2, [0, 1], "127.0.0.2")]
    ip.run_line_magic("aiinfra", "cluster stop back")
    wait_for(lambda: not session_processes("spmd_child"), 60, "no SPMD process left")
