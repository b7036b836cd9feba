"""SPMD cells on real Dask workers running real multi-process JAX (gloo on CPU)."""

from __future__ import annotations

import os

import numpy as np
import psutil
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from aiinfra_magics.errors import OperationError
from aiinfra_magics.jax.spmd import SpmdOptions, run_cell

GLOBAL_SUM = """
from functools import partial
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P
print("process", process_id, "of", num_processes, "sees", jax.device_count(), "devices")
local = np.full((jax.local_device_count(),), process_id + 1.0, dtype=np.float32)
x = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), local)
@jax.jit
@partial(jax.shard_map, mesh=mesh, in_specs=P("data"), out_specs=P())
def total(block):
    return jax.lax.psum(block.sum(), "data")
gathered = multihost_utils.process_allgather(np.array([process_id * 10]))
(float(total(x)), gathered.ravel().tolist())
"""

FAILING = """
import time
if process_id == 1:
    values = {"a": 1}
    values["missing"]
time.sleep(120)
"""


def _wait_until(condition, timeout: float = 90.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# A parent that launches one SPMD child exactly as a Dask worker does, hands it a
# cell that never ends, prints the child's pid and dies at once (SIGKILL, no cleanup):
# the child starts only after its worker is gone.
DYING_PARENT = """
import json, os, signal, socket, subprocess, sys, tempfile
from aiinfra_magics.jax.spmd_worker import _child_env
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
job = {"platform": "cpu", "cpu_devices": 1, "coordinator": f"127.0.0.1:{port}",
       "num_processes": 1, "process_id": 0, "init_timeout": 60, "run_id": "r", "topic": "t",
       "code": "import time; time.sleep(600)", "result_path": os.path.join(tempfile.mkdtemp(), "r.pkl")}
proc = subprocess.Popen([sys.executable, "-m", "aiinfra_magics.jax.spmd_child"],
    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    env=_child_env(job), text=True, start_new_session=True)
proc.stdin.write(json.dumps(job))
proc.stdin.close()
print(proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_spmd_child_whose_worker_died_before_it_started_leaves():
    import subprocess
    import sys

    parent = subprocess.run(
        [sys.executable, "-c", DYING_PARENT], capture_output=True, text=True, timeout=120
    )
    assert parent.returncode == -9, parent.stderr
    child = psutil.Process(int(parent.stdout.split()[0]))
    try:
        assert _wait_until(lambda: not _alive(child)), "the SPMD child outlived its worker"
    finally:
        if _alive(child):
            child.kill()


def _children() -> list[psutil.Process]:
    """SPMD processes started by this test session (marked by the top-level conftest's env)."""
    mark = os.environ.get("AIINFRA_TEST_SESSION")
    procs = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "aiinfra_magics.jax.spmd_child" in " ".join(proc.info["cmdline"] or []) and (
                proc.environ().get("AIINFRA_TEST_SESSION") == mark
            ):
                procs.append(proc)
        except psutil.Error:
            continue
    return procs


def test_global_psum_and_allgather_on_two_processes(capsys):
    values = run_cell(
        "import numpy as np\n" + GLOBAL_SUM,
        SpmdOptions.from_options({"processes": 2, "cpu_devices": 2}),
    )
    # Devices 0,1 hold 1.0 (process 0), devices 2,3 hold 2.0 (process 1): psum = 6.
    assert values == [(6.0, [0, 10]), (6.0, [0, 10])]
    out = capsys.readouterr().out
    assert "[p0] process 0 of 2 sees 4 devices" in out
    assert "[p1] process 1 of 2 sees 4 devices" in out
    assert not _children()


def test_an_exception_is_shown_with_its_traceback_and_the_others_stop(capsys):
    with pytest.raises(OperationError) as info:
        run_cell(FAILING, SpmdOptions.from_options({"processes": 2}))
    assert str(info.value).startswith("spmd: process 1 failed: KeyError: 'missing'")
    err = capsys.readouterr().err
    assert "[p1] Traceback (most recent call last):" in err
    assert '[p1]     values["missing"]' in err
    assert "[p0]" not in err  # process 0 was stopped, not failed
    assert not _children()


def test_timeout_stops_every_process():
    with pytest.raises(OperationError, match="timed out after 3 s; every process was stopped"):
        run_cell(
            "import time\ntime.sleep(120)", SpmdOptions.from_options({"processes": 2, "timeout": 3})
        )
    assert not _children()


def test_cells_on_a_named_cluster_through_the_magic(capsys):
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec

    ClusterManager().start(
        ClusterSpec.from_options({"name": "spmd", "backend": "local", "workers": 2, "threads": 1})
    )
    try:
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "aiinfra_magics")
        # Two cells in a row on the same workers: each runs in fresh processes.
        for _ in range(2):
            ids = shell.run_cell_magic(
                "aiinfra", "spmd --cluster spmd", "print('hi')\n(process_id, jax.process_count())"
            )
            assert ids == [(0, 2), (1, 2)]
        assert capsys.readouterr().out.count("[p1] hi") == 2
        assert shell.run_cell_magic("aiinfra", "spmd --cluster spmd", "x = 1") is None
        with pytest.raises(UsageError, match="process 0 failed: ZeroDivisionError"):
            shell.run_cell_magic("aiinfra", "spmd --cluster spmd", "1 / (process_id - process_id)")
        with pytest.raises(UsageError, match="cell: syntax error on line 1"):
            shell.run_cell_magic("aiinfra", "spmd --cluster spmd", "def (:")
    finally:
        ClusterManager().stop("spmd")
    assert not _children()


def test_values_travel_as_numpy():
    values = run_cell(
        "jax.numpy.arange(3) * (process_id + 1)", SpmdOptions.from_options({"processes": 2})
    )
    assert [v.tolist() for v in values] == [[0, 1, 2], [0, 2, 4]]
    assert all(isinstance(v, np.ndarray) for v in values)


def test_a_worker_that_dies_mid_cell_is_reported_and_nothing_is_left():
    import logging
    import threading
    import time

    from distributed import Client, LocalCluster

    from aiinfra_magics.jax.spmd import run_on_client

    def kill_worker_of_first_child() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for child in _children():
                child.parent().kill()  # SIGKILL the Dask worker; its nanny restarts it
                return
            time.sleep(0.2)

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        Client(cluster) as client,
    ):
        killer = threading.Thread(target=kill_worker_of_first_child)
        killer.start()
        with pytest.raises(OperationError, match="left the cluster"):
            run_on_client(
                client, "import time\ntime.sleep(120)", SpmdOptions.from_options({"processes": 2})
            )
        killer.join()
    # The dead worker's child dies with it (PDEATHSIG), the other is stopped by the
    # run: wait for that condition, with a deadline generous for a loaded machine.
    assert _wait_until(lambda: not _children()), _children()


