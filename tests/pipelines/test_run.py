"""Running pipelines for real: papermill in fresh kernels on a 2-worker Dask cluster."""

from __future__ import annotations

import json

import nbformat
import pytest

from aiinfra_magics.pipelines import execute
from aiinfra_magics.pipelines.record import RunRecord
from aiinfra_magics.pipelines.runner import run_pipeline

# A step notebook that records what it received, then writes its products.
RECORD = (
    "import json, os, time\n"
    "got = {'params': {k: globals().get(k) for k in ('n', 'lr')}, 'upstream': upstream, 'product': product,\n"
    "       'pid': os.getpid(), 'start': time.time()}\n"
    "time.sleep(pause)\n"
    "got['end'] = time.time()\n"
    "for p in product:\n"
    "    os.makedirs(os.path.dirname(p) or '.', exist_ok=True)\n"
    "    json.dump(got, open(p, 'w'))"
)
PARAMS = "n = 0\nlr = 0.0\npause = 0.0\nupstream = {}\nproduct = []"


@pytest.fixture
def diamond(tmp_path, notebook, pipeline_file):
    """prepare -> (left, right[lr=1], right[lr=2]) -> join; left and right pause so they overlap."""
    for name in ("prepare", "left", "right", "join"):
        notebook(tmp_path / f"{name}.ipynb", PARAMS, RECORD)
    spec = {
        "name": "diamond",
        "defaults": {"timeout": 60, "retries": 1},
        "steps": {
            "prepare": {
                "notebook": "prepare.ipynb",
                "params": {"n": 3},
                "products": ["data/p.json"],
            },
            "left": {
                "notebook": "left.ipynb",
                "after": ["prepare"],
                "params": {"pause": 2.0},
                "products": ["out/left.json"],
            },
            "right": {
                "notebook": "right.ipynb",
                "after": ["prepare"],
                "grid": {"lr": [1, 2]},
                "params": {"pause": 2.0},
                "products": ["out/right-{lr}.json"],
            },
            "join": {
                "notebook": "join.ipynb",
                "after": ["left", "right"],
                "products": ["out/join.json"],
            },
        },
    }
    return pipeline_file(tmp_path, spec)


def load(folder, product):
    return json.loads((folder / product).read_text())


