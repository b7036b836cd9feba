"""Running pipelines for real: papermill in fresh kernels on a 2-worker Dask cluster."""

from __future__ import annotations

import json
import time

import nbformat
import psutil
import pytest

from aiinfra_magics.pipelines import execute
from aiinfra_magics.pipelines.record import RunRecord
from aiinfra_magics.pipelines.runner import run_pipeline


def until(condition, what: str, timeout: float = 120.0):
    """Poll ``condition`` with a generous deadline: a loaded machine is slow, never wrong."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# A step notebook that records what it received, then writes its products.
RECORD = (
    "import json, os\n"
    "got = {'params': {k: globals().get(k) for k in ('n', 'lr')}, 'upstream': upstream, 'product': product,\n"
    "       'pid': os.getpid()}\n"
    "for p in product:\n"
    "    os.makedirs(os.path.dirname(p) or '.', exist_ok=True)\n"
    "    json.dump(got, open(p, 'w'))"
)
# A barrier for ``meet`` steps: each announces itself, then waits for the others. Steps that
# ran one after another would never all arrive, so the step fails (it never sleeps on a clock
# to prove overlap).
BARRIER = (
    "import os, pathlib, time\n"
    "if meet:\n"
    "    here = pathlib.Path('arrived'); here.mkdir(exist_ok=True)\n"
    "    (here / str(os.getpid())).touch()\n"
    "    deadline = time.monotonic() + 300\n"
    "    while len(list(here.iterdir())) < meet:\n"
    "        assert time.monotonic() < deadline, 'the other steps never ran alongside'\n"
    "        time.sleep(0.05)"
)
PARAMS = "n = 0\nlr = 0.0\nmeet = 0\nupstream = {}\nproduct = []"


@pytest.fixture
def diamond(tmp_path, notebook, pipeline_file):
    """prepare -> (left, right[lr=1], right[lr=2]) -> join; two of the middle three must meet."""
    for name in ("prepare", "left", "right", "join"):
        notebook(tmp_path / f"{name}.ipynb", PARAMS, BARRIER, RECORD)
    spec = {
        "name": "diamond",
        "defaults": {"retries": 1},
        "steps": {
            "prepare": {
                "notebook": "prepare.ipynb",
                "params": {"n": 3},
                "products": ["data/p.json"],
            },
            "left": {
                "notebook": "left.ipynb",
                "after": ["prepare"],
                "params": {"meet": 2},
                "products": ["out/left.json"],
            },
            "right": {
                "notebook": "right.ipynb",
                "after": ["prepare"],
                "grid": {"lr": [1, 2]},
                "params": {"meet": 2},
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


def test_parallel_run_records_then_is_cached(client, diamond):
    folder = diamond.parent
    run = run_pipeline(diamond, client=client)
    assert run.status == "ok", run.summary()
    assert {s["status"] for s in run.steps.values()} == {"ok"}
    # The barrier let the middle steps pass: two of them ran at the same time, on both workers,
    # each in its own kernel.
    assert len(list((folder / "arrived").iterdir())) == 3
    middle = [load(folder, p) for p in ("out/left.json", "out/right-1.json", "out/right-2.json")]
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


# prepare -> right[lr=1], right[lr=2] -> join, and a step nobody depends on.
CHAIN = {
    "steps": {
        "prepare": {"notebook": "s.ipynb", "params": {"n": 3}, "products": ["data/p.json"]},
        "right": {
            "notebook": "s.ipynb",
            "after": ["prepare"],
            "grid": {"lr": [1, 2]},
            "products": ["out/right-{lr}.json"],
        },
        "join": {"notebook": "s.ipynb", "after": ["right"], "products": ["out/join.json"]},
        "alone": {"notebook": "s.ipynb", "products": ["out/alone.json"]},
    }
}


@pytest.fixture
def chain(tmp_path, notebook, pipeline_file):
    notebook(tmp_path / "s.ipynb", PARAMS, RECORD)
    return pipeline_file(tmp_path, CHAIN)


def test_upstream_products_and_params_are_injected(client, chain):
    folder = chain.parent
    run = run_pipeline(chain, client=client)
    assert run.status == "ok", run.summary()
    # upstream maps expanded names to product paths; product lists the step's own.
    join = load(folder, "out/join.json")
    assert join["upstream"] == {
        "right[lr=1]": ["out/right-1.json"],
        "right[lr=2]": ["out/right-2.json"],
    }
    assert join["product"] == ["out/join.json"]
    assert load(folder, "out/right-1.json")["upstream"] == {"prepare": ["data/p.json"]}
    assert load(folder, "out/right-2.json")["params"]["lr"] == 2
    assert load(folder, "data/p.json")["params"] == {"n": 3, "lr": 0.0}


def test_changed_param_reruns_that_step_and_its_dependents_only(client, chain):
    folder = chain.parent
    assert run_pipeline(chain, client=client).status == "ok"
    changed = run_pipeline(chain, client=client, params=["prepare.n=4"])
    statuses = {n: s["status"] for n, s in changed.steps.items()}
    assert statuses == {
        "prepare": "ok",
        "right[lr=1]": "ok",
        "right[lr=2]": "ok",
        "join": "ok",
        "alone": "cached",
    }
    assert load(folder, "data/p.json")["params"]["n"] == 4
    # The same params again: the key matches the last run, nothing runs.
    again = run_pipeline(chain, client=client, params=["prepare.n=4"])
    assert {s["status"] for s in again.steps.values()} == {"cached"}
    # --only with --force runs just that node; the latest record says so.
    only = run_pipeline(
        chain, client=client, params=["prepare.n=4"], only="right[lr=2]", force=True
    )
    assert {n for n, s in only.steps.items() if s["status"] == "ok"} == {"right[lr=2]"}
    assert RunRecord.load(folder).run_id == only.run_id


def test_cache_hit_needs_the_products_on_disk(client, chain):
    folder = chain.parent
    assert run_pipeline(chain, client=client).status == "ok"
    (folder / "out/alone.json").unlink()
    run = run_pipeline(chain, client=client)
    assert run.steps["alone"]["status"] == "ok"
    assert (folder / "out/alone.json").exists()
    assert run.steps["prepare"]["status"] == "cached"


def test_step_that_does_not_write_a_declared_product_fails(
    client, tmp_path, notebook, pipeline_file
):
    notebook(tmp_path / "lazy.ipynb", "upstream = {}\nproduct = []", "x = 1")
    notebook(tmp_path / "after.ipynb", "upstream = {}\nproduct = []", "pass")
    path = pipeline_file(
        tmp_path,
        {
            "steps": {
                "lazy": {"notebook": "lazy.ipynb", "products": ["out/missing.txt"]},
                "after": {"notebook": "after.ipynb", "after": ["lazy"]},
            }
        },
    )
    run = run_pipeline(path, client=client)
    assert run.status == "failed"
    assert run.steps["lazy"]["status"] == "failed"
    assert "declared product out/missing.txt was not written" in run.steps["lazy"]["error"]
    assert run.steps["after"]["status"] == "skipped"
    # A failed step is not cached: the next run tries it again.
    assert run_pipeline(path, client=client).steps["lazy"]["status"] == "failed"


def _kernels_of(proc: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in proc.children(recursive=True):
        try:
            if any("ipykernel_launcher" in part for part in child.cmdline()):
                if child.status() != psutil.STATUS_ZOMBIE:
                    found.append(child)
        except psutil.Error:
            pass
    return found


def test_no_kernel_outlives_its_run(client, chain):
    """Warm kernels started ahead of time are shut down when the run ends, not when workers die."""
    run = run_pipeline(chain, client=client)
    assert run.status == "ok" and any(s["kernel_warm"] for s in run.steps.values())
    until(lambda: not _kernels_of(psutil.Process()), "the run's kernels to exit")
    # The workers that ran the steps still live: nothing was cleaned up by their death.
    assert len(client.scheduler_info()["workers"]) == 2


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
    # The timeout is far longer than the parameter cells take even on a loaded machine, and far
    # shorter than the sleep: it can only fire in the sleeping cell.
    notebook(
        tmp_path / "slow.ipynb", "upstream = {}\nproduct = []", "import time\ntime.sleep(3600)"
    )
    path = pipeline_file(tmp_path, {"steps": {"slow": {"notebook": "slow.ipynb", "timeout": 20}}})
    run = run_pipeline(path, client=client)
    step = run.steps["slow"]
    assert step["status"] == "failed" and step["kind"] == execute.TIMEOUT
    assert "timed out after 20 s in cell In [3] (import time)" in step["error"]
    assert step["attempts"] == 1


# retries: 1 as well: a step killed for outgrowing its memory is not retried (issue 25 item 15),
# the same notebook on the same limit would be killed again.
@pytest.mark.parametrize("retries", [0, 1])
def test_step_outgrowing_worker_memory_is_a_dead_kernel_and_not_retried(
    tmp_path, notebook, pipeline_file, retries
):
    import logging

    from distributed import Client, LocalCluster

    notebook(
        tmp_path / "hog.ipynb",
        "upstream = {}\nproduct = []",
        # Grow past the limit, then hold the memory: the watchdog sees it whenever it samples.
        "import time\nblocks = [b'x' * (50 * 2**20) for _ in range(16)]\ntime.sleep(3600)",
    )
    path = pipeline_file(
        tmp_path, {"steps": {"hog": {"notebook": "hog.ipynb", "retries": retries}}}
    )
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            memory_limit="600MiB",
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as small,
    ):
        run = run_pipeline(path, client=small)
    step = run.steps["hog"]
    assert step["status"] == "failed" and step["kind"] == execute.OUT_OF_MEMORY
    assert "dead kernel: out of memory" in step["error"] and "limit 600 MiB" in step["error"]
    assert step["attempts"] == 1 and len(step["failures"]) == 1


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
            n_workers=1,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as c,
    ):
        first = next(iter(c.scheduler_info()["workers"]))
        run = run_pipeline(path, client=c)
    step = run.steps["crash"]
    assert (tmp_path / "worker-killed").exists() and step["status"] == "ok"
    assert step["worker"] != first  # it finished on the worker that replaced the lost one


def _cli(*args: str, **kw):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "aiinfra_magics", *args], **kw)


@pytest.mark.parametrize("cluster", [None, "ctrlc"])
def test_ctrl_c_stops_the_run_and_its_kernels(tmp_path, notebook, pipeline_file, cluster):
    """A real SIGINT to a real ``python -m aiinfra_magics pipeline run``.

    With ``--cluster`` the step's kernel is a child of a worker that outlives the CLI, so only
    the run's own clean-up can stop it.
    """
    import os
    import signal
    import subprocess

    notebook(
        tmp_path / "long.ipynb",
        "upstream = {}\nproduct = []",
        "import os\nopen('pid', 'w').write(str(os.getpid()))",
        "import time\ntime.sleep(3600)",
    )
    path = pipeline_file(tmp_path, {"steps": {"long": {"notebook": "long.ipynb"}}})
    extra = []
    if cluster:
        start = _cli("cluster", "start", cluster, "--backend", "local", "--workers", "1")
        assert start.wait(timeout=180) == 0
        extra = ["--cluster", cluster]
    try:
        run = _cli(
            "pipeline", "run", str(path), *extra,
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            # The step's kernel has written its pid: the run is in its sleeping cell.
            until(lambda: (tmp_path / "pid").exists() or run.poll() is not None, "the step")
            assert run.poll() is None, run.stderr.read()
            pid = int((tmp_path / "pid").read_text())
            run.send_signal(signal.SIGINT)
            run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        assert run.returncode != 0
        until(
            lambda: (
                not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            ),
            "the step's kernel to stop",
        )
    finally:
        if cluster:
            assert _cli("cluster", "stop", cluster).wait(timeout=120) == 0
    record = RunRecord.load(tmp_path)
    assert record.status == "interrupted" and os.path.exists(record.path)


def test_run_ids_sort_in_the_order_runs_started(tmp_path):
    # load() takes the last id as the latest run: ids made within one second must still sort
    # by start (with seconds and a random suffix alone, half of such pairs sorted backwards).
    from aiinfra_magics.pipelines.record import new_run_id

    ids = [new_run_id() for _ in range(500)]
    assert sorted(ids) == ids and len(set(ids)) == len(ids)
    runs = tmp_path / "runs"
    for run_id in ids[:3]:
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / "run.json").write_text(json.dumps({"run_id": run_id, "status": "ok"}))
    assert RunRecord.load(tmp_path).data["run_id"] == ids[2]
