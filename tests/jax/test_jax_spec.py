"""Validation of JaxSessionSpec and SpmdOptions: pure, no JAX backend involved."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aiinfra_magics.errors import AiinfraError
from aiinfra_magics.jax.session import share_gpus
from aiinfra_magics.jax.spec import JaxSessionSpec, parse_mesh
from aiinfra_magics.jax.spmd import SpmdOptions

INVALID = [
    ({"platform": "fpga"}, "platform"),
    ({"devices": "a,b"}, "devices"),
    ({"devices": "0,0"}, "devices"),
    ({"devices": "-1"}, "devices"),
    ({"platform": "cpu", "devices": "0"}, "devices"),
    ({"cpu_devices": "0"}, "cpu_devices"),
    ({"cpu_devices": "many"}, "cpu_devices"),
    ({"platform": "gpu", "cpu_devices": 2}, "cpu_devices"),
    ({"mem_fraction": "0"}, "mem_fraction"),
    ({"mem_fraction": "1.5"}, "mem_fraction"),
    ({"mem_fraction": "half"}, "mem_fraction"),
    ({"platform": "cpu", "mem_fraction": "0.5"}, "mem_fraction"),
    ({"allocator": "magic"}, "allocator"),
    ({"mesh": "data"}, "mesh"),
    ({"mesh": "data=0"}, "mesh"),
    ({"mesh": "data=two"}, "mesh"),
    ({"mesh": "data=2,data=2"}, "mesh"),
    ({"mesh": "1st=2"}, "mesh"),
    ({"mesh": ""}, "mesh"),
    ({"preallocate": True, "no_preallocate": True}, "preallocate"),
    ({"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize("options, field", INVALID)
def test_invalid_jax_options_name_the_field(options, field):
    with pytest.raises(AiinfraError) as info:
        JaxSessionSpec.from_options(options)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")
    assert "\n" not in str(info.value)


def test_valid_options_are_normalised():
    spec = JaxSessionSpec.from_options(
        {
            "devices": "1,0",
            "no_preallocate": True,
            "mem_fraction": "0.5",
            "allocator": "BFC",
            "mesh": "data=2",
        }
    )
    assert spec.platform == "gpu"  # --devices names GPUs
    assert spec.devices == (1, 0)
    assert spec.preallocate is False
    assert spec.mem_fraction == 0.5
    assert spec.allocator == "bfc"
    assert spec.mesh == (("data", 2),)
    assert JaxSessionSpec.from_options({"platform": "auto"}).platform is None
    assert parse_mesh({"data": 4, "model": 2}) == (("data", 4), ("model", 2))
    assert JaxSessionSpec.from_options(spec.to_dict()) == spec  # JSON round trip (REST bodies)


@pytest.mark.parametrize(
    "options, field",
    [
        ({"processes": "0"}, "processes"),
        ({"processes": "two"}, "processes"),
        ({"cluster": "a", "processes": 2}, "processes"),
        ({"platform": "rocm"}, "platform"),
        ({"cpu_devices": "-2"}, "cpu_devices"),
        ({"timeout": "-1"}, "timeout"),
    ],
)
def test_invalid_spmd_options_name_the_field(options, field):
    with pytest.raises(AiinfraError) as info:
        SpmdOptions.from_options(options)
    assert info.value.field == field


def test_spmd_runs_on_tpu_slices_too():
    # A TPU VM slice's hosts run SPMD cells (issue 27): JAX's own cluster detection does the rest.
    assert SpmdOptions.from_options({"platform": "TPU"}).platform == "tpu"


def test_cli_exits_2_with_a_one_line_error():
    out = subprocess.run(
        [sys.executable, "-m", "aiinfra_magics", "jax", "--mesh", "data=0"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "aiinfra: error: mesh: size of axis 'data' is '0'; allowed: a positive integer"
    ]


def _gpus(n: int) -> list[dict]:
    return [{"index": i, "uuid": f"GPU-{i}"} for i in range(n)]


def test_jax_defaults_to_the_gpus_dask_does_not_hold():
    spec, notes = share_gpus(JaxSessionSpec(), _gpus(4), held={0, 1})
    assert spec.devices == (2, 3) and spec.platform == "gpu"
    assert notes == ["jax: using GPU 2,3; GPU 0,1 held by this kernel's Dask cluster"]


def test_overlapping_devices_are_refused_unless_forced():
    with pytest.raises(AiinfraError) as info:
        share_gpus(JaxSessionSpec(devices=(1, 2), platform="gpu"), _gpus(4), held={0, 1})
    assert info.value.field == "devices"
    assert "GPU 1 is held" in str(info.value) and "--force" in str(info.value)
    spec, notes = share_gpus(
        JaxSessionSpec(devices=(1, 2), platform="gpu", force=True), _gpus(4), held={0, 1}
    )
    assert spec.preallocate is False and "preallocation turned off" in notes[0]


def test_every_gpu_held_turns_preallocation_off():
    spec, notes = share_gpus(JaxSessionSpec(), _gpus(1), held={0})
    assert spec.preallocate is False and spec.devices is None
    assert len(notes) == 1


def test_gpu_sharing_leaves_other_requests_alone():
    disjoint = JaxSessionSpec(devices=(2,), platform="gpu")
    assert share_gpus(disjoint, _gpus(4), held={0}) == (disjoint, [])
    cpu = JaxSessionSpec(platform="cpu")
    assert share_gpus(cpu, _gpus(4), held={0}) == (cpu, [])
    assert share_gpus(JaxSessionSpec(), _gpus(4), held=set()) == (JaxSessionSpec(), [])
