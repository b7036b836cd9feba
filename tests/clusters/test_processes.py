"""Clusters shared between processes: CLI daemons, other kernels, external schedulers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from distributed import Client

from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.registry import Registry

CLI = [sys.executable, "-m", "aiinfra_magics"]


def aiinfra(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=180)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_gone(pids, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [
            p
            for p in pids
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def test_cli_cluster_is_detached_and_shared_with_a_kernel(ip):
    started = json.loads(
        aiinfra(
            "cluster", "start", "shared", "--backend", "local", "--workers", "1", "--json"
        ).stdout
    )
    daemon_pid = started["owner"]["pid"]
    # the CLI process has exited; the daemon lives on in its own session
    assert psutil.pid_exists(daemon_pid)
    assert os.getsid(daemon_pid) != os.getsid(0)

    listed = ip.run_line_magic("aiinfra", "cluster list")
    assert [i.name for i in listed] == ["shared"] and listed.items[0].owner["kind"] == "cli"
    ip.run_line_magic("aiinfra", "cluster connect shared")
    assert ip.user_ns["client"].submit(pow, 2, 10).result() == 1024

    # a kernel (this process) scales a cluster owned by the daemon through its scheduler
    assert ip.run_line_magic("aiinfra", "cluster scale shared 2").workers == 2
    assert json.loads(aiinfra("cluster", "status", "shared", "--json").stdout)["workers"] == 2

    ip.run_line_magic("aiinfra", "cluster stop shared")
    assert wait_gone([daemon_pid], 30) == []
    assert json.loads(aiinfra("cluster", "list", "--json").stdout) == []


def test_second_process_lists_connects_and_stops_a_kernel_cluster(ip):
    ip.run_line_magic("aiinfra", "cluster start mine --backend local --workers 1")
    script = textwrap.dedent(
        """
        from aiinfra_magics.clusters.manager import ClusterManager
        manager = ClusterManager()
        names = [i.name for i in manager.list_clusters()]
        client = manager.connect("mine")
        value = client.submit(lambda: 7 * 6).result()
        client.close()
        print(manager.stop("mine"))
        print(names, value)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "stopped cluster 'mine'" in out.stdout and "['mine'] 42" in out.stdout
    assert len(ClusterManager().list_clusters()) == 0


@pytest.fixture
def external_scheduler():
    global DASHBOARD_PORT
    DASHBOARD_PORT = free_port()
    port = free_port()
    env = {**os.environ}
    sched = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            f"127.0.0.1:{DASHBOARD_PORT}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_worker",
            f"tcp://127.0.0.1:{port}",
            "--nthreads",
            "1",
            "--no-nanny",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"tcp://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with Client(address, timeout="2s") as c:
                if c.scheduler_info()["workers"]:
                    break
        except OSError:
            time.sleep(0.2)
    yield address
    # The worker first: signalled together, a worker whose scheduler had just gone waited
    # for its connect timeout and was killed after 20 s (seen under Python 3.12).
    for proc in (worker, sched):
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


DASHBOARD_PORT = 0


def test_address_backend_attaches_to_a_running_scheduler(ip, external_scheduler):
    info = ip.run_line_magic(
        "aiinfra", f"cluster start unregistered --backend address --address {external_scheduler}"
    )
    # The scheduler reports its dashboard port, but only the user decides where links point.
    assert info.dashboard_link is None
    ip.run_line_magic("aiinfra", "cluster stop unregistered")
    info = ip.run_line_magic(
        "aiinfra",
        f"cluster start remote --backend address --address {external_scheduler} "
        f"--dashboard {DASHBOARD_PORT}",
    )
    assert info.backend == "address" and info.workers == 1 and info.owner["kind"] == "external"
    assert info.dashboard_link == f"http://127.0.0.1:{DASHBOARD_PORT}/status"
    assert ip.user_ns["client"].submit(str.upper, "dask").result() == "DASK"
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="external scheduler .* scale is not available"):
        ip.run_line_magic("aiinfra", "cluster scale remote 3")
    # the record survives the process that registered it, and stop only forgets it
    assert ClusterManager().status("remote").status == "running"
    ip.user_ns["client"].close()
    ip.run_line_magic("aiinfra", "cluster stop remote")
    with Client(external_scheduler, timeout="5s") as c:
        assert c.submit(abs, -3).result() == 3


