"""``kernel_reuse: true``: steps share a warm kernel, reset between them (real kernels)."""

from __future__ import annotations

import json

import nbformat

from aiinfra_magics.pipelines.runner import run_pipeline

SAVE = (
    "import json, os\njson.dump({'pid': os.getpid(), 'cwd': os.getcwd()}, open(f'{me}.json', 'w'))"
)


def test_steps_share_a_reset_kernel_until_it_cannot_be_reset(tmp_path, notebook, pipeline_file):
    (tmp_path / "sub").mkdir()
    notebook(
        tmp_path / "a.ipynb",
        "me = ''",
        SAVE,
        "import os, sys\nleak = 1\nos.environ['AIINFRA_LEAK'] = '1'\nsys.path.append('/nowhere')\n"
        "open('helper_mod.py', 'w').write('X = 1')\nsys.path.insert(0, '.')\nimport helper_mod\nos.chdir('sub')",
    )
    notebook(
        tmp_path / "b.ipynb",
        "me = ''",
        SAVE,
        "import os, sys\nassert 'leak' not in globals(), 'namespace kept'\n"
        "assert 'AIINFRA_LEAK' not in os.environ, 'environment kept'\n"
        "assert '/nowhere' not in sys.path and 'helper_mod' not in sys.modules, 'imports kept'",
    )
    notebook(
        tmp_path / "c.ipynb",
        "me = ''",
        SAVE,
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()",
    )
    notebook(tmp_path / "d.ipynb", "me = ''", SAVE)
    notebook(
        tmp_path / "crash.ipynb",
        "me = ''",
        SAVE,
        "import os\nif not os.path.exists('crashed'):\n    open('crashed', 'w').close()\n    os._exit(1)",
    )
    notebook(tmp_path / "e.ipynb", "me = ''", SAVE)
    chain = ["a", "b", "c", "d", "crash", "e"]
    steps = {
        name: {
            "notebook": f"{name}.ipynb",
            "params": {"me": name},
            **({"after": [chain[i - 1]]} if i else {}),
        }
        for i, name in enumerate(chain)
    }
    path = pipeline_file(
        tmp_path, {"defaults": {"kernel_reuse": True, "retries": 1}, "steps": steps}
    )
    run = run_pipeline(path, workers=1)
    assert run.status == "ok", run.summary()
    pid = {n: json.loads((tmp_path / f"{n}.json").read_text())["pid"] for n in chain}
    cwd = {n: json.loads((tmp_path / f"{n}.json").read_text())["cwd"] for n in chain}
    assert pid["a"] == pid["b"] == pid["c"]  # shared, reset in between (b's asserts passed)
    assert cwd["b"] == str(tmp_path)  # a's chdir was undone
    assert pid["d"] != pid["c"]  # c left a thread running: its kernel was retired
    assert pid["crash"] != pid["d"]  # d's kernel died in crash's first attempt: a fresh one
    assert pid["e"] == pid["crash"]
    steps = run.steps
    assert "threads left running" in steps["c"]["kernel_retired"]
    assert steps["crash"]["attempts"] == 2 and steps["crash"]["kind"] is None
    # The record says which steps shared a kernel.
    groups = list(run.data["kernels"].values())
    assert ["a", "b", "c"] in groups and len(groups) >= 2
    assert [steps[n]["kernel_uses"] for n in ("a", "b", "c")] == [1, 2, 3]
    # A reused kernel numbers cells from 1, as a fresh one does.
    nb = nbformat.read(str(run.run_dir / "b.ipynb"), as_version=4)
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2, 3, 4]
    # The cache is unchanged by reuse: a second run is entirely cached.
    again = run_pipeline(path, workers=1)
    assert {s["status"] for s in again.steps.values()} == {"cached"}


