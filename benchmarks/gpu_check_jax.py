"""GPU checks for the inventory and JAX sessions, to run on a machine with NVIDIA GPUs.

From the repository root on the GPU machine:

    PYTHONPATH=. PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check_jax.py

Needs nvidia-smi, nvidia-ml-py, psutil and JAX with a CUDA plugin. The Dask parts
(cluster/JAX GPU split, SPMD on the GPU) run only where ``distributed`` (and, for the
split, ``dask_cuda``) import; otherwise their rows say SKIP and why. Each JAX session
runs in its own subprocess because a backend starts once per process. Prints one
compact table: check, result (OK / DIFF / FAIL / SKIP / INFO), detail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ROWS: list[tuple[str, str, str]] = []
MIB = 1 << 20


def row(check: str, result: str, detail: str = "") -> None:
    ROWS.append((check, result, detail))
    print(f"  {result:5s} {check}: {detail}", flush=True)


def smi(query: str, fields: str) -> list[list[str]]:
    out = subprocess.run(
        ["nvidia-smi", f"--query-{query}={fields}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        [c.strip() for c in line.split(",")] for line in out.strip().splitlines() if line.strip()
    ]


def check_inventory() -> None:
    from aiinfra_magics import devices

    t0 = time.perf_counter()
    inv = devices.inventory()
    row(
        "inventory time",
        "INFO",
        f"{(time.perf_counter() - t0) * 1000:.1f} ms, {len(inv['gpus'])} GPU(s)",
    )
    if not inv["gpus"]:
        row("inventory GPUs", "FAIL", f"empty: {inv['gpu_note']}")
        return
    fields = (
        "index,uuid,name,memory.total,memory.used,driver_version,temperature.gpu,mig.mode.current"
    )
    for vals in smi("gpu", fields):
        s = dict(zip(fields.split(","), vals))
        g = next((g for g in inv["gpus"] if g["index"] == int(s["index"])), None)
        if g is None:
            row(f"gpu {s['index']}", "FAIL", "nvidia-smi lists it, the inventory does not")
            continue
        checks = [
            ("uuid", g["uuid"], s["uuid"], g["uuid"] == s["uuid"]),
            ("name", g["name"], s["name"], g["name"] == s["name"]),
            ("memory.total MiB", g["memory_total"] // MIB, s["memory.total"], abs(g["memory_total"] // MIB - int(s["memory.total"])) <= 1),
            ("memory.used MiB", g["memory_used"] // MIB, s["memory.used"], abs(g["memory_used"] // MIB - int(s["memory.used"])) <= 64),
            ("driver", inv["driver_version"], s["driver_version"], inv["driver_version"] == s["driver_version"]),
            ("temperature C", g["temperature"], s["temperature.gpu"], g["temperature"] is not None and abs(g["temperature"] - int(s["temperature.gpu"])) <= 3),
            ("MIG", g["mig_enabled"], s["mig.mode.current"], g["mig_enabled"] == (s["mig.mode.current"] == "Enabled")),
        ]  # fmt: skip
        for name, ours, theirs, ok in checks:
            row(
                f"gpu {s['index']} {name}",
                "OK" if ok else "DIFF",
                f"inventory {ours} / nvidia-smi {theirs}",
            )
    g0 = inv["gpus"][0]
    row(
        "gpu 0 extras",
        "INFO",
        f"util {g0['utilization']}%, power {g0['power_watts']} W, cc {g0['compute_capability']}, CUDA {inv['cuda_version']}, {len(g0['mig'])} MIG slices",
    )
    # NVML never creates a CUDA context: this process must not appear as a compute app.
    apps = smi("compute-apps", "pid,used_memory")
    mine = [a for a in apps if a and a[0] == str(os.getpid())]
    row(
        "no CUDA context after inventory",
        "OK" if not mine else "FAIL",
        f"compute apps: {apps or 'none'}",
    )
    if shutil.which("nvidia-smi") is None:
        row("nvidia-smi", "SKIP", "not on PATH")


SESSION_CHILD = r"""
import json, sys
from aiinfra_magics import devices
from aiinfra_magics.jax.session import start_session
from aiinfra_magics.jax.spec import JaxSessionSpec
from aiinfra_magics.errors import AiinfraError
def used(): return devices.inventory()["gpus"][0]["memory_used"]
before = used()
options = json.loads(sys.argv[1])
session = start_session(JaxSessionSpec.from_options(options))
import jax, jax.numpy as jnp
started = used()
x = jnp.ones((64, 1 << 20), dtype=jnp.float32)  # 256 MiB
x.block_until_ready()
allocated = used()
guard = None
try:
    start_session(JaxSessionSpec.from_options({"platform": "gpu", "preallocate": options.get("no_preallocate", False)}))
except AiinfraError as exc:
    guard = str(exc)
