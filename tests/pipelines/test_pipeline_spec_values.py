"""pipeline.yaml parsing value by value: defaults, what each accepted value becomes, and the
field each refusal names (gaps found by mutation testing, see docs/testing.md)."""

from __future__ import annotations

import math

import pytest

from aiinfra_magics.errors import AiinfraError
from aiinfra_magics.pipelines.spec import PipelineSpec, StepSpec, notebook_kernel


@pytest.fixture
def folder(tmp_path, notebook):
    notebook(tmp_path / "a.ipynb", "x = 0")
    notebook(tmp_path / "b.ipynb", "y = 0")
    (tmp_path / "sub").mkdir()
    return tmp_path


def spec(folder, step=None, **top):
    data = {"steps": {"s": {"notebook": "a.ipynb", **(step or {})}}, **top}
    return PipelineSpec.from_dict(data, folder)


def refused(folder, field, step=None, **top):
    with pytest.raises(AiinfraError) as info:
        spec(folder, step, **top)
    assert info.value.field == field, str(info.value)
    return str(info.value)


def test_a_bare_step_gets_every_default(folder):
    pipeline = spec(folder)
    assert pipeline.name == folder.name and pipeline.output is None
    assert pipeline.steps["s"] == StepSpec(name="s", notebook="a.ipynb", kernel="python3")
    bare = StepSpec(name="s", notebook="a.ipynb")
    assert (bare.timeout, bare.retries, bare.kernel, bare.resources, bare.memory) == (
        600.0, 1, None, {}, None
    )  # fmt: skip
    assert (bare.kernel_reuse, bare.cwd, bare.report_mode, bare.execution_timeout) == (
        False, None, False, None
    )  # fmt: skip
    assert (bare.log_output, bare.request_save_on_cell_execute, bare.autosave_cell_every) == (
        False, True, 30
    )  # fmt: skip


ACCEPTED = [
    ("timeout", 5, 5.0), ("timeout", 0.5, 0.5), ("retries", 0, 0), ("retries", 10, 10),
    ("kernel", "python3", "python3"), ("resources", {"GPU": 1}, {"GPU": 1.0}),
    ("resources", {}, {}), ("memory", "1KiB", 1024), ("memory", 2048, 2048), ("memory", None, None),
    ("kernel_reuse", True, True), ("report_mode", True, True), ("log_output", True, True),
    ("request_save_on_cell_execute", False, False), ("execution_timeout", 3, 3.0), ("execution_timeout", 1, 1.0),
    ("execution_timeout", None, None), ("autosave_cell_every", 0, 0), ("cwd", "sub", "sub"),
    ("cwd", None, None),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "stored"), ACCEPTED)
def test_step_and_default_fields_accept(folder, key, value, stored):
    for pipeline in (spec(folder, {key: value}), spec(folder, defaults={key: value})):
        got = getattr(pipeline.steps["s"], key)
        assert got == stored and type(got) is type(stored)


POSITIVE = "a positive number of seconds"
RETRIES = "an integer from 0 to 10"
KERNEL = "the name of an installed Jupyter kernel"
SIZE = "a size such as 512MiB or 2GB"
BOOL = "true or false"
PER_CELL = "a positive number of seconds per cell, or null"
AUTOSAVE = "seconds between saves of a running cell (0: never)"
INSIDE = "paths inside the pipeline folder (relative, no '..')"
REFUSED = [
    ("timeout", 0, POSITIVE), ("timeout", -1, POSITIVE), ("timeout", math.nan, POSITIVE),
    ("timeout", math.inf, POSITIVE), ("timeout", True, POSITIVE), ("timeout", "5", POSITIVE),
    ("retries", -1, RETRIES), ("retries", 11, RETRIES), ("retries", True, RETRIES),
    ("retries", 1.0, RETRIES), ("kernel", "", KERNEL), ("kernel", 5, KERNEL),
    ("kernel", "no-such-kernel", None),
    ("resources", ["GPU"], "a mapping of Dask worker resource to amount, e.g. {GPU: 1}"),
    ("memory", "lots", SIZE), ("memory", True, SIZE), ("kernel_reuse", 1, BOOL),
    ("report_mode", "yes", BOOL), ("log_output", None, BOOL),
    ("request_save_on_cell_execute", 0, BOOL), ("execution_timeout", 0, PER_CELL),
    ("execution_timeout", math.nan, PER_CELL), ("execution_timeout", True, PER_CELL),
    ("execution_timeout", "1", PER_CELL),
    ("autosave_cell_every", -1, AUTOSAVE), ("autosave_cell_every", True, AUTOSAVE),
    ("autosave_cell_every", 1.5, AUTOSAVE), ("cwd", 5, "a folder relative to the pipeline folder"),
    ("cwd", "../up", INSIDE), ("cwd", "/abs", INSIDE), ("cwd", "missing", None),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "allowed"), REFUSED)
