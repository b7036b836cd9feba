"""Held against used per pipeline step, and right-sizing from the measured peaks.

A real ``dask worker`` with two task slots and one GPU (its ``GPU=1`` resource, read
through the fake NVML device at 2 %: no GPU can exist here), real kernels via papermill.
"""

from __future__ import annotations

import json

import pytest
import yaml
from dask_procs import fake_gpu_env, steady_feed
from distributed import Client
from nbfiles import write_notebook
from nvml_fake import load_feed
from waiting import wait_for

from aiinfra_magics.clusters import cost
from aiinfra_magics.doors.words import Context, run_words
from aiinfra_magics.metrics.efficiency import combined, ratio
from aiinfra_magics.metrics.plugins import WORKER_PLUGIN
from aiinfra_magics.metrics.rightsize import step_suggestions
from aiinfra_magics.pipelines.report import write_report
from aiinfra_magics.pipelines.runner import run_pipeline

PARAMS = "upstream = {}\nproduct = []"
BURN = (
    "import time\n"
    "t0 = time.process_time()\n"
    "while time.process_time() - t0 < 1.5:\n"
    "    sum(range(1000))"
)


def test_a_sleeping_gpu_step_is_near_zero_and_is_told_to_ask_for_less(dask_processes, tmp_path):
    address = dask_processes.scheduler()
    # GPU 0 of the fake's two boards is this worker's (as dask-cuda would set it).
    env = {**fake_gpu_env(tmp_path, steady_feed(load_feed(), util=2)), "CUDA_VISIBLE_DEVICES": "0"}
    dask_processes.worker("g1", "gpu-host", env=env, resources="GPU=1")
    folder = tmp_path / "pipe"
    folder.mkdir()
    write_notebook(folder / "prep.ipynb", PARAMS, BURN)
    write_notebook(folder / "train.ipynb", PARAMS, "import time\ntime.sleep(3)")
    spec = folder / "pipeline.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "sized",
        "steps": {
            "prep": {"notebook": "prep.ipynb"},
            "train": {"notebook": "train.ipynb", "after": ["prep"], "resources": {"GPU": 1}},
        },
    }))  # fmt: skip
    with Client(address, timeout=60) as client:
        client.wait_for_workers(1, timeout=120)
        cost.install(client)
        # The worker reads its GPU before the steps start. Its plugin's thread sets
        # ``usage`` once it has found the GPU: None until then (a lambda: sent by value).
        wait_for(
            lambda: all(
                client.run(
                    lambda dask_worker: getattr(
                        dask_worker.plugins[WORKER_PLUGIN].usage, "ticks", 0
                    ) > 1
                ).values()
            ),
            what="the worker's GPU readings",
        )  # fmt: skip
        run = run_pipeline(spec, client=client)
    assert run.status == "ok", run.summary()
    record = json.loads((run.run_dir / "run.json").read_text())
    train, prep = record["steps"]["train"]["cost"], record["steps"]["prep"]["cost"]

    # The GPU step held its GPU while it slept at 2 %: used is that share of held.
    assert train["gpu_hours"] * 3600 >= 3.0
    assert 0 <= train["gpu_used_hours"] <= train["gpu_hours"]
    assert train["gpu_efficiency"] == pytest.approx(0.02, abs=0.011)
    assert train["gpu_peak"] == pytest.approx(0.02) and train["gpu_utilization"] == 2.0
    # The CPU step held no GPU, and used at least its burn of one core slot.
    assert prep["gpu_hours"] == 0 and prep["gpu_used_hours"] == 0 and prep["gpu_efficiency"] is None
    assert prep["cpu_efficiency"] == ratio(prep["cpu_hours"], prep["core_hours"])
    # (1.42 s of the 1.5 s burn was read once: the watchdog's own late sample replaced the
    # final reading, fixed in Watchdog.stop; /proc's clock ticks still lose a little.)
    assert 1.5 / 3600 / prep["core_hours"] * 0.9 <= prep["cpu_efficiency"] <= 1
    for step in (train, prep):  # the kernel's peak against the limit it ran under
        assert 0 < step["peak_memory"] < step["memory_limit"]

    # The run: sums, recomputed efficiencies, the largest peak.
    total = record["cost"]
    assert total["gpu_used_hours"] == pytest.approx(train["gpu_used_hours"])
    assert total["gpu_efficiency"] == ratio(total["gpu_used_hours"], total["gpu_hours"])
    assert total["cpu_efficiency"] == ratio(total["cpu_hours"], total["core_hours"])
    assert total["peak_memory"] == max(train["peak_memory"], prep["peak_memory"])

    # Right-sizing: run.json, the end-of-run summary, the report.
    by_step = {s["step"]: s for s in record["suggestions"]}
    assert by_step["train"]["suggest"]["resources"] == {"GPU": 0.25}
    assert by_step["train"]["text"].startswith("step train used at most ")
    assert "and 0.02 GPU; it held " in by_step["train"]["text"]
    assert "resources: {GPU: 0.25}" in by_step["train"]["text"]
    summary = run.summary()
    assert "\n  used: CPU " in summary and by_step["train"]["text"] in summary
    html = write_report(run).read_text()
    assert "<th>used</th>" in html and "step train used at most" in html
    assert by_step == {s["step"]: s for s in step_suggestions(record["steps"])}
    shown = run_words(["pipeline", "status", str(spec), "--suggest"], Context(door="cli"))
    assert by_step["train"]["text"] in shown.splitlines()
    as_json = run_words(
        ["pipeline", "status", str(spec), "--suggest", "--json"], Context(door="cli")
    )
    assert as_json == record["suggestions"]


def test_attempts_and_grid_expansions_combine():
    one = {
        "core_hours": 1.0,
        "cpu_hours": 0.5,
        "gpu_hours": 1.0,
        "cpu_efficiency": 0.5,
        "gpu_used_hours": 0.2,
        "peak_memory": 2 << 30,
        "memory_limit": 8 << 30,
        "gpu_peak": 0.3,
    }
    two = {**one, "gpu_used_hours": None, "peak_memory": 3 << 30}  # fmt: skip
    summed = {"core_hours": 2.0, "cpu_hours": 1.0, "gpu_hours": 2.0}
    both = combined(summed, [one, {**one, "peak_memory": 3 << 30}])
    assert both["gpu_used_hours"] == 0.4 and both["gpu_efficiency"] == 0.2
    assert both["cpu_efficiency"] == 0.5 and both["peak_memory"] == 3 << 30
    assert combined(summed, [one, two])["gpu_efficiency"] is None  # one part not measured
    assert combined(summed, [{"core_hours": 1.0}]) == summed  # nothing measured: as it was
    steps = {
        "train[lr=1]": {"status": "ok", "cost": {**one, "held": {"gpus": 1}}},
        "train[lr=2]": {"status": "ok", "cost": {**one, "peak_memory": 7 << 30, "held": {"gpus": 1}}},
        "skipped": {"status": "skipped", "cost": one},
    }  # fmt: skip
    [train] = step_suggestions(steps)
    assert train["step"] == "train" and train["peak_memory"] == 7 << 30
    assert train["suggest"] == {"resources": {"GPU": 0.5}}  # 7 GiB of 8 is not over-asked