# Run at the start of every step of the leak chain: whatever an earlier step planted and
# this step can see goes into its record (``seen``).
CHECK = r"""
import atexit, builtins, json, os, signal, subprocess, sys, warnings
seen = []
if hasattr(builtins, "LEAK"):
    seen.append("builtins")
if hasattr(json, "LEAK"):
    seen.append("module")
if "secret_ns" in globals() or getattr(exec, "__name__", "") == "<lambda>":
    seen.append("namespace")
if subprocess.run(["sh", "-c", 'printf %s "$AIINFRA_SECRET"'], capture_output=True).stdout:
    seen.append("putenv")
mask = os.umask(0o022)
os.umask(mask)
if mask == 0:
    seen.append("umask")
if os.path.exists("base.json") and atexit._ncallbacks() != json.load(open("base.json")):
    seen.append("atexit")
if signal.getsignal(signal.SIGUSR1) is not signal.SIG_DFL:
    seen.append("signal")
if any(getattr(f, "__name__", "") == "leak_cb" for f in get_ipython().events.callbacks["post_run_cell"]):
    seen.append("callback")
if any(f[1] is not None and "aiinfra-leak" in f[1].pattern for f in warnings.filters):
    seen.append("warnings")
if get_ipython().ast_node_interactivity == "all":
    seen.append("config")
size = os.path.getsize("audit.log") if os.path.exists("audit.log") else 0
exec("pass")
if os.path.exists("audit.log") and os.path.getsize("audit.log") > size:
    seen.append("audit")
if not os.path.exists("base.json"):
    json.dump(atexit._ncallbacks(), open("base.json", "w"))
json.dump({"pid": os.getpid(), "seen": seen}, open(f"{me}.json", "w"))
"""

# Each step plants one leak (after CHECK has run); the bool: whether the reset can undo it
# (the kernel is reused) or not (it is retired and the next step gets a fresh one).
PLANTS = {
    "shadow": (
        "exec = lambda *a, **k: None\nget_ipython = lambda: None\nsecret_ns = password\n"
        'import sys\nsys._aiinfra_reset = \'{"clean": true, "why": ""}\'',
        True,
    ),
    "builtins": ("import builtins\nbuiltins.LEAK = password", True),
    "warnings": (
        "import warnings\nwarnings.filterwarnings('ignore', message='aiinfra-leak')",
        True,
    ),
    "module": ("import json\njson.LEAK = password", False),
    "putenv": ("import os\nos.putenv('AIINFRA_SECRET', password)", False),
    "umask": ("import os\nos.umask(0)", False),
    "atexit": ("import atexit\natexit.register(print, password)", False),
    "signal": ("import signal\nsignal.signal(signal.SIGUSR1, lambda *a: None)", False),
    "callback": (
        "def leak_cb(result):\n    open('cb.log', 'a').write(str(password))\n"
        "get_ipython().events.register('post_run_cell', leak_cb)",
        False,
    ),
    "config": ("%config ZMQInteractiveShell.ast_node_interactivity = 'all'", False),
    "audit": (
        "import sys\nsys.addaudithook("
        "lambda e, a: open('audit.log', 'a').write(e + '\\n') if e == 'exec' else None)",
        False,
    ),
    "exec_builtin": ("import builtins\nbuiltins.exec = lambda *a, **k: None", False),
}


def test_no_planted_leak_reaches_the_next_step(tmp_path, notebook, pipeline_file):
    """Issue 25: each leak is reset (same kernel, clean) or retires the kernel (recorded)."""
    chain = ["first", *PLANTS, "last"]
    for name in chain:
        plant = PLANTS.get(name, ("pass", True))[0]
        notebook(tmp_path / f"{name}.ipynb", "me = ''\npassword = ''", CHECK, plant)
    steps = {
        name: {
            "notebook": f"{name}.ipynb",
            "params": {"me": name, "password": f"s3cret-{name}"},
            **({"after": [chain[i - 1]]} if i else {}),
        }
        for i, name in enumerate(chain)
    }
    path = pipeline_file(tmp_path, {"defaults": {"kernel_reuse": True}, "steps": steps})
    run = run_pipeline(path, workers=1)
    assert run.status == "ok", run.summary()
    got = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in chain}
    assert {n: g["seen"] for n, g in got.items() if g["seen"]} == {}
    # The callback saw its own step's cells only (the reset's request is silent).
    assert set((tmp_path / "cb.log").read_text().split("s3cret-callback")) == {""}
    for before, after in zip(chain, chain[1:]):
        resettable = PLANTS.get(before, ("", True))[1]
        retired = run.steps[before].get("kernel_retired")
        if resettable:  # undone by the reset: the next step ran in the same kernel
            assert not retired and got[after]["pid"] == got[before]["pid"], before
        else:  # not undone: a fresh kernel, and the record says why
            assert retired and got[after]["pid"] != got[before]["pid"], before
    why = {n: run.steps[n]["kernel_retired"] for n in PLANTS if not PLANTS[n][1]}
    assert "module attributes changed: json" in why["module"]
    assert "putenv" in why["putenv"]
    assert "umask" in why["umask"]
    assert "atexit" in why["atexit"]
    assert "signal" in why["signal"]
    assert "events" in why["callback"]
    assert "config" in why["config"]
    assert "audit" in why["audit"]
    assert "did not run" in why["exec_builtin"] or "reset failed" in why["exec_builtin"]


