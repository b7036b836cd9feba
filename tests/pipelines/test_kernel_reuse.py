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
