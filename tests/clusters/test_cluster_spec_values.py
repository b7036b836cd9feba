"""ClusterSpec parsing value by value: what each accepted input becomes, and which field a
refusal names (found missing by mutation testing, see docs/testing.md)."""

from __future__ import annotations

import pytest

from aiinfra_magics.clusters.spec import (
    MAX_WORKERS,
    ClusterSpec,
    as_gpus,
    check_adapt,
    parse_adapt,
    parse_gpus,
)
from aiinfra_magics.errors import InputError


def refused(options, field, message=None):
    with pytest.raises(InputError) as info:
        ClusterSpec.from_options(options)
    assert info.value.field == field, str(info.value)
    if message is not None:
        assert str(info.value) == message
    return str(info.value)


def test_flat_options_become_typed_fields_and_back():
    spec = ClusterSpec.from_options(
        {"name": "a", "workers": "2", "threads": 3, "memory": "1GB", "adapt": [0, 4],
         "idle-timeout": "30s", "backend": "local", "dashboard-address": "127.0.0.1:0",
         "oversubscribe": None}
    )  # fmt: skip
    assert (spec.name, spec.backend, spec.workers, spec.threads) == ("a", "local", 2, 3)
    assert (spec.memory, spec.adapt, spec.idle_timeout) == ("1GB", (0, 4), 30.0)
    assert dict(spec.options) == {"dashboard_address": "127.0.0.1:0"}  # None is "not given"
    assert spec.to_dict() == {
        "name": "a", "backend": "local", "workers": 2, "threads": 3, "memory": "1GB",
        "adapt": "0:4", "idle_timeout": 30.0, "max_workers": None, "max_gpu_hours": None,
        "waste_threshold": None, "waste_window": None, "stop_when_wasteful": None,
        "env_check": None, "dashboard_address": "127.0.0.1:0",
    }  # fmt: skip
    assert ClusterSpec.from_options(spec.to_dict()) == spec
    assert ClusterSpec.from_options({}) == ClusterSpec()
    assert ClusterSpec().to_dict()["adapt"] is None


def test_list_options_are_lists_on_the_wire():
    spec = ClusterSpec.from_options({"backend": "slurm", "job-extra": ["--a", "--b"]})
    assert spec.to_dict()["job_extra"] == ["--a", "--b"]
    assert ClusterSpec(backend="slurm", options={"job_extra": ("x",)}).to_dict()["job_extra"] == [
        "x"
    ]


@pytest.mark.parametrize(
    ("value", "stored"), [("auto", "auto"), ("1GB", "1GB"), (0.8, "0.8"), (1, "1"), ("0.5", "0.5")]
)
def test_memory_values(value, stored):
    assert ClusterSpec.from_options({"memory": value}).memory == stored


@pytest.mark.parametrize("value", [True, 1.5, "auto-ish", "lots", 2**31])
def test_bad_memory_names_the_field(value):
    refused({"memory": value}, "memory")


@pytest.mark.parametrize(
    ("field", "value"),
    [("workers", 0), ("workers", MAX_WORKERS + 1), ("threads", 0), ("threads", 4097),
     ("workers", "x"), ("idle_timeout", "soon"), ("name", "a/b"), ("backend", "nosuch")],
)  # fmt: skip
def test_bad_common_fields_name_the_field(field, value):
    refused({field: value}, "idle-timeout" if field == "idle_timeout" else field)


def test_bounds_are_inclusive():
    assert (
        ClusterSpec.from_options({"workers": MAX_WORKERS, "threads": 4096}).workers == MAX_WORKERS
    )
    assert ClusterSpec.from_options({"workers": 1, "threads": 1}).threads == 1


def test_refusals_say_what_is_allowed():
    refused(7, "body", "body: got 7; allowed: an object of option names")
    msg = refused({"backend": "local", "bogus": 1}, "bogus")
    assert msg == (
        "bogus: unknown field for backend local; allowed: adapt, backend, dashboard_address, "
        "env_check, idle_timeout, max_gpu_hours, max_workers, memory, name, oversubscribe, "
        "stop_when_wasteful, threads, waste_threshold, waste_window, workers"
    )
    refused(
        {"backend": "local", "partition": "x"},
        "partition",
        "partition: only allowed with --backend slurm",
    )
    refused({"backend": 5}, "backend", "backend: got 5; allowed: a string")
    assert refused({"bad_key": 1}, "bad_key").startswith("bad-key: unknown field for backend auto")
    refused(
        {"backend": "address", "address": "tcp://127.0.0.1:1", "oversubscribe": True},
        "oversubscribe",
        "oversubscribe: only allowed with --backend local or cuda",
    )
    refused(
        {"backend": "local", "rmm-pool": "1GB"},
        "rmm_pool",
        "rmm-pool: only allowed with --backend cuda",
    )
    for key in ("workers", "threads", "memory", "adapt"):
        value = {"workers": 2, "threads": 2, "memory": "1GB", "adapt": "1:2"}[key]
        refused(
            {"backend": "address", "address": "tcp://127.0.0.1:1", key: value},
            key,
            f"{key}: not allowed with --backend address; "
            "its workers are managed where its scheduler runs",
        )