print(json.dumps({"session": session.to_dict(), "text": str(session), "before": before,
                  "started": started, "allocated": allocated, "guard": guard,
                  "total": devices.inventory()["gpus"][0]["memory_total"]}))
"""


def _session(options: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run(
        [sys.executable, "-c", SESSION_CHILD, json.dumps(options)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if out.returncode:
        raise RuntimeError(
            out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_sessions() -> None:
    from aiinfra_magics import devices

    n = len(devices.probe_gpus()[0])
    off = _session({"platform": "gpu", "no_preallocate": True, "mesh": f"data={n}"})
    row("jax session --no-preallocate", "INFO", off["text"].replace("\n", " | "))
    grow = (off["allocated"] - off["before"]) // MIB
    share = (off["allocated"] - off["before"]) / off["total"]
    row(
        "  GPU memory taken (start + 256 MiB array)",
        "OK" if share < 0.2 else "DIFF",
        f"{grow} MiB ({share:.1%} of card)",
    )
    row(
        "  after-start guard",
        "OK" if off["guard"] and "preallocate" in off["guard"] else "FAIL",
        str(off["guard"]),
    )
    on = _session({"platform": "gpu"})
    grow_on = (on["started"] - on["before"]) // MIB
    row(
        "jax session, JAX default preallocation",
        "INFO",
        f"{grow_on} MiB at start ({(on['started'] - on['before']) / on['total']:.1%} of card)",
    )


def check_sharing() -> None:
    from aiinfra_magics import devices
    from aiinfra_magics.jax.session import share_gpus
    from aiinfra_magics.jax.spec import JaxSessionSpec

    gpus = devices.probe_gpus()[0]
    spec, notes = share_gpus(JaxSessionSpec(), gpus, held={0})
    row(
        "split rule with GPU 0 held by Dask",
        "INFO",
        f"devices={spec.devices} preallocate={spec.preallocate}; {notes}",
    )
    try:
        import dask_cuda  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        row(
            "cluster/JAX GPU split (real cuda cluster)",
            "SKIP",
            f"needs distributed + dask_cuda ({exc})",
        )
        return
    code = (
        "import os, tempfile; os.environ.setdefault('AIINFRA_HOME', tempfile.mkdtemp());"
        "from aiinfra_magics.clusters import host; from aiinfra_magics.clusters.manager import ClusterManager;"
        "from aiinfra_magics.clusters.spec import ClusterSpec; manager = ClusterManager();"
        "from aiinfra_magics.jax.session import start_session; from aiinfra_magics.jax.spec import JaxSessionSpec;"
        "manager.start(ClusterSpec.from_options({'name': 'g', 'backend': 'cuda', 'gpus': '0,'}));"
        "c = manager.connect('g'); env = c.run(lambda: os.environ.get('XLA_PYTHON_CLIENT_PREALLOCATE'));"
        "s = start_session(JaxSessionSpec()); print('held', host.gpus_held_here(), 'worker env', env);"
        "print(s.to_dict()['settings'], s.notes); c.close(); manager.stop('g')"
    )
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    result = "INFO" if out.returncode == 0 else "FAIL"
    row(
        "cluster/JAX GPU split (cuda cluster on GPU 0)",
        result,
        " | ".join(out.stdout.strip().splitlines()[-2:]) or out.stderr[-400:],
    )


def check_spmd() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        row("spmd on GPU", "SKIP", f"needs distributed ({exc})")
        return
    from aiinfra_magics.jax.spmd import SpmdOptions, run_cell

    code = "import jax.numpy as jnp\n(jax.devices()[0].platform, float(jnp.ones(4).sum()), jax.process_count())"
    t0 = time.perf_counter()
    value = run_cell(
        code, SpmdOptions.from_options({"processes": 1}), say=lambda t: row("spmd note", "INFO", t)
    )
    row(
        "spmd --processes 1 (GPU)",
        "OK" if value and value[0][0] == "gpu" else "DIFF",
        f"{value} in {time.perf_counter() - t0:.1f} s",
    )
    notes: list[str] = []
    value = run_cell(code, SpmdOptions.from_options({"processes": 2}), say=notes.append)
    row("spmd --processes 2 on 1 GPU/host", "INFO", f"{value}; {notes}")


def main() -> None:
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    for part in (check_inventory, check_sessions, check_sharing, check_spmd):
        print(f"[{part.__name__}]", flush=True)
        try:
            part()
        except Exception as exc:  # noqa: BLE001 - report and go on to the next part
            row(part.__name__, "FAIL", f"{type(exc).__name__}: {exc}")
            traceback.print_exc()
    width = max(len(c) for c, _, _ in ROWS)
    print("\n" + "check".ljust(width) + "  result  detail")
    for check, result, detail in ROWS:
        print(f"{check.ljust(width)}  {result:6s}  {detail}")


if __name__ == "__main__":
    main()