def test_parallel_run_products_upstream_then_cached_then_partial(client, diamond):
    folder = diamond.parent
    run = run_pipeline(diamond, client=client)
    assert run.status == "ok", run.summary()
    assert {s["status"] for s in run.steps.values()} == {"ok"}
    # Products and parameters arrive; upstream maps expanded names to product paths.
    join = load(folder, "out/join.json")
    assert join["upstream"] == {
        "left": ["out/left.json"],
        "right[lr=1]": ["out/right-1.json"],
        "right[lr=2]": ["out/right-2.json"],
    }
    assert join["product"] == ["out/join.json"]
    assert load(folder, "out/right-2.json")["params"]["lr"] == 2
    assert load(folder, "data/p.json")["params"]["n"] == 3
    # Independent steps ran at the same time, on both workers, each in its own kernel.
    middle = [load(folder, p) for p in ("out/left.json", "out/right-1.json", "out/right-2.json")]
    assert any(
        a["start"] < b["end"] and b["start"] < a["end"]
        for a in middle
        for b in middle
        if a is not b
    )
    assert len({run.steps[n]["worker"] for n in ("left", "right[lr=1]", "right[lr=2]")}) == 2
    assert len({m["pid"] for m in middle}) == 3
    # A fresh kernel per step, most started ahead of time while earlier steps ran.
    assert len({s["kernel_pid"] for s in run.steps.values()}) == len(run.steps)
    assert (
        run.steps["prepare"]["kernel_warm"]
        and sum(s["kernel_warm"] for s in run.steps.values()) >= 3
    )
    # Executed notebooks land in runs/<id>/, the source is untouched.
    executed = nbformat.read(str(run.run_dir / "right[lr=1].ipynb"), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    source = nbformat.read(str(folder / "right.ipynb"), as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in source.cells)
    record = json.loads((run.run_dir / "run.json").read_text())
    assert set(record["versions"]) >= {"python", "papermill", "distributed"}
    assert {"status", "start", "end", "duration", "worker", "devices", "params", "hashes"} <= set(
        record["steps"]["left"]
    )

    again = run_pipeline(diamond, client=client)
    assert {s["status"] for s in again.steps.values()} == {"cached"}

    # Changing one param reruns that step and what depends on it, nothing else.
    changed = run_pipeline(diamond, client=client, params=["left.pause=0.2"])
    statuses = {n: s["status"] for n, s in changed.steps.items()}
    assert statuses == {
        "prepare": "cached",
        "left": "ok",
        "right[lr=1]": "cached",
        "right[lr=2]": "cached",
        "join": "ok",
    }

    # --only with --force runs just that node; the latest record says so.
    only = run_pipeline(
        diamond, client=client, params=["left.pause=0.2"], only="right[lr=2]", force=True
    )
    assert {n for n, s in only.steps.items() if s["status"] == "ok"} == {"right[lr=2]"}
    assert RunRecord.load(folder).run_id == only.run_id


def test_failure_keeps_notebook_skips_dependents_and_finishes_other_branch(
    client, tmp_path, notebook, pipeline_file
):
    notebook(tmp_path / "bad.ipynb", "upstream = {}\nproduct = []", "x = 1", "1 / 0")
    notebook(
        tmp_path / "good.ipynb", "upstream = {}\nproduct = []", "open('good.txt', 'w').write('ok')"
    )
    notebook(tmp_path / "after_bad.ipynb", "upstream = {}\nproduct = []", "pass")
    path = pipeline_file(
        tmp_path,
        {
            "steps": {
                "bad": {"notebook": "bad.ipynb"},
                "after_bad": {"notebook": "after_bad.ipynb", "after": ["bad"]},
                "good": {"notebook": "good.ipynb", "products": ["good.txt"]},
            }
        },
    )
    run = run_pipeline(path, client=client)
    assert run.status == "failed"
    assert run.steps["bad"]["status"] == "failed"
    assert run.steps["bad"]["attempts"] == 1  # an error in user code is not retried
    assert (
        "ZeroDivisionError" in run.steps["bad"]["error"]
        and "cell In [4] (1 / 0)" in run.steps["bad"]["error"]
    )
    assert run.steps["after_bad"]["status"] == "skipped"
    assert run.steps["good"]["status"] == "ok"
    executed = (run.run_dir / "bad.ipynb").read_text()
    assert "An Exception was encountered" in executed  # papermill's error banner
    assert "bad failed" in run.summary() and "ZeroDivisionError" in run.summary()


def test_killed_kernel_is_retried_then_succeeds(client, tmp_path, notebook, pipeline_file):
    notebook(
        tmp_path / "fragile.ipynb",
        "upstream = {}\nproduct = []",
        "import os, pathlib, signal\nif not pathlib.Path('seen').exists():\n"
        "    pathlib.Path('seen').write_text('1')\n    os.kill(os.getpid(), signal.SIGKILL)",
        "open('done.txt', 'w').write('ok')",
    )
    path = pipeline_file(
        tmp_path,
        {
            "steps": {
                "fragile": {"notebook": "fragile.ipynb", "retries": 2, "products": ["done.txt"]}
            }
        },
    )
    run = run_pipeline(path, client=client)
    step = run.steps["fragile"]
    assert step["status"] == "ok" and step["attempts"] == 2
    assert step["failures"][0]["kind"] == execute.DEAD_KERNEL


def test_timeout_interrupts_and_names_the_cell(client, tmp_path, notebook, pipeline_file):
    notebook(tmp_path / "slow.ipynb", "upstream = {}\nproduct = []", "import time\ntime.sleep(120)")
    path = pipeline_file(tmp_path, {"steps": {"slow": {"notebook": "slow.ipynb", "timeout": 1.5}}})
    run = run_pipeline(path, client=client)
    step = run.steps["slow"]
    assert step["status"] == "failed" and step["kind"] == execute.TIMEOUT
    assert "timed out after 1.5 s in cell In [3] (import time)" in step["error"]
    assert step["attempts"] == 1


def test_step_outgrowing_worker_memory_is_a_dead_kernel(tmp_path, notebook, pipeline_file):
    import logging

    from distributed import Client, LocalCluster

    notebook(
        tmp_path / "hog.ipynb",
        "upstream = {}\nproduct = []",
        "import time\nblocks = []\nfor _ in range(40):\n    blocks.append(bytearray(50 * 2**20))\n    time.sleep(0.05)",
    )
    path = pipeline_file(tmp_path, {"steps": {"hog": {"notebook": "hog.ipynb", "retries": 0}}})
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            memory_limit="600MiB",
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as small,
    ):
        run = run_pipeline(path, client=small)
    step = run.steps["hog"]
    assert step["status"] == "failed" and step["kind"] == execute.OUT_OF_MEMORY
    assert "dead kernel: out of memory" in step["error"] and "limit 600 MiB" in step["error"]


