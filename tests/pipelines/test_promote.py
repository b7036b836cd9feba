"""``promote``: pipeline.yaml created or edited round-trip; a parameters cell ensured, content kept."""

from __future__ import annotations

import json
import time

import nbformat
import pytest
from jupyter_client import BlockingKernelClient
from live_server import LiveServer

from aiinfra_magics.doors.words import Context, run_words
from aiinfra_magics.errors import AiinfraError
from aiinfra_magics.pipelines.promote import current_notebook
from aiinfra_magics.pipelines.spec import PipelineSpec


def plain_notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title")] + [
        nbformat.v4.new_code_cell(s) for s in sources
    ]
    nbformat.write(nb, str(path))
    return path


def tags(cell):
    return cell.metadata.get("tags", [])


def promote(*argv):
    return run_words(["promote", *argv], Context(door="cli"))


def test_promote_splits_leading_assignments_into_parameters_cell(tmp_path):
    nb_path = plain_notebook(
        tmp_path / "prepare.ipynb",
        "n = 100\nseed: int = 3\nimport math\nx = math.sqrt(n)",
        "print(x)",
    )
    before = "".join(c.source for c in nbformat.read(str(nb_path), as_version=4).cells)
    result = promote("--notebook", str(nb_path), "-p", "n=10")
    assert (
        "added step 'prepare'" in str(result)
        and "n, seed" in str(result)
        and "parameters" in str(result)
    )
    nb = nbformat.read(str(nb_path), as_version=4)
    params = [c for c in nb.cells if "parameters" in tags(c)]
    assert len(params) == 1 and params[0].source == "n = 100\nseed: int = 3"
    # Nothing lost: the text of all cells together is unchanged.
    assert "".join(c.source for c in nb.cells).replace("\n", "") == before.replace("\n", "")
    spec = PipelineSpec.from_file(tmp_path / "pipeline.yaml")
    assert spec.steps["prepare"].params == {"n": 10}


def test_promote_tags_a_pure_assignment_cell_and_adds_one_when_none(tmp_path):
    a = plain_notebook(tmp_path / "a.ipynb", "lr = 0.1\nepochs = 3", "print(lr)")
    promote("--notebook", str(a))
    cells = nbformat.read(str(a), as_version=4).cells
    assert "parameters" in tags(cells[1]) and len(cells) == 3
    b = plain_notebook(tmp_path / "b.ipynb", "import os\nprint(os.getcwd())")
    out = promote("--notebook", str(b), "--after", "a", "-p", "k=2")
    cells = nbformat.read(str(b), as_version=4).cells
    assert (
        "parameters" in tags(cells[1])
        and cells[1].source == "k = 2"
        and cells[2].source.startswith("import os")
    )
    assert "added a cell tagged `parameters` with k" in str(out)
    assert PipelineSpec.from_file(tmp_path / "pipeline.yaml").steps["b"].after == ("a",)


def test_promote_keeps_yaml_comments_and_refuses_bad_input(tmp_path):
    plain_notebook(tmp_path / "a.ipynb", "x = 1")
    plain_notebook(tmp_path / "c.ipynb", "y = 2")
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(
        "# my pipeline, keep this comment\nname: mine\nsteps:\n  a:\n    notebook: a.ipynb  # the first step\n"
    )
    promote("--notebook", str(tmp_path / "c.ipynb"), "--after", "a", "--name", "c")
    text = spec.read_text()
    assert (
        "# my pipeline, keep this comment" in text
        and "# the first step" in text
        and "c.ipynb" in text
    )
    before = spec.read_text()
    with pytest.raises(AiinfraError, match="steps.c.after: got 'zz'"):
        promote("--notebook", str(tmp_path / "c.ipynb"), "--after", "zz", "--name", "c")
    with pytest.raises(AiinfraError, match="--name: got 'a'"):
        promote("--notebook", str(tmp_path / "c.ipynb"), "--name", "a")
    assert spec.read_text() == before  # a refused promotion writes nothing


def test_promote_in_a_kernel_of_a_real_jupyter_session(tmp_path):
    """``%aiinfra promote`` finds the notebook a real jupyter-server session started the
    kernel for (the server tells the kernel through ``JPY_SESSION_NAME``)."""
    server = LiveServer(tmp_path)
    client = session = None
    try:
        work = tmp_path / "root" / "work"
        work.mkdir()
        nb_path = plain_notebook(work / "scoring.ipynb", "threshold = 0.5\nprint(threshold)")
        body = {"path": "work/scoring.ipynb", "name": "scoring.ipynb", "type": "notebook"}
        body["kernel"] = {"name": "python3"}
        status, raw = server.request("POST", "api/sessions", json.dumps(body).encode())
        assert status == 201, raw
        session = json.loads(raw)
        kernel_id = session["kernel"]["id"]
        connection = tmp_path / "rt" / f"kernel-{kernel_id}.json"
        deadline = time.monotonic() + 120
        while not connection.is_file():
            assert time.monotonic() < deadline, "the server wrote no connection file"
            time.sleep(0.1)

        client = BlockingKernelClient()
        client.load_connection_file(str(connection))
        client.start_channels()
        client.wait_for_ready(timeout=120)
        out: list[str] = []

        def keep(msg):
            content = msg["content"]
            if msg["msg_type"] == "stream":
                out.append(content["text"])
            elif msg["msg_type"] in ("execute_result", "display_data"):
                out.append(content["data"].get("text/plain", ""))
            elif msg["msg_type"] == "error":
                out.append("\n".join(content["traceback"]))

        code = "%load_ext aiinfra_magics\n%aiinfra promote -p threshold=0.9"
        reply = client.execute_interactive(code, timeout=120, output_hook=keep)
        said = "".join(out)
        assert reply["content"]["status"] == "ok", said
        assert "added step 'scoring' (scoring.ipynb)" in said, said

        spec = PipelineSpec.from_file(work / "pipeline.yaml")
        assert spec.steps["scoring"].params == {"threshold": 0.9}
        cells = nbformat.read(str(nb_path), as_version=4).cells
        assert [c.source for c in cells if "parameters" in tags(c)] == ["threshold = 0.5"]
    finally:
        if client is not None:
            client.stop_channels()
        if session is not None:  # shuts the kernel down before the server goes
            server.request("DELETE", f"api/sessions/{session['id']}")
        server.stop()


def test_promote_outside_a_session_needs_the_notebook(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert current_notebook({}) is None
    with pytest.raises(AiinfraError, match="--notebook"):
        promote()


def test_promote_types_p_values_as_pipeline_run_does(tmp_path):
    """One rule for -p in every door (issue 25 item 8): papermill's, not YAML's."""
    from aiinfra_magics.pipelines.params import collect

    nb_path = plain_notebook(tmp_path / "typed.ipynb", "a = 0\nb = 0\nc = 0\nd = 0\ne = 0", "")
    texts = ["a=010", "b=1e3", "c=None", "d=2024-01-02", "e=yes"]
    promote("--notebook", str(nb_path), *[w for t in texts for w in ("-p", t)])
    params = PipelineSpec.from_file(tmp_path / "pipeline.yaml").steps["typed"].params
    assert params == {"a": 10, "b": 1000.0, "c": None, "d": "2024-01-02", "e": "yes"}
    assert params == {key: value for _, key, value in collect(texts)}
