"""JAX sessions through the real magic, each in a fresh interpreter (see conftest)."""

from __future__ import annotations

import pytest

SUM_OVER_MESH = (
    "py:import jax.numpy as jnp; from jax.sharding import NamedSharding, PartitionSpec as P;"
    "x = jax.device_put(jnp.arange(64.0).reshape(8, 8), NamedSharding(mesh, P(*mesh.axis_names[:2])));"
    "_value = [float(x.sum()), len(x.addressable_shards)]"
)
STARTED = "py:from jax._src import xla_bridge; _value = xla_bridge.backends_are_initialized()"


@pytest.mark.parametrize(
    "mesh, shape",
    [
        ("data=4,model=2", {"data": 4, "model": 2}),
        ("data=8", {"data": 8}),
        ("x=2,y=2,z=2", {"x": 2, "y": 2, "z": 2}),
    ],
)
def test_mesh_over_eight_cpu_devices(magic_steps, mesh, shape):
    session, total = magic_steps(
        [f"jax --platform cpu --cpu-devices 8 --mesh {mesh}", SUM_OVER_MESH]
    )
    assert session["mesh"] == shape
    assert session["jax_bound"] == "jax"
    assert session["session"]["platform"] == "cpu"
    assert len(session["session"]["devices"]) == 8
    assert session["session"]["reused"] is False
    # The array really is spread over the mesh and computes the right sum.
    assert total["value"] == [float(sum(range(64))), 8]


def test_default_mesh_is_one_data_axis(magic_steps):
    (session,) = magic_steps(["jax --cpu-devices 2"])
    assert session["mesh"] == {"data": 2}
    assert "bound as `mesh`" in session["text"]


def test_same_settings_again_is_a_no_op_and_the_mesh_may_change(magic_steps):
    first, again, remeshed, platform_only = magic_steps(
        [
            "jax --cpu-devices 8 --mesh data=8",
            "jax --cpu-devices 8 --mesh data=8",
            "jax --cpu-devices 8 --mesh data=2,model=4",
            "jax --platform cpu",
        ]
    )
    assert first["session"]["reused"] is False
    assert again["session"]["reused"] is True
    assert "already running" in again["text"]
    assert remeshed["mesh"] == {"data": 2, "model": 4}
    assert platform_only["session"]["reused"] is True


def test_after_start_guard_names_the_differing_settings(magic_steps):
    _, changed, both = magic_steps(
        ["jax --cpu-devices 8", "jax --cpu-devices 4", "jax --platform gpu --devices 0"]
    )
    assert "cpu_devices=8 (asked 4)" in changed["error"]
    assert "restart the kernel" in changed["error"]
    assert "platform=cpu (asked gpu)" in both["error"]


def test_guard_also_covers_a_backend_the_user_started(magic_steps):
    _, out = magic_steps(["py:import jax; jax.devices()", "jax --cpu-devices 8"])
    assert "cpu_devices=1 (asked 8)" in out["error"]


def test_bad_mesh_is_refused_before_the_backend_starts(magic_steps):
    bad, started, good = magic_steps(
        ["jax --cpu-devices 8 --mesh data=3", STARTED, "jax --cpu-devices 8 --mesh data=8"]
    )
    assert bad["error"].startswith("mesh: data=3 needs 3 devices")
    assert started["value"] is False  # so the user fixes the typo without a restart
    assert good["mesh"] == {"data": 8}


def test_mesh_mismatch_after_start_is_a_clear_error(magic_steps):
    _, bad = magic_steps(["jax --cpu-devices 8", "jax --mesh data=3,model=2"])
    assert bad["error"].startswith("mesh: data=3,model=2 needs 6 devices; this session has 8")


def test_missing_accelerators_are_named_and_nothing_starts(magic_steps):
    from aiinfra_magics import devices

    present = [
        p for p, probe in (("gpu", devices.probe_gpus), ("tpu", devices.probe_tpus)) if probe()[0]
    ]
    if present:
        # With the accelerator here the step would start JAX on it: a different test.
        pytest.skip(f"this machine has a {' and a '.join(present)}; nothing is missing")
    gpu, tpu, started = magic_steps(["jax --platform gpu", "jax --platform tpu", STARTED])
    assert gpu["error"].startswith("platform: got 'gpu' but this machine has none")
    assert tpu["error"].startswith("platform: got 'tpu' but this machine has none")
    assert started["value"] is False