def test_step_and_default_fields_refuse_naming_the_field(folder, key, value, allowed):
    message = refused(folder, f"steps.s.{key}", {key: value})
    if allowed is not None:
        assert message == f"steps.s.{key}: got {value!r}; allowed: {allowed}"
    if key != "cwd" or value != "missing":  # defaults.cwd is checked per step
        message = refused(folder, f"defaults.{key}", defaults={key: value})
        if allowed is not None:
            assert message == f"defaults.{key}: got {value!r}; allowed: {allowed}"


@pytest.mark.parametrize(
    ("step", "field", "allowed"),
    [
        ({"params": [1]}, "steps.s.params", "a mapping of parameter name to value"),
        ({"grid": {"1x": [1]}}, "steps.s.grid", "Python identifiers as names"),
        ({"params": {"product": 1}}, "steps.s.params",
         "any name except upstream, product (set by the runner)"),
        ({"grid": {"n": []}}, "steps.s.grid.n", "a non-empty list of numbers, strings or booleans"),
        ({"grid": {"n": [1, 1]}}, "steps.s.grid.n", "distinct values"),
        ({"grid": {"n": [1]}, "params": {"n": 2}}, "steps.s.grid.n",
         "names not also set in params"),
        ({"params": {"a": {1, 2}}}, "steps.s.params.a",
         "numbers, strings, booleans, null, lists and mappings"),
        ({"resources": {"GPU": 0}}, "steps.s.resources.GPU", "a positive number"),
        ({"inputs": 5}, "steps.s.inputs", "a list of paths relative to the pipeline folder"),
    ],
)  # fmt: skip
def test_step_refusals_say_what_is_allowed(folder, step, field, allowed):
    message = refused(folder, field, step)
    assert message.startswith(f"{field}: got ") and message.endswith(f"; allowed: {allowed}")


def test_a_step_must_be_a_mapping_with_a_notebook(folder):
    with pytest.raises(AiinfraError) as info:
        PipelineSpec.from_dict({"steps": {"s": "a.ipynb"}}, folder)
    assert str(info.value) == "steps.s: got 'a.ipynb'; allowed: a mapping with at least 'notebook'"


@pytest.mark.parametrize("amount", [0, -1, True, "1"])
def test_resource_amounts_must_be_positive_numbers(folder, amount):
    refused(folder, "steps.s.resources.GPU", {"resources": {"GPU": amount}})


def test_step_values_win_over_defaults(folder):
    pipeline = spec(folder, {"retries": 3}, defaults={"retries": 0, "timeout": 9})
    assert (pipeline.steps["s"].retries, pipeline.steps["s"].timeout) == (3, 9.0)


def test_kernel_comes_from_the_notebook_unless_given(folder, notebook):
    notebook(folder / "nokernel.ipynb", "x = 0")
    import json

    path = folder / "nokernel.ipynb"
    data = json.loads(path.read_text())
    del data["metadata"]["kernelspec"]
    path.write_text(json.dumps(data))
    assert notebook_kernel(path) is None
    assert notebook_kernel(folder / "missing.ipynb") is None
    assert notebook_kernel(folder / "a.ipynb") == "python3"
    data = {"steps": {"s": {"notebook": "a.ipynb"}}}
    unchecked = PipelineSpec.from_dict(data, folder, check_files=False)
    assert unchecked.steps["s"].kernel is None


def test_unknown_fields_name_where_and_what_is_allowed(folder):
    msg = refused(folder, "pipeline.bogus", bogus=1)
    assert msg.startswith("pipeline: unknown field 'bogus'; allowed: ") and "steps" in msg
    assert refused(folder, "defaults.notebook", defaults={"notebook": "a.ipynb"}).startswith(
        "defaults: unknown field 'notebook'; allowed: timeout, retries, kernel,"
    )
    assert refused(folder, "steps.s.bogus", {"bogus": 1}).startswith(
        "steps.s: unknown field 'bogus'; allowed: notebook, params,"
    )
    refused(folder, "defaults", defaults=[1])