def test_cells_read_notebook_variables_and_out_binds_the_results():
    import threading

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    shell.user_ns.update(scale=3.0, offsets=np.array([10, 20]), lock=threading.Lock())
    cell = "def f(i):\n    return scale * i\n(f(process_id + 1), int(offsets[process_id]))"
    assert shell.run_cell_magic("aiinfra", "spmd --processes 2 --out res", cell) is None
    assert shell.user_ns["res"] == [(3.0, 10), (6.0, 20)]
    # Without a final expression the processes still answer, one None each.
    assert shell.run_cell_magic("aiinfra", "spmd --processes 2 --out res", "y = scale") is None
    assert shell.user_ns["res"] == [None, None]
    with pytest.raises(
        UsageError,
        match=r"^cell: notebook variable 'lock' cannot be sent to the processes "
        r"\(TypeError: cannot pickle '_thread.lock' object\); create it inside the cell instead$",
    ):
        shell.run_cell_magic("aiinfra", "spmd --processes 2", "lock.acquire()")
    with pytest.raises(UsageError, match=r"^out: got '1x'; allowed: a Python variable name"):
        shell.run_cell_magic("aiinfra", "spmd --processes 2 --out 1x", "1")
    assert _wait_until(lambda: not _children()), _children()


def test_only_the_names_a_cell_reads_are_sent():
    import threading

    from aiinfra_magics.jax.spmd_vars import pack, unpack

    ns = {"a": 1, "b": 2, "unused": 3, "mesh": "the notebook's", "lock": threading.Lock()}
    code = "lock = None\ndef f():\n    return a\nb += 1\n[x for x in range(a)]\nmesh"
    sent = pack(code, ns, hidden={"b"})
    assert sorted(sent) == ["a"]  # b hidden, mesh provided, lock assigned by the cell
    assert unpack(sent) == {"a": 1}
    assert sorted(pack("b += 1", ns)) == ["b"]