def test_validated_checks_a_spec_built_directly():
    with pytest.raises(InputError) as info:
        ClusterSpec(backend="local", options={"not_here": 1}).validated()
    assert info.value.field == "not_here"
    assert str(info.value).startswith("not-here: not an option of backend local; allowed: adapt,")
    for bad, field in [
        (ClusterSpec(name="a b"), "name"),
        (ClusterSpec(backend="nosuch"), "backend"),
        (ClusterSpec(adapt=(3, 1)), "adapt"),
    ]:
        with pytest.raises(InputError) as info:
            bad.validated()
        assert info.value.field == field
    with pytest.raises(InputError) as info:
        ClusterSpec(backend="nosuch").validated()
    assert str(info.value).startswith("backend: got 'nosuch'; allowed: auto | local | cuda")
    auto = ClusterSpec(workers=3, options={"anything": 1})
    assert auto.validated() is auto  # auto: the backend's rules apply once it is chosen


def test_option_value_then_declared_default_then_fallback():
    spec = ClusterSpec.from_options({"backend": "slurm", "partition": "debug"})
    assert spec.option("partition") == "debug"
    assert spec.option("dry_run") is False  # declared default
    assert spec.option("account", "fallback") == "fallback"  # declared without a default
    assert spec.option("undeclared", 5) == 5
    assert ClusterSpec().option("dry_run", 9) == 9  # auto: no backend defaults yet
    assert spec.with_changes(workers=4).workers == 4 and spec.workers is None


@pytest.mark.parametrize(
    ("value", "pair"),
    [("1:4", (1, 4)), ([0, 1], (0, 1)), ((2, 2), (2, 2)), ({"minimum": 1, "maximum": 3}, (1, 3)),
     (f"0:{MAX_WORKERS}", (0, MAX_WORKERS)), (["1", "2"], (1, 2))],
)  # fmt: skip
def test_adapt_forms(value, pair):
    assert parse_adapt(value) == pair


@pytest.mark.parametrize(
    "value",
    ["1", "1:2:3", "a:b", "-1:2", "2:1", "0:0", f"0:{MAX_WORKERS + 1}", [1], {"minimum": 1}, 5,
     None, [1, True]],
)  # fmt: skip
def test_bad_adapt_names_the_field_and_the_rule(value):
    with pytest.raises(InputError) as info:
        parse_adapt(value)
    assert info.value.field == "adapt"
    assert str(info.value).endswith("allowed: MIN:MAX with 0 <= MIN <= MAX and MAX >= 1")


def test_check_adapt_edges():
    assert check_adapt(0, 1) == (0, 1)
    assert check_adapt(5, 5) == (5, 5)
    assert check_adapt(0, MAX_WORKERS) == (0, MAX_WORKERS)
    for lo, hi in [(-1, 1), (0, 0), (2, 1), (0, MAX_WORKERS + 1)]:
        with pytest.raises(InputError, match=f"adapt: got '{lo}:{hi}'"):
            check_adapt(lo, hi)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("all", "all"), (" all ", "all"), ("1", 1), ("2", 2), ("9999", 9999), ("0,", ["0"]), ("0,2", ["0", "2"]),
     (" 1 , 3 ", ["1", "3"]), ("12345", ["12345"]), ("GPU-ab12-cd", ["GPU-ab12-cd"]),
     ("MIG-0f,3", ["MIG-0f", "3"])],
)  # fmt: skip
def test_gpus_forms(text, parsed):
    assert parse_gpus(text) == parsed


@pytest.mark.parametrize(
    ("text", "allowed"),
    [("0", "all | N (a count >= 1)"), ("", "all | N"), (",", "all | N"), ("0,,1", "all | N"),
     ("x", "all | N"), ("GPU-", "all | N"), ("ALL", "all | N"), ("0,0", "each GPU at most once")],
)  # fmt: skip
def test_bad_gpus_name_the_field(text, allowed):
    with pytest.raises(InputError) as info:
        parse_gpus(text)
    assert info.value.field == "gpus" and f"allowed: {allowed}" in str(info.value)


def test_gpus_as_json_gives_them():
    assert as_gpus("gpus", [0, 2]) == "0,2"
    assert as_gpus("gpus", ("GPU-a1",)) == "GPU-a1"
    assert as_gpus("gpus", 2) == "2"
    assert as_gpus("gpus", "all") == "all"
    with pytest.raises(InputError) as info:
        as_gpus("gpus", True)
    assert info.value.field == "gpus"
    with pytest.raises(InputError):
        as_gpus("gpus", [0, 0])


def test_scale_wait_comes_from_dask_config_and_a_bad_one_names_the_key():
    import dask.config

    from aiinfra_magics.clusters.manager import SCALE_WAIT_S, _scale_wait

    assert _scale_wait() == SCALE_WAIT_S
    with dask.config.set({"aiinfra.scale-wait": "2m"}):
        assert _scale_wait() == 120.0
    with dask.config.set({"aiinfra.scale-wait": 5}):
        assert _scale_wait() == 5.0
    with dask.config.set({"aiinfra.scale-wait": "soon"}), pytest.raises(InputError) as info:
        _scale_wait()
    assert info.value.field == "aiinfra.scale-wait"
    assert str(info.value).startswith("aiinfra.scale-wait: got 'soon'; allowed: a duration")
