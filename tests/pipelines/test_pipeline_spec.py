"""PipelineSpec validation, grid expansion, overrides and selection (no kernels needed)."""

from __future__ import annotations

import pytest

from aiinfra_magics.errors import AiinfraError
from aiinfra_magics.pipelines.dag import apply_overrides, expand, select
from aiinfra_magics.pipelines.spec import PipelineSpec


@pytest.fixture
def folder(tmp_path, notebook):
    for name in ("a", "b", "c"):
        notebook(tmp_path / f"{name}.ipynb", "x = 1")
    return tmp_path


def spec(folder, steps, **top):
    return PipelineSpec.from_dict({"name": "t", **top, "steps": steps}, folder)


INVALID = [
    # (top-level extras, steps, fragments the one-line message must contain)
    ({}, {}, ["steps", "non-empty mapping"]),
    (
        {"colour": 1},
        {"a": {"notebook": "a.ipynb"}},
        ["unknown field 'colour'", "allowed: name, defaults, steps"],
    ),
    ({}, {"a": {"notebok": "a.ipynb"}}, ["steps.a", "unknown field 'notebok'", "notebook"]),
    ({}, {"a": {"notebook": "a.py"}}, ["steps.a.notebook", "'a.py'", ".ipynb"]),
    ({}, {"a": {"notebook": "missing.ipynb"}}, ["steps.a.notebook", "existing notebook"]),
    (
        {},
        {"a": {"notebook": "a.ipynb", "after": ["zz"]}},
        ["steps.a.after", "'zz'", "names of other steps"],
    ),
    ({}, {"a": {"notebook": "a.ipynb", "after": ["a"]}}, ["steps.a.after", "cannot follow itself"]),
    (
        {},
        {
            "a": {"notebook": "a.ipynb", "after": ["b"]},
            "b": {"notebook": "b.ipynb", "after": ["a"]},
        },
        ["steps: cycle", "a", "b", "without cycles"],
    ),
    (
        {},
        {"a": {"notebook": "a.ipynb", "timeout": -5}},
        ["steps.a.timeout", "-5", "positive number of seconds"],
    ),
    ({}, {"a": {"notebook": "a.ipynb", "retries": 99}}, ["steps.a.retries", "99", "0 to 10"]),
    (
        {},
        {"a": {"notebook": "a.ipynb", "kernel": "pyhton3"}},
        ["steps.a.kernel", "'pyhton3'", "python3"],
    ),
    ({}, {"a": {"notebook": "a.ipynb", "grid": {"lr": []}}}, ["steps.a.grid.lr", "non-empty list"]),
    (
        {},
        {"a": {"notebook": "a.ipynb", "grid": {"lr": [1, 2]}, "products": ["m.json"]}},
        ["steps.a.products", "'m.json'", "{lr}"],
    ),
    (
        {},
        {"a": {"notebook": "a.ipynb", "products": ["{seed}.csv"]}},
        ["steps.a.products", "grid keys"],
    ),
    (
        {},
        {"a": {"notebook": "a.ipynb", "params": {"upstream": 1}}},
        ["steps.a.params", "'upstream'", "except upstream, product"],
    ),
    (
        {},
        {"a": {"notebook": "a.ipynb", "params": {"lr": 1}, "grid": {"lr": [1, 2]}}},
        ["steps.a.grid.lr", "not also set in params"],
    ),
    (
        {},
        {"a": {"notebook": "a.ipynb", "resources": {"GPU": 0}}},
        ["steps.a.resources.GPU", "positive number"],
    ),
    ({}, {"a": {"notebook": "a.ipynb", "memory": "lots"}}, ["steps.a.memory", "'lots'", "512MiB"]),
    (
        {},
        {"a": {"notebook": "a.ipynb", "products": ["../out.csv"]}},
        ["steps.a.products", "inside the pipeline folder"],
    ),
    (
        {},
        {
            "a": {"notebook": "a.ipynb", "products": ["x.csv"]},
            "b": {"notebook": "b.ipynb", "products": ["x.csv"]},
        },
        ["steps.b.products", "'x.csv'", "already written by step 'a'"],
    ),
    ({}, {"1st": {"notebook": "a.ipynb"}}, ["steps", "'1st'", "not starting with a digit"]),
    (
        {"defaults": {"retries": "two"}},
        {"a": {"notebook": "a.ipynb"}},
        ["defaults.retries", "'two'", "0 to 10"],
    ),
    (
        {"defaults": {"gpu": 1}},
        {"a": {"notebook": "a.ipynb"}},
        ["defaults", "unknown field 'gpu'", "timeout"],
    ),
]


