"""The words (CLI door) over the pipeline core: run, status, plot, report; the port ledger."""

from __future__ import annotations

import importlib.util
import json
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from aiinfra_magics.doors import cli
from aiinfra_magics.doors.words import Context, run_words
from aiinfra_magics.errors import AiinfraError
from aiinfra_magics.pipelines.kernel_pool import reserve_ports
from aiinfra_magics.pipelines.progress import WidgetProgress
from aiinfra_magics.pipelines.runner import run_pipeline


def test_cli_run_failure_exits_1_and_names_step_cell_error(
    tmp_path, notebook, pipeline_file, capsys
):
    notebook(tmp_path / "ok.ipynb", "upstream = {}\nproduct = []", "open('a.txt', 'w').write('a')")
    notebook(
        tmp_path / "boom.ipynb",
        "upstream = {}\nproduct = []",
        "raise ValueError('bad input row 7')",
    )
    path = pipeline_file(
        tmp_path,
        {
            "steps": {
                "ok": {"notebook": "ok.ipynb", "products": ["a.txt"]},
                "boom": {"notebook": "boom.ipynb", "after": ["ok"]},
            }
        },
    )
    rc = cli.main(["pipeline", "run", str(path), "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "boom failed" in err and "ValueError: bad input row 7" in err and "In [3]" in err
    assert "report.html" in err
    # Bad input is exit 2 with the field named.
    assert cli.main(["pipeline", "run", str(path), "-p", "nope=1"]) == 2
    assert "-p: got 'nope'" in capsys.readouterr().err


def test_status_plot_report(client, tmp_path, notebook, pipeline_file):
    notebook(
        tmp_path / "a.ipynb",
        "upstream = {}\nproduct = []\nk = 0",
        "open(product[0], 'w').write(str(k))",
    )
    notebook(
        tmp_path / "b.ipynb",
        "upstream = {}\nproduct = []",
        "print(open(upstream['a[k=1]'][0]).read())",
    )
    path = pipeline_file(
        tmp_path,
        {
            "steps": {
                "a": {"notebook": "a.ipynb", "grid": {"k": [1, 2]}, "products": ["a{k}.txt"]},
                "b": {"notebook": "b.ipynb", "after": ["a"]},
            }
        },
    )
    shown = []
    run = run_pipeline(path, client=client, progress=WidgetProgress(shown.append))
    assert run.status == "ok", run.summary()
    # The notebook widget: one bar per node, all full and green, overall complete.
    panel = shown[0]
    bars = [row.children[0] for row in panel.children[2:]]
    assert [b.description for b in bars] == ["a[k=1]", "a[k=2]", "b"]
    assert all(b.value == b.max and b.bar_style == "success" for b in bars)
    assert panel.children[1].value == 3
    ctx = Context(door="cli")
    status = run_words(["pipeline", "status", str(path)], ctx)
    table = str(status)
    for name in ("a[k=1]", "a[k=2]", "b"):
        assert name in table
    assert run_words(["pipeline", "status", str(path), "--json"], ctx)["run_id"] == run.run_id
    picture = run_words(["pipeline", "plot", str(path)], ctx)
    svg = (tmp_path / "pipeline.svg").read_text()
    assert (
        str(picture).startswith("wrote")
        and svg.startswith("<svg")
        and svg.count('class="node"') == 3
    )
    report = run_words(["pipeline", "report", str(path)], ctx)
    html = report.path.read_text()
    assert report.path == run.run_dir / "report.html"
    assert "<svg" in html and 'href="a%5Bk%3D1%5D.ipynb"' in html and 'href="b.ipynb"' in html
    record = json.loads((run.run_dir / "run.json").read_text())
    assert record["steps"]["b"]["upstream"] == ["a[k=1]", "a[k=2]"]


def _reserve(_: int) -> list[int]:
    return reserve_ports("127.0.0.1", 5)


def test_port_ledger_hands_out_disjoint_ports_across_processes():
    with ProcessPoolExecutor(4) as pool:
        batches = list(pool.map(_reserve, range(8)))
    ports = [p for batch in batches for p in batch]
    assert len(ports) == len(set(ports)) == 40


def test_only_without_upstream_products_is_refused(tmp_path, notebook, pipeline_file):
    notebook(tmp_path / "a.ipynb", "upstream = {}\nproduct = []", "pass")
    notebook(tmp_path / "b.ipynb", "upstream = {}\nproduct = []", "pass")
    path = pipeline_file(
        tmp_path,
        {
            "steps": {
                "a": {"notebook": "a.ipynb", "products": ["a.csv"]},
                "b": {"notebook": "b.ipynb", "after": ["a"]},
            }
        },
    )
    with pytest.raises(
        AiinfraError, match="--only: upstream a has not written a.csv yet; allowed: add --upstream"
    ):
        run_pipeline(path, only="b")
    with pytest.raises(AiinfraError, match="--upstream: allowed only together with --only"):
        run_words(["pipeline", "run", str(path), "--upstream"], Context(door="cli"))


def test_run_on_a_registered_cluster_by_name(tmp_path, notebook, pipeline_file):
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec

    notebook(
        tmp_path / "a.ipynb", "upstream = {}\nproduct = []", "open(product[0], 'w').write('x')"
    )
    path = pipeline_file(tmp_path, {"steps": {"a": {"notebook": "a.ipynb", "products": ["a.txt"]}}})
    ClusterManager().start_detached(
        ClusterSpec.from_options({"name": "pipes", "backend": "local", "workers": 1})
    )
    try:
        run = run_words(
            ["pipeline", "run", str(path), "--cluster", "pipes"],
            Context(door="cli", say=lambda _: None),
        )
        client = ClusterManager().connect("pipes")
        try:  # what the worker holds in place of rfc3987_syntax after running the step
            held = client.run(
                lambda: getattr(sys.modules.get("rfc3987_syntax"), "__aiinfra_deferred__", False)
            )
        finally:
            client.close()
    finally:
        ClusterManager().stop("pipes")
    assert run.status == "ok" and run.data["cluster"]["name"] == "pipes"
    assert run.data["cluster"]["embedded"] is False and (tmp_path / "a.txt").read_text() == "x"
    # A cluster aiinfra started runs its own workers: they load papermill as the CLI does,
    # without compiling rfc3987_syntax's grammars (startup.defer_slow_imports).
    assert run.data["cluster"]["ours"] is True
    if importlib.util.find_spec("rfc3987_syntax") is not None:
        assert list(held.values()) == [True]
