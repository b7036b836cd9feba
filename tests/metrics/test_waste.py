"""Waste warnings and ``--stop-when-wasteful`` on real clusters started by the CLI.

Local clusters (a daemon, real worker processes) whose workers hold a GPU (dask config
``distributed.worker.resources.GPU``) that the fake NVML device reads at 3 %: no GPU
can exist here. Short windows are configured; the same code runs with the 15 min default.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from dask_procs import fake_gpu_env, steady_feed
from nvml_fake import load_feed
from waiting import wait_for

CLI = [sys.executable, "-m", "aiinfra_magics"]


@pytest.fixture
def gpu_env(tmp_path):
    env = {
        **os.environ,
        **fake_gpu_env(tmp_path, steady_feed(load_feed(), util=3)),
        "DASK_DISTRIBUTED__WORKER__RESOURCES__GPU": "1",
    }
    started: list[str] = []
    yield env, started
    for name in started:
        subprocess.run([*CLI, "cluster", "stop", name], env=env, capture_output=True, timeout=120)


def cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=180)


def test_idle_gpus_warn_and_a_wasteful_cluster_stops_with_its_reason(gpu_env):
    env, started = gpu_env
    common = ["--backend", "local", "--workers", "1", "--threads", "1", "--waste-window", "2s"]
    for name, extra in (("warned", []), ("stopped", ["--stop-when-wasteful"])):
        done = cli(env, "cluster", "start", name, *common, *extra)
        assert done.returncode == 0, done.stderr
        started.append(name)

    # A warning on the status and on the listing the sidebar's card reads.
    status = wait_for(
        lambda: (
            (s := json.loads(cli(env, "cluster", "status", "warned", "--json").stdout))["warnings"]
            and s
        ),
        what="the waste warning",
    )
    [warning] = status["warnings"]
    assert warning.startswith("wasteful: 1 GPU(s) held under 10% utilisation for ")
    assert status["cost"]["waste"]["window"] == 2.0 and status["cost"]["gpu_efficiency"] < 0.1
    text = cli(env, "cluster", "status", "warned").stdout
    assert any(  # the same warning, its clock read again
        ln.startswith("warning") and "wasteful: 1 GPU(s) held under 10% utilisation" in ln
        for ln in text.splitlines()
    ), text
    listed = wait_for(
        lambda: [
            c for c in json.loads(cli(env, "cluster", "list", "--json").stdout)
            if c["name"] == "warned" and c["warnings"]
        ],
        what="the warning in the listing",
    )  # fmt: skip
    assert listed[0]["warnings"][0].startswith("wasteful:")

    # --stop-when-wasteful: stopped as an idle timeout would, the reason in the history.
    def ended() -> list[dict]:
        history = json.loads(cli(env, "cluster", "history", "--json").stdout)
        return [h for h in history if h["name"] == "stopped"]

    [entry] = wait_for(ended, what="the wasteful cluster's end")
    started.remove("stopped")
    assert entry["reason"].startswith("wasteful: GPUs under 10% utilisation for ")
    assert entry["reason"].endswith("(--stop-when-wasteful)")
    assert entry["cost"]["gpu_hours"] > 0 and entry["cost"]["gpu_efficiency"] < 0.1
    assert 0 <= entry["cost"]["cpu_efficiency"] <= 1
    assert entry["suggestion"].startswith("peak 0 of 1 workers busy")
    assert "stopped" not in cli(env, "cluster", "list").stdout
    # The warned cluster runs on: a warning alone stops nothing.
    assert (
        json.loads(cli(env, "cluster", "status", "warned", "--json").stdout)["status"] == "running"
    )
    table = cli(env, "cluster", "history").stdout.splitlines()
    assert "cpu_eff" in table[0] and "gpu_eff" in table[0]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--waste-threshold", "0", "waste-threshold: got '0'; allowed: a utilisation in percent"),
        ("--waste-threshold", "101", "waste-threshold: got '101'"),
        ("--waste-window", "soon", "waste-window: got 'soon'; allowed: a duration like 90s"),
    ],
)
def test_bad_waste_settings_are_one_line_naming_the_field(flag, value, message):
    done = subprocess.run(
        [*CLI, "cluster", "start", "x", "--backend", "local", flag, value],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