def test_unreachable_records_are_pruned(aiinfra_home):
    registry = Registry()
    registry.write(
        {
            "name": "ghost",
            "backend": "local",
            "status": "running",
            "scheduler_address": f"tcp://127.0.0.1:{free_port()}",
            "owner": {"pid": 1, "host": "elsewhere", "kind": "cli"},
            "created": time.time(),
        }
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    registry.write(
        {
            "name": "orphan",
            "backend": "local",
            "status": "starting",
            "scheduler_address": None,
            "owner": {"pid": dead.pid, "host": socket.gethostname(), "kind": "kernel"},
            "created": time.time(),
        }
    )
    assert len(ClusterManager().list_clusters()) == 0
    assert registry.names() == []


CONCURRENT_WRITER = textwrap.dedent(
    """
    import sys, time
    from aiinfra_magics.clusters.registry import Registry
    from aiinfra_magics.errors import AiinfraError
    reg, me = Registry(), int(sys.argv[1])
    won = []
    for i in range(40):
        rec = {"name": f"own-{me}-{i}", "backend": "local", "status": "running", "scheduler_address": "ucx://nowhere:1", "owner": {"pid": 0, "host": "x", "kind": "cli"}, "created": time.time()}
        reg.write(rec)
        reg.update(f"own-{me}-{i}", adapt="1:2")
        try:
            reg.reserve({**rec, "name": f"contested-{i}", "owner": {"pid": 0, "host": "x", "kind": "cli", "by": me}})
            won.append(i)
        except AiinfraError:
            pass
    print(",".join(map(str, won)))
    """
)


def test_concurrent_writers_leave_a_consistent_registry(aiinfra_home):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_WRITER, str(n)], stdout=subprocess.PIPE, text=True
        )
        for n in range(4)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    registry = Registry()
    records = {r["name"]: r for r in registry.records()}
    assert len(records) == 4 * 40 + 40  # every file parses; nothing lost or duplicated
    assert all(records[f"own-{m}-{i}"]["adapt"] == "1:2" for m in range(4) for i in range(40))
    # each contested name was reserved by exactly one writer (a live "starting" record is never taken over)
    winners = [set(map(int, o.split(","))) if o else set() for o in outputs]
    for i in range(40):
        assert sum(i in w for w in winners) == 1
        assert records[f"contested-{i}"]["owner"]["by"] in range(4)
    assert not list(registry.root.glob(".tmp-*"))


KERNEL_CODE = textwrap.dedent(
    """
    import os
    os.environ["AIINFRA_DEATH_TIMEOUT"] = "20"
    get_ipython().run_line_magic("load_ext", "aiinfra_magics")
    get_ipython().run_line_magic("aiinfra", "cluster start doomed --backend local --workers 2 --threads 1")
    print(sorted(client.run(os.getpid).values()))
    """
)


def _kernel_with_cluster():
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    outputs: list[str] = []
    kc.execute_interactive(
        KERNEL_CODE,
        timeout=120,
        output_hook=lambda m: (
            outputs.append(m["content"].get("text", ""))
            if m["msg_type"] == "stream"
            else outputs.append(f"\n{m['content']['ename']}: {m['content']['evalue']}\n")
            if m["msg_type"] == "error"
            else None
        ),
    )
    lines = "".join(outputs).splitlines()
    found = [line for line in lines if line.startswith("[")]
    if not found:  # say what the kernel printed, and do not leave it running
        km.shutdown_kernel(now=True)
        pytest.fail(f"the kernel's cluster did not start: {''.join(outputs)[-2000:]}")
    worker_pids = json.loads(found[0])
    return km, kc, worker_pids


def test_kernel_killed_with_sigkill_leaves_no_orphans():
    km, kc, worker_pids = _kernel_with_cluster()
    assert len(worker_pids) == 2 and all(psutil.pid_exists(p) for p in worker_pids)
    kernel_pid = km.provisioner.process.pid
    os.kill(kernel_pid, signal.SIGKILL)
    kc.stop_channels()
    # workers notice the lost scheduler, at the latest after death_timeout (20 s here)
    assert wait_gone(worker_pids, 120) == []
    # the registry stays consistent: the dead owner's record is pruned on the next look
    assert [i.name for i in ClusterManager().list_clusters()] == []
    km.cleanup_resources()


def test_kernel_shutdown_and_restart_close_the_cluster():
    km, kc, worker_pids = _kernel_with_cluster()
    km.restart_kernel(now=False)
    assert wait_gone(worker_pids, 120) == []
    assert [i.name for i in ClusterManager().list_clusters()] == []
    kc.stop_channels()
    km.shutdown_kernel(now=False)


def test_a_daemon_killed_with_sigkill_is_lost_in_history(aiinfra_home):
    """Issue 25 item 7: the owner that would write the history line is gone; the prune writes it."""
    started = json.loads(
        aiinfra(
            "cluster", "start", "doomed", "--backend", "local", "--workers", "1", "--json"
        ).stdout
    )
    daemon = psutil.Process(started["owner"]["pid"])
    # its local workers are its children: kill them with it, as a crashed node would lose them
    family = [daemon, *daemon.children(recursive=True)]
    for proc in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    assert wait_gone([p.pid for p in family], 60) == []
    assert json.loads(aiinfra("cluster", "list", "--json").stdout) == []  # pruned here
    ended = json.loads(aiinfra("cluster", "history", "--json").stdout)
    lost = [e for e in ended if e["name"] == "doomed"]
    assert len(lost) == 1 and lost[0]["reason"] == "lost", ended
    assert lost[0]["scheduler_address"] == started["scheduler_address"]
    # a second listing does not write it again
    aiinfra("cluster", "list", "--json")
    again = json.loads(aiinfra("cluster", "history", "--json").stdout)
    assert [e["reason"] for e in again if e["name"] == "doomed"] == ["lost"]