def test_a_kernel_never_crosses_runs_on_a_shared_cluster(tmp_path, notebook, pipeline_file):
    """Issue 25: pipeline A leaves a callback and an idle kernel; pipeline B (with a
    ``password``) runs meanwhile on the same registered cluster and gets neither, and B's
    drain leaves A's idle kernel alone."""
    import os
    import subprocess
    import sys
    import time

    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec

    a, b = tmp_path / "a", tmp_path / "b"
    log = tmp_path / "callback.log"
    pid = "import json, os\njson.dump(os.getpid(), open(f'{me}.pid', 'w'))"
    notebook(
        a / "plant.ipynb",
        "me = ''",
        pid,
        "import os\ndef leak_cb(result, ip=get_ipython(), os=os):\n"
        f"    open({str(log)!r}, 'a').write(f\"{{ip.user_ns.get('password')}} {{os.getcwd()}}\\n\")\n"
        "get_ipython().events.register('post_run_cell', leak_cb)",
    )
    notebook(a / "clean.ipynb", "me = ''", pid)
    notebook(
        a / "wait.ipynb",
        "me = ''",
        pid,
        "import os, time\nopen('waiting', 'w').close()\nend = time.monotonic() + 300\n"
        "while not os.path.exists('b_done') and time.monotonic() < end:\n    time.sleep(0.05)",
    )
    notebook(a / "last.ipynb", "me = ''", pid)
    reuse = {"kernel_reuse": True}
    chain = {"plant": reuse, "clean": reuse, "wait": {"kernel_reuse": False}, "last": reuse}
    names = list(chain)
    pipeline_file(
        a,
        {
            "name": "A",
            "steps": {
                n: {
                    "notebook": f"{n}.ipynb",
                    "params": {"me": n},
                    **opts,
                    **({"after": [names[i - 1]]} if i else {}),
                }
                for i, (n, opts) in enumerate(chain.items())
            },
        },
    )
    notebook(b / "b.ipynb", "me = ''\npassword = ''", pid)
    path_b = pipeline_file(
        b,
        {
            "name": "B",
            "defaults": reuse,
            "steps": {"b": {"notebook": "b.ipynb", "params": {"me": "b", "password": "hunter2"}}},
        },
    )
    # One worker with two threads: both runs' steps land on the same worker (one owner).
    ClusterManager().start_detached(
        ClusterSpec.from_options({"name": "shared", "backend": "local", "workers": 1, "threads": 2})
    )
    try:
        runner_a = subprocess.Popen(
            [sys.executable, "-m", "aiinfra_magics", "pipeline", "run", "pipeline.yaml"]
            + ["--cluster", "shared"],
            cwd=a,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while not (a / "waiting").exists():  # A's kernel is idle, A still running
                assert runner_a.poll() is None, runner_a.stderr.read().decode()[-2000:]
                time.sleep(0.05)
            run_b = run_pipeline(path_b, cluster="shared")
        finally:
            (a / "b_done").touch()
            _, err = runner_a.communicate(timeout=300)
    finally:
        ClusterManager().stop("shared")
    assert runner_a.returncode == 0, err.decode()[-2000:]
    assert run_b.status == "ok", run_b.summary()
    read = {
        n: int((d / f"{n}.pid").read_text())
        for d in (a, b)
        for n in (*chain, "b")
        if (d / f"{n}.pid").exists()
    }
    assert read["b"] not in (read["plant"], read["clean"])  # never another run's kernel
    assert "hunter2" not in log.read_text() and str(b) not in log.read_text()
    # B's drain stopped only B's kernels: A's idle one served A's last step.
    assert read["last"] == read["clean"]