def test_name_and_output(folder):
    assert spec(folder, name="  mine ").name == "mine"
    refused(folder, "name", name=" ")
    refused(folder, "name", name=5)
    assert spec(folder, output="s3://bucket/runs").output == "s3://bucket/runs"
    refused(folder, "output", output=" ")
    refused(folder, "output", output=5)
    with pytest.raises(AiinfraError) as info:
        PipelineSpec.from_dict([1], folder)
    assert info.value.field == "pipeline"
    for steps in (None, {}, [1]):
        with pytest.raises(AiinfraError) as info:
            PipelineSpec.from_dict({"steps": steps}, folder)
        assert info.value.field == "steps"


def test_after_links(folder):
    data = {"steps": {"a": {"notebook": "a.ipynb"}, "b": {"notebook": "b.ipynb", "after": "a"}}}
    assert PipelineSpec.from_dict(data, folder).steps["b"].after == ("a",)
    for after, allowed in [
        ("b", "names of other steps (a step cannot follow itself)"),
        ("zz", "names of other steps (a)"),
    ]:
        data["steps"]["b"]["after"] = after
        with pytest.raises(AiinfraError) as info:
            PipelineSpec.from_dict(data, folder)
        assert info.value.field == "steps.b.after" and str(info.value).endswith(allowed)
    data["steps"]["b"]["after"] = [1]
    with pytest.raises(AiinfraError, match="steps.b.after"):
        PipelineSpec.from_dict(data, folder)
    data["steps"]["a"]["after"] = ["b"]
    data["steps"]["b"]["after"] = ["a"]
    with pytest.raises(AiinfraError) as info:
        PipelineSpec.from_dict(data, folder)
    assert info.value.field == "steps" and "steps: cycle " in str(info.value)
    only = {"steps": {"a": {"notebook": "a.ipynb", "after": ["zz"]}}}
    with pytest.raises(AiinfraError, match=r"names of other steps \(none\)"):
        PipelineSpec.from_dict(only, folder)


def test_two_steps_cannot_write_the_same_product(folder):
    data = {
        "steps": {
            "a": {"notebook": "a.ipynb", "products": ["out.txt"]},
            "b": {"notebook": "b.ipynb", "products": ["out.txt"]},
        }
    }
    with pytest.raises(AiinfraError) as info:
        PipelineSpec.from_dict(data, folder)
    assert info.value.field == "steps.b.products"
    assert "paths not already written by step 'a'" in str(info.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("products", "../x"), ("products", "/x"), ("products", [""]), ("inputs", 5),
     ("inputs", ["a", 1]), ("products", "{lr}.json")],
)  # fmt: skip
def test_paths_stay_inside_the_folder(folder, key, value):
    refused(folder, f"steps.s.{key}", {key: value})


def test_paths_accept_one_string_or_a_list(folder):
    step = spec(folder, {"products": "out.txt", "inputs": ["a.ipynb", "sub"]}).steps["s"]
    assert (step.products, step.inputs) == (("out.txt",), ("a.ipynb", "sub"))


def test_from_file_errors_are_one_line(tmp_path, notebook):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(AiinfraError) as info:
        PipelineSpec.from_file(missing)
    assert info.value.field == "FILE"
    assert str(info.value) == f"FILE: got {str(missing)!r}; allowed: an existing pipeline.yaml"
    bad = tmp_path / "pipeline.yaml"
    for text, message in [
        (
            "name: x\nsteps:\n  a: [\n",
            "pipeline.yaml: line 4 not valid YAML (expected the node content, but found "
            "'<stream end>')",
        ),
        ("a: b: c\n", "pipeline.yaml: line 1 not valid YAML (mapping values are not allowed here)"),
        (
            "name: x\x07\n",  # a reader error: no line mark, and its text spans two lines
            "pipeline.yaml: not valid YAML (unacceptable character #x0007: special characters "
            'are not allowed in "<unicode string>", position 7)',
        ),
    ]:
        bad.write_text(text)
        with pytest.raises(AiinfraError) as info:
            PipelineSpec.from_file(bad)
        assert str(info.value) == message
    bad.write_text("name: x\nname: y\nsteps: {}\n")
    with pytest.raises(AiinfraError) as info:
        PipelineSpec.from_file(bad)
    assert info.value.field == "name"
    assert str(info.value).startswith("pipeline.yaml: line 2: duplicate key 'name'")
    bad.write_text("")
    with pytest.raises(AiinfraError) as info:
        PipelineSpec.from_file(bad)
    assert info.value.field == "steps"
    notebook(tmp_path / "a.ipynb", "x = 0")
    bad.write_text("steps:\n  a:\n    notebook: a.ipynb\n")
    assert PipelineSpec.from_file(bad).path == bad.resolve()
