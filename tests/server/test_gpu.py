"""On a machine with NVIDIA GPUs: the devices and metrics routes agree with ``nvidia-smi``."""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.gpu


def _nvidia_smi() -> list[list[str]]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        pytest.skip("no nvidia-smi: not a GPU machine")
    out = subprocess.run(
        [exe, "--query-gpu=index,uuid,memory.total", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if out.returncode != 0 or not out.stdout.strip():
        pytest.skip(f"nvidia-smi sees no GPU: {out.stderr.strip()}")
    return [[cell.strip() for cell in line.split(",")] for line in out.stdout.strip().splitlines()]


def test_devices_and_gpu_metrics_match_nvidia_smi(run, api, api_until):
    rows = _nvidia_smi()

    async def go():
        code, inventory = await api("GET", "devices")
        assert code == 200
        assert [g["uuid"] for g in inventory["gpus"]] == [r[1] for r in rows]
        metrics = await api_until(
            ("metrics", "gpu"), lambda m: m["timestamp"] is not None, 200, 0.05
        )
        assert metrics["reason"] is None
        assert [g["uuid"] for g in metrics["gpus"]] == [r[1] for r in rows]
        for gpu, row in zip(metrics["gpus"], rows):
            assert gpu["memory_total"] // 2**20 == int(row[2])  # nvidia-smi reports MiB
            assert 0 <= gpu["utilization"] <= 100
            assert 0 <= gpu["memory_used"] <= gpu["memory_total"]

    run(go())