def test_cache_key_follows_code_and_inputs_not_outputs_or_markdown(
    client, tmp_path, notebook, pipeline_file
):
    nb_path = notebook(
        tmp_path / "s.ipynb", "upstream = {}\nproduct = []", "text = open('raw.csv').read()"
    )
    (tmp_path / "raw.csv").write_text("1,2\n")
    path = pipeline_file(tmp_path, {"steps": {"s": {"notebook": "s.ipynb", "inputs": ["raw.csv"]}}})
    assert run_pipeline(path, client=client).steps["s"]["status"] == "ok"
    # Outputs, markdown and trailing spaces are not code: still cached.
    nb = nbformat.read(str(nb_path), as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="old output")]
    nb.cells[1].source += "   "
    nb.cells.append(nbformat.v4.new_markdown_cell("notes"))
    nbformat.write(nb, str(nb_path))
    assert run_pipeline(path, client=client).steps["s"]["status"] == "cached"
    (tmp_path / "raw.csv").write_text("1,3\n")  # a declared input changed
    assert run_pipeline(path, client=client).steps["s"]["status"] == "ok"
    nb.cells[1].source = "text = open('raw.csv').read().strip()"  # the code changed
    nbformat.write(nb, str(nb_path))
    step = run_pipeline(path, client=client).steps["s"]
    assert step["status"] == "ok" and step["devices"] == ["cpu"]


def test_lost_worker_is_survived(tmp_path, notebook, pipeline_file):
    """The step's worker process dies mid-step; the step runs again on its replacement."""
    import logging

    from distributed import Client, LocalCluster

    notebook(
        tmp_path / "crash.ipynb",
        "upstream = {}\nproduct = []",
        "import os, pathlib, signal\nif not pathlib.Path('worker-killed').exists():\n"
        "    pathlib.Path('worker-killed').write_text('1')\n    os.kill(os.getppid(), signal.SIGKILL)",
        "open('done.txt', 'w').write('ok')",
    )
    path = pipeline_file(
        tmp_path, {"steps": {"crash": {"notebook": "crash.ipynb", "products": ["done.txt"]}}}
    )
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, dashboard_address=":0", silence_logs=logging.CRITICAL
        ) as cluster,
        Client(cluster) as c,
    ):
        first = next(iter(c.scheduler_info()["workers"]))
        run = run_pipeline(path, client=c)
    step = run.steps["crash"]
    assert (tmp_path / "worker-killed").exists() and step["status"] == "ok"
    assert step["worker"] != first  # it finished on the worker that replaced the lost one


def test_interrupted_run_stops_its_kernels(client, tmp_path, notebook, pipeline_file):
    import os
    import time

    import psutil

    from aiinfra_magics.pipelines.progress import NoProgress

    notebook(
        tmp_path / "long.ipynb",
        "upstream = {}\nproduct = []",
        "import os\nopen('pid', 'w').write(str(os.getpid()))",
        "import time\ntime.sleep(120)",
    )
    path = pipeline_file(tmp_path, {"steps": {"long": {"notebook": "long.ipynb"}}})

    class CtrlC(NoProgress):
        def update(self, run, name, cell=None):
            if cell == 3:  # the sleeping cell has started: the user presses Ctrl-C
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(path, client=client, progress=CtrlC())
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the step's kernel still runs"
        time.sleep(0.1)
    record = RunRecord.load(tmp_path)
    assert record.status == "interrupted" and os.path.exists(record.path)
