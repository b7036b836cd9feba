"""Inventory on this machine: real NVML probe, real psutil, real CLI and magic."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest
from IPython.core.interactiveshell import InteractiveShell

from aiinfra_magics import devices

GPU_KEYS = {
    "index", "uuid", "name", "memory_total", "memory_used", "utilization", "memory_utilization",
    "temperature", "power_watts", "power_limit_watts", "compute_capability", "mig_enabled", "mig",
}  # fmt: skip


def _nvml_sees_gpus() -> bool:
    return bool(devices.probe_gpus()[0])


def test_schema_is_json_and_complete():
    inv = devices.inventory()
    assert json.loads(json.dumps(inv)) == inv
    assert inv["schema"] == devices.SCHEMA
    for key in (
        "host",
        "gpus",
        "gpu_note",
        "driver_version",
        "cuda_version",
        "tpus",
        "tpu_note",
        "cpu",
        "memory",
    ):
        assert key in inv
    assert set(inv["cpu"]) >= {"model", "physical_cores", "logical_cores", "usable_cores"}
    for gpu in inv["gpus"]:
        assert set(gpu) == GPU_KEYS


@pytest.mark.skipif(_nvml_sees_gpus(), reason="this machine has a GPU")
def test_no_gpu_gives_empty_list_and_reason():
    inv = devices.inventory()
    assert inv["gpus"] == []
    assert isinstance(inv["gpu_note"], str) and inv["gpu_note"]
    assert inv["driver_version"] is None
    assert "gpus: none" in str(devices.probe())


def test_cpu_and_memory_agree_with_the_os():
    inv = devices.inventory()
    assert inv["cpu"]["logical_cores"] == os.cpu_count()
    assert 1 <= inv["cpu"]["usable_cores"] <= inv["cpu"]["logical_cores"]
    assert inv["memory"]["total"] == psutil.virtual_memory().total
    assert 0 < inv["memory"]["available"] <= inv["memory"]["total"]


def test_inventory_does_not_start_jax():
    # The inventory must never fix JAX's settings; run it where JAX is imported but idle.
    code = (
        "import jax, json; from aiinfra_magics import devices; devices.inventory();"
        "from jax._src import xla_bridge; print(json.dumps(xla_bridge.backends_are_initialized()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False


def test_cli_json_and_text():
    cli = [sys.executable, "-m", "aiinfra_magics", "devices"]
    out = subprocess.run([*cli, "--json"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["schema"] == devices.SCHEMA
    assert data["cpu"]["logical_cores"] == os.cpu_count()
    text = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    assert text.startswith("host: ")
    assert "memory:" in text


def test_magic_returns_displayable_inventory():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiinfra_magics")
    result = shell.run_line_magic("aiinfra", "devices")
    assert isinstance(result, devices.Inventory)
    html = result._repr_html_()
    assert "aiinfra-devices" in html and "memory:" in html
    as_json = shell.run_line_magic("aiinfra", "devices --json")
    assert as_json["schema"] == devices.SCHEMA
