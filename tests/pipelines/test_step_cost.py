"""What each pipeline step held while it ran (issue 12): GPU-, core-, memory- and CPU-hours.

One real worker with a mocked GPU (a ``GPU=1`` resource, as the cluster cost tests
mock one) and two task slots; real kernels via papermill.
"""

from __future__ import annotations

import json

import pytest

from aiinfra_magics.clusters.stint import step_stint
from aiinfra_magics.doors.words import Context, run_words
from aiinfra_magics.pipelines.record import STEP_FIGURES, add_cost, cached_cost, hours
from aiinfra_magics.pipelines.report import write_report
from aiinfra_magics.pipelines.runner import run_pipeline

PARAMS = "upstream = {}\nproduct = []"
WRITE = "open(product[0], 'w').write('done')"
# The GPU step waits a known time (it uses the GPU it asked for, not the CPU).
SLEEP = "import time\ntime.sleep(2)"
# The CPU step burns a known amount of its kernel's CPU time (not wall time).
BURN = (
    "import time\n"
    "t0 = time.process_time()\n"
    "while time.process_time() - t0 < 1.0:\n"
    "    sum(range(1000))"
)


@pytest.fixture
def two_steps(tmp_path, notebook, pipeline_file):
    notebook(tmp_path / "prep.ipynb", PARAMS, BURN, WRITE)
    notebook(tmp_path / "train.ipynb", PARAMS, SLEEP, WRITE)
    return pipeline_file(
        tmp_path,
        {
            "name": "costed",
            "steps": {
                "prep": {"notebook": "prep.ipynb", "products": ["prep.txt"]},
                "train": {
                    "notebook": "train.ipynb",
                    "after": ["prep"],
                    "resources": {"GPU": 1},
                    "products": ["model.txt"],
                },
            },
        },
    )


def test_steps_record_what_they_held_and_cached_steps_nothing(gpu_client, two_steps):
    run = run_pipeline(two_steps, client=gpu_client)
    assert run.status == "ok", run.summary()
    record = json.loads((run.run_dir / "run.json").read_text())
    (worker,) = gpu_client.scheduler_info(n_workers=-1)["workers"].values()
    slot_gb = worker["memory_limit"] / 2 / 1e9  # one of the worker's two task slots

    train, prep = record["steps"]["train"], record["steps"]["prep"]
    for step, gpus in ((train, 1.0), (prep, 0.0)):
        cost, held_h = step["cost"], step["duration"] / 3600.0
        # The figures are the step's own start..end times what it held (one task slot).
        assert cost["held"] == {"cores": 1, "gpus": gpus, "memory_gb": pytest.approx(slot_gb)}
        assert cost["worker_hours"] == pytest.approx(held_h, abs=1e-8)
        assert cost["core_hours"] == pytest.approx(held_h, abs=1e-8)
        assert cost["gpu_hours"] == pytest.approx(held_h * gpus, abs=1e-8)
        assert cost["memory_gb_hours"] == pytest.approx(held_h * slot_gb, abs=1e-8)
    # The GPU step held its GPU at least while it slept; the CPU step held none.
    assert train["cost"]["gpu_hours"] * 3600 >= 2.0
    assert prep["cost"]["gpu_hours"] == 0
    # CPU time is measured on the kernel: the burn's second is in it, less what /proc's
    # clock ticks lose (0.94 s was read once, before Watchdog.stop waited for its thread).
    assert prep["cost"]["cpu_hours"] * 3600 >= 0.9
    # The run's total is the sum of its steps.
    total = record["cost"]
    assert total["steps"] == 2
    for key in STEP_FIGURES:
        assert total[key] == pytest.approx(train["cost"][key] + prep["cost"][key], abs=1e-8)

    # The report and the status table show each step's GPU- and core-hours.
    html = write_report(run).read_text()
    assert "<th>GPU-hours</th>" in html and "<th>core-hours</th>" in html
    for step in (train, prep):
        assert f"<td>{hours(step['cost']['gpu_hours'])}</td>" in html
        assert f"<td>{hours(step['cost']['core_hours'])}</td>" in html
    status = str(run_words(["pipeline", "status", str(two_steps)], Context(door="cli")))
    header, *rows = status.split("\n\n")[1].splitlines()
    assert "GPU-h" in header and "core-h" in header
    row = next(r for r in rows if r.startswith("train "))
    assert hours(train["cost"]["gpu_hours"]) in row.split()

    again = run_pipeline(two_steps, client=gpu_client)
    assert {s["status"] for s in again.steps.values()} == {"cached"}
    cached = json.loads((again.run_dir / "run.json").read_text())
    assert all(s["cost"] == cached_cost() for s in cached["steps"].values())
    assert cached["cost"]["steps"] == 0 and cached["cost"]["gpu_hours"] == 0
    html = write_report(again).read_text()
    assert html.count("<td>cached</td>") == 2 and "nothing ran in this run" in html


def test_what_a_step_holds_follows_the_cluster_rule():
    gb = int(8e9)
    # Asked for a GPU: Dask reserved it for the step.
    asked = step_stint(0.0, {"GPU": 1}, {"GPU": 2}, 4, gb, False)
    assert (asked.threads, asked.gpus, asked.memory_bytes) == (1, 1.0, gb // 4)
    # The worker's GPUs are a resource the step did not ask for: it held none.
    assert step_stint(0.0, {}, {"GPU": 2}, 4, gb, True).gpus == 0.0
    # A dask-cuda worker (no resource; NVML reports its GPU): shared among its task slots.
    assert step_stint(0.0, None, {}, 1, gb, True).gpus == 1.0
    assert step_stint(0.0, None, {}, 2, gb, True).gpus == 0.5
    # A CPU worker; no memory limit.
    plain = step_stint(0.0, None, {}, 2, None, False)
    assert (plain.gpus, plain.memory_bytes) == (0.0, 0)
    assert asked.figures(3600.0)["gpu_hours"] == 1.0


def test_retried_attempts_add_up_and_a_cached_step_adds_nothing():
    one = {**dict.fromkeys(STEP_FIGURES, 0.5), "held": {"gpus": 1}}
    two = add_cost(one, {**dict.fromkeys(STEP_FIGURES, 0.25), "held": {"gpus": 1}})
    assert all(two[k] == 0.75 for k in STEP_FIGURES) and two["held"] == {"gpus": 1}
    assert add_cost(cached_cost(), one) == one
    assert hours(0.0) == "0" and hours(2 / 3600) == "0.0005556" and hours(None) == ""
    assert hours(5.556e-06) == "0.000005556" and hours(12.345) == "12.35"  # never 5.6e-06
