"""JAX session set-up and SPMD cell round trip, each against its bare peer.

1. Session set-up, each sample in a fresh interpreter (JAX starts once per
   process), timed inside it from the first import to a ready mesh:
   - peer: ``import jax; jax.config.update("jax_num_cpu_devices", 8); jax.make_mesh((4, 2), ...)``
   - core: ``start_session(JaxSessionSpec.from_options({...}))`` (validation, NVML/TPU probe, apply, start, mesh)
   - magic: ``%aiinfra jax --cpu-devices 8 --mesh data=4,model=2`` in an IPython shell with
     the extension loaded (its own cell in a notebook), so the words' argparse tree counts.
2. SPMD round trip on one 2-worker LocalCluster: ``%%aiinfra spmd`` (core
   ``run_on_client``) against the same program hand-launched with ``client.run``:
   each worker starts a fresh interpreter that initialises jax.distributed
   (gloo), computes a global psum and shuts down.

Runs alternate between ours and the peer; prints medians and ratios.

    python benchmarks/jax_session.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

SETUP = {
    "peer": """
import time; t0 = time.perf_counter()
import jax
jax.config.update("jax_num_cpu_devices", 8)
mesh = jax.make_mesh((4, 2), ("data", "model"), devices=jax.devices())
print(time.perf_counter() - t0)
""",
    "core": """
import time; t0 = time.perf_counter()
from aiinfra_magics.jax.session import start_session
from aiinfra_magics.jax.spec import JaxSessionSpec
start_session(JaxSessionSpec.from_options({"cpu_devices": 8, "mesh": "data=4,model=2"}))
print(time.perf_counter() - t0)
""",
    "magic": """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "aiinfra_magics")
import time; t0 = time.perf_counter()
shell.run_line_magic("aiinfra", "jax --cpu-devices 8 --mesh data=4,model=2")
print(time.perf_counter() - t0)
""",
}

WORK = """
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
local = np.full((jax.local_device_count(),), process_id + 1.0, dtype=np.float32)
x = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), local)
float(jax.jit(lambda a: a.sum())(x))
"""

PEER_CHILD = """
import json, sys
import jax
job = json.loads(sys.argv[1])
jax.config.update("jax_platforms", "cpu")
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.config.update("jax_num_cpu_devices", 1)
jax.distributed.initialize(coordinator_address=job["coordinator"], num_processes=job["n"],
                           process_id=job["pid"], cluster_detection_method="deactivate")
process_id = job["pid"]
mesh = jax.make_mesh((jax.device_count(),), ("data",))
ns = {"jax": jax, "mesh": mesh, "process_id": process_id}
*body, last = job["code"].strip().splitlines()
exec("\\n".join(body), ns)
print(json.dumps(eval(last, ns)))
jax.distributed.shutdown()
"""


def _peer_process(coordinator: str, pids: dict[str, int], dask_worker=None) -> float:  # noqa: ANN001
    """What a user would hand-write with client.run: one fresh interpreter per worker."""
    job = {
        "coordinator": coordinator,
        "n": len(pids),
        "pid": pids[dask_worker.address],
        "code": WORK,
    }
    cmd = [sys.executable, "-c", PEER_CHILD, json.dumps(job)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def setup_times(repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in SETUP}
    for i in range(repeat + 1):  # the first round warms the page cache
        for name, code in SETUP.items():
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            if i:
                times[name].append(float(out.stdout.strip().splitlines()[-1]))
    return times


def spmd_times(repeat: int) -> dict[str, list[float]]:
    import logging
    import socket

    from distributed import Client, LocalCluster

    from aiinfra_magics.jax.spmd import SpmdOptions, run_on_client

    options = SpmdOptions.from_options({"processes": 2})
    times: dict[str, list[float]] = {"peer": [], "spmd": []}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = {w: i for i, w in enumerate(sorted(client.scheduler_info(n_workers=-1)["workers"]))}
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            ours = run_on_client(client, WORK, options)
            t_ours = time.perf_counter() - t0
            with socket.socket() as s:
                s.bind(("", 0))
                port = s.getsockname()[1]
            t0 = time.perf_counter()
            theirs = client.run(_peer_process, f"127.0.0.1:{port}", pids)
            t_peer = time.perf_counter() - t0
            assert ours == sorted(theirs.values()) == [3.0, 3.0], (ours, theirs)
            if i:
                times["spmd"].append(t_ours)
                times["peer"].append(t_peer)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    setup = setup_times(args.repeat)
    peer = statistics.median(setup["peer"])
    print("JAX session set-up, 8 CPU devices, mesh data=4,model=2 (fresh interpreter each)")
    for name, values in setup.items():
        med = statistics.median(values)
        print(f"  {name:6s} median {med:.3f} s  ratio {med / peer:.2f}")
    spmd = spmd_times(args.repeat)
    peer = statistics.median(spmd["peer"])
    print("SPMD cell round trip, 2 processes (global sum)")
    for name, values in spmd.items():
        med = statistics.median(values)
        print(f"  {name:6s} median {med:.3f} s  ratio {med / peer:.2f}")


if __name__ == "__main__":
    main()
