"""Pipeline specs keep everything a user wrote (issue 10 item 15): duplicate step names
are an error, grid values that print alike stay distinct nodes, file names stay safe,
dates and NaN in parameters never crash a step."""

from __future__ import annotations

import json

import pytest
import yaml

from aiinfra_magics.doors import cli
from aiinfra_magics.errors import AiinfraError
from aiinfra_magics.pipelines.dag import apply_overrides, expand
from aiinfra_magics.pipelines.params import collect, file_name
from aiinfra_magics.pipelines.runner import run_pipeline
from aiinfra_magics.pipelines.spec import PipelineSpec


def test_duplicate_step_names_are_an_error(tmp_path, notebook, capsys):
    notebook(tmp_path / "a.ipynb", "x = 0", "print(x)")
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "steps:\n  a:\n    notebook: a.ipynb\n  a:\n    notebook: a.ipynb\n    params: {x: 1}\n"
    )
    with pytest.raises(AiinfraError, match="line 4: duplicate key 'a' \\(first on line 2\\)"):
        PipelineSpec.from_file(path)
    assert cli.main(["pipeline", "run", str(path)]) == 2
    assert "duplicate key 'a'" in capsys.readouterr().err


def test_grid_values_that_print_alike_stay_distinct(tmp_path, notebook):
    notebook(tmp_path / "g.ipynb", "i = None", "print(i)")
    spec = PipelineSpec.from_dict(
        {"steps": {"g": {"notebook": "g.ipynb", "grid": {"i": [1, "1", True, "True", 1.0]}}}},
        tmp_path,
    )
    nodes = expand(spec)
    assert list(nodes) == ["g[i=1]", 'g[i="1"]', "g[i=True]", 'g[i="True"]', "g[i=1.0]"]
    assert [n.params["i"] for n in nodes.values()] == [1, "1", True, "True", 1.0]
    assert len({file_name(n) for n in nodes}) == 5


def test_a_slash_in_a_grid_value_cannot_break_or_escape_paths(tmp_path, notebook):
    notebook(tmp_path / "g.ipynb", "name = ''", "print(name)")
    spec = {"steps": {"g": {"notebook": "g.ipynb", "grid": {"name": ["a/b", "a_b", "../x"]}}}}
    nodes = expand(PipelineSpec.from_dict(spec, tmp_path))
    files = [file_name(n) for n in nodes]
    assert len(set(files)) == 3 and all("/" not in f and not f.startswith(".") for f in files)
    with_products = {"steps": {"g": {**spec["steps"]["g"], "products": ["out/{name}.txt"]}}}
    with pytest.raises(AiinfraError, match=r"steps\.g\.products: got 'out/\.\./x\.txt'"):
        expand(PipelineSpec.from_dict(with_products, tmp_path))


def test_dates_and_nan_in_params_and_grids_run(tmp_path, notebook, client):
    notebook(
        tmp_path / "d.ipynb",
        "when = None\nx = 0.0",
        "import json, math\nopen(f'out-{len(when or [])}-{math.isnan(x)}.json', 'w').write(json.dumps([type(when).__name__, str(when)]))",
    )
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "steps": {
                    "d": {
                        "notebook": "d.ipynb",
                        "params": {"x": 1.0},
                        "grid": {"when": ["2020-02-02"]},
                    }
                }
            }
        ).replace("'2020-02-02'", "2020-02-02")  # an unquoted YAML date
    )
    run = run_pipeline(path, client=client, params=["x=nan", "d.when=2019-01-01"])
    assert run.status == "ok", run.summary()
    assert json.loads((tmp_path / "out-10-True.json").read_text()) == ["str", "2019-01-01"]
    json.loads(run.path.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in run.json"))
    # papermill's typing (its own _resolve_type) for -p, raw -r, YAML -y without dates.
    overrides = collect(["n=010", "f=1e3", "z=None", "l=[1, 2]"], ["r=1"], ["y: 2019-01-01"])
    assert [(k, v) for _, k, v in overrides] == [
        ("y", "2019-01-01"),
        ("n", 10),
        ("f", 1000.0),
        ("z", None),
        ("l", "[1, 2]"),
        ("r", "1"),
    ]
    spec = apply_overrides(PipelineSpec.from_file(path), overrides=collect(["when=2019-01-01"]))
    assert list(expand(spec)) == ['d[when="2019-01-01"]']