@pytest.mark.parametrize("top,steps,fragments", INVALID)
def test_invalid_spec_names_step_field_and_allowed(folder, top, steps, fragments):
    with pytest.raises(AiinfraError) as err:
        spec(folder, steps, **top)
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_yaml_syntax_error_is_one_line(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text("steps:\n  a: [unclosed\n")
    with pytest.raises(AiinfraError, match="not valid YAML"):
        PipelineSpec.from_file(path)


def test_grid_expands_with_products_and_upstream(folder):
    s = spec(
        folder,
        {
            "a": {"notebook": "a.ipynb", "products": ["d.csv"]},
            "b": {
                "notebook": "b.ipynb",
                "after": "a",
                "grid": {"lr": [0.1, 0.01], "k": [1, 2]},
                "products": ["m-{lr}-{k}.json"],
            },
            "c": {"notebook": "c.ipynb", "after": ["b"]},
        },
        defaults={"timeout": 30, "retries": 2},
    )
    nodes = expand(s)
    assert list(nodes) == [
        "a",
        "b[lr=0.1,k=1]",
        "b[lr=0.1,k=2]",
        "b[lr=0.01,k=1]",
        "b[lr=0.01,k=2]",
        "c",
    ]
    assert nodes["b[lr=0.01,k=2]"].products == ("m-0.01-2.json",)
    assert nodes["b[lr=0.01,k=2]"].params == {"lr": 0.01, "k": 2}
    assert nodes["c"].upstream == tuple(n for n in nodes if n.startswith("b["))
    assert nodes["a"].step.timeout == 30 and nodes["a"].step.retries == 2


def test_overrides_and_selection(folder):
    s = spec(
        folder,
        {
            "a": {"notebook": "a.ipynb", "params": {"n": 1}, "products": ["d.csv"]},
            "b": {
                "notebook": "b.ipynb",
                "after": ["a"],
                "grid": {"lr": [1, 2]},
                "products": ["m{lr}"],
            },
        },
    )
    nodes = expand(apply_overrides(s, ["n=5", "b.lr=7"]))
    assert nodes["a"].params == {"n": 5}
    assert list(nodes) == ["a", "b[lr=7]"]
    with pytest.raises(AiinfraError, match="-p: got 'zz'"):
        apply_overrides(s, ["zz=1"])
    with pytest.raises(AiinfraError, match="KEY=VALUE"):
        apply_overrides(s, ["novalue"])
    nodes = expand(s)
    assert select(nodes, "b", False) == {"b[lr=1]", "b[lr=2]"}
    assert select(nodes, "b[lr=2]", True) == {"a", "b[lr=2]"}
    with pytest.raises(AiinfraError, match="--only: got 'q'"):
        select(nodes, "q", False)


def test_resources_must_be_offered_by_some_worker(folder):
    from aiinfra_magics.pipelines.dag import check_resources

    s = spec(folder, {"a": {"notebook": "a.ipynb", "resources": {"GPU": 1}}})
    nodes = expand(s)
    check_resources(nodes, {"w1": {"resources": {"GPU": 2}}})
    with pytest.raises(
        AiinfraError, match=r"steps.a.resources: got GPU=1; allowed: .*\(no resources\)"
    ):
        check_resources(nodes, {"w1": {"resources": {}}})


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (512, 512),
        ("512", 512),
        ("1.5KB", 1500),
        ("2 kib", 2048),
        (" 3MiB ", 3 * 2**20),
        ("1GB", 10**9),
        ("1GiB", 2**30),
        ("2TiB", 2 * 2**40),
        ("7TB", 7 * 10**12),
        ("10B", 10),
    ],
)
def test_sizes_parse_exactly(text, size):
    from aiinfra_magics.pipelines.spec import parse_size

    assert parse_size(text, "memory") == size


@pytest.mark.parametrize("text", [True, 0, -1, "0", "0GB", "GB", "1PB", "1 GB\nx", None, 1.5])
def test_bad_sizes_name_the_field(text):
    from aiinfra_magics.errors import AiinfraError
    from aiinfra_magics.pipelines.spec import parse_size

    with pytest.raises(AiinfraError) as err:
        parse_size(text, "steps.a.memory")
    assert err.value.field == "steps.a.memory"
    assert str(err.value) == f"steps.a.memory: got {text!r}; allowed: a size such as 512MiB or 2GB"


def test_nan_param_is_accepted(tmp_path, notebook):
    import math

    from aiinfra_magics.pipelines.spec import PipelineSpec

    notebook(tmp_path / "a.ipynb", "a = 0\nupstream = {}\nproduct = []", "pass")
    data = {"steps": {"s": {"notebook": "a.ipynb", "params": {"a": float("nan")}}}}
    assert math.isnan(PipelineSpec.from_dict(data, tmp_path).steps["s"].params["a"])


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ({"a": [1, 2.5, "x", None, True]}, {"a": [1, 2.5, "x", None, True]}),
        # papermill injects float('inf'); YAML keys and tuples become what JSON can hold
        ({"a": [float("inf"), -float("inf")]}, {"a": [float("inf"), -float("inf")]}),
        ({"a": {"b": [1]}}, {"a": {"b": [1]}}),
        ({"a": {1: 2}}, {"a": {"1": 2}}),
        ({"a": (1, 2)}, {"a": [1, 2]}),
        ({"a": [{1, 2}]}, None),
        ({"a": object()}, None),
        ({"a": {"b": {"c": {1, 2}}}}, None),
    ],
)
def test_params_must_be_json_like(tmp_path, notebook, value, stored):
    from aiinfra_magics.errors import AiinfraError
    from aiinfra_magics.pipelines.spec import PipelineSpec

    notebook(tmp_path / "a.ipynb", "a = 0\nupstream = {}\nproduct = []", "pass")
    data = {"steps": {"s": {"notebook": "a.ipynb", "params": value}}}
    if stored is not None:
        assert PipelineSpec.from_dict(data, tmp_path).steps["s"].params == stored
    else:
        with pytest.raises(AiinfraError, match="steps.s.params.a"):
            PipelineSpec.from_dict(data, tmp_path)
