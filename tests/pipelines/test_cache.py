"""The cache key and records, without a cluster: what invalidates a step and what does not."""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import nbformat
import pytest

from aiinfra_magics.pipelines import cache
from aiinfra_magics.pipelines.dag import expand
from aiinfra_magics.pipelines.spec import PipelineSpec


@pytest.fixture
def folder(tmp_path, notebook):
    notebook(tmp_path / "a.ipynb", "n = 1\nupstream = {}\nproduct = []", "x = n")
    (tmp_path / "raw.csv").write_text("1,2\n")
    return tmp_path


def nodes(folder, **step):
    body = {"notebook": "a.ipynb", "products": ["out.txt"], **step}
    spec = PipelineSpec.from_dict({"steps": {"a": body, "b": {"notebook": "a.ipynb"}}}, folder)
    return expand(spec)


def key(folder, upstream=None, **step):
    return cache.node_hashes(folder, nodes(folder, **step)["a"], upstream or {})["key"]


def test_key_follows_params_inputs_kernel_and_upstream(folder):
    base = key(folder, inputs=["raw.csv"])
    assert key(folder, inputs=["raw.csv"]) == base
    assert key(folder, inputs=["raw.csv"], params={"n": 2}) != base
    node = nodes(folder, inputs=["raw.csv"])["a"]
    other = dataclasses.replace(node, step=dataclasses.replace(node.step, kernel="other"))
    assert cache.node_hashes(folder, other, {})["key"] != base
    hashes = cache.node_hashes(folder, nodes(folder, after=["b"])["a"], {"b": {"p": "h1"}})
    again = cache.node_hashes(folder, nodes(folder, after=["b"])["a"], {"b": {"p": "h2"}})
    assert hashes["upstream"] == {"b": {"p": "h1"}} and hashes["key"] != again["key"]
    (folder / "raw.csv").write_text("1,3\n")
    assert key(folder, inputs=["raw.csv"]) != base


def test_code_hash_ignores_outputs_markdown_trailing_space_and_injected_cells(folder):
    path = folder / "a.ipynb"
    before = cache.code_hash(path)
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="old")]
    nb.cells[1].source += "   \n\n"
    nb.cells.append(nbformat.v4.new_markdown_cell("notes"))
    injected = nbformat.v4.new_code_cell("n = 5")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(1, injected)
    nbformat.write(nb, str(path))
    assert cache.code_hash(path) == before
    nb.cells[2].source = "x = n + 1"
    nbformat.write(nb, str(path))
    assert cache.code_hash(path) != before
    # Cell boundaries count: the same lines split differently are other code.
    nb.cells[2].source = "x = n"
    nb.cells.append(nbformat.v4.new_code_cell("y = 1"))
    nbformat.write(nb, str(path))
    split = cache.code_hash(path)
    nb.cells[2].source = "x = n\ny = 1"
    nb.cells.pop()
    nbformat.write(nb, str(path))
    assert cache.code_hash(path) != split


def test_file_hash_of_files_folders_and_missing(tmp_path):
    assert cache.file_hash(tmp_path / "nothing") is None
    (tmp_path / "f").write_bytes(b"abc")
    first = cache.file_hash(tmp_path / "f")
    assert first == cache.file_hash(tmp_path / "f") and len(first) == 64
    (tmp_path / "f").write_bytes(b"abd")
    assert cache.file_hash(tmp_path / "f") != first
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x").write_text("1")
    folder = cache.file_hash(tmp_path / "d")
    (tmp_path / "d" / "sub" / "x").write_text("2")  # a changed file in the folder counts
    changed = cache.file_hash(tmp_path / "d")
    assert changed != folder
    (tmp_path / "d" / "sub" / "x").write_text("1")
    assert cache.file_hash(tmp_path / "d") == folder
    (tmp_path / "d" / "sub" / "x").rename(tmp_path / "d" / "sub" / "y")  # a rename counts
    assert cache.file_hash(tmp_path / "d") != folder


def test_lookup_needs_the_same_key_and_every_product(folder):
    node = nodes(folder)["a"]
    assert cache.lookup(folder, node, "k1") is None  # nothing stored yet
    cache.store(folder, node, "k1", "run-1", {"out.txt": "h"})
    assert cache.lookup(folder, node, "k1") is None  # the product is missing
    (folder / "out.txt").write_text("x")
    hit = cache.lookup(folder, node, "k1")
    assert hit == {"key": "k1", "run_id": "run-1", "products": {"out.txt": "h"}}
    assert cache.lookup(folder, node, "k2") is None
    (folder / "runs" / ".cache" / "a.json").write_text("{half")
    assert cache.lookup(folder, node, "k1") is None  # a damaged record is a miss


def test_records_of_grid_nodes_are_one_file_each(folder):
    spec = PipelineSpec.from_dict(
        {"steps": {"g": {"notebook": "a.ipynb", "grid": {"n": [1, 2]}}}}, folder
    )
    for node in expand(spec).values():
        cache.store(folder, node, "k-" + node.name, "r", {})
    names = sorted(p.name for p in (folder / "runs" / ".cache").iterdir())
    assert len(names) == 2 and all("/" not in n and n.endswith(".json") for n in names)


def test_atomic_write_keeps_the_mode_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "r.json"
    cache.write_json_atomic(path, {"a": 1})
    os.chmod(path, 0o600)
    inode = path.stat().st_ino
    cache.write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2} and path.read_text().endswith("\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_ino != inode
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_records_of_node_names_with_a_slash_stay_in_the_cache_folder(folder):
    spec = PipelineSpec.from_dict(
        {"steps": {"g": {"notebook": "a.ipynb", "grid": {"n": ["x/y", "../z"]}}}}, folder
    )
    for node in expand(spec).values():
        cache.store(folder, node, "k", "r", {})
        assert cache.lookup(folder, node, "k") == {"key": "k", "run_id": "r", "products": {}}
    entries = list((folder / "runs" / ".cache").iterdir())
    assert len(entries) == 2 and all(p.is_file() for p in entries)
    assert sorted(p.name for p in (folder / "runs").iterdir()) == [".cache"]


def test_hash_parts_are_named_and_a_missing_upstream_counts_as_no_products(folder):
    spec = PipelineSpec.from_dict(
        {"steps": {"a": {"notebook": "a.ipynb"}, "b": {"notebook": "a.ipynb", "after": ["a"]}}},
        folder,
    )
    parts = cache.node_hashes(folder, expand(spec)["b"], {})
    assert set(parts) == {"code", "params", "upstream", "inputs", "kernel", "key"}
    assert parts["upstream"] == {"a": {}} and parts["inputs"] == {}
    assert parts["code"] == cache.code_hash(folder / "a.ipynb")
    assert parts["kernel"] == "python3"


def test_records_are_indented_json_and_any_value_is_written_as_text(tmp_path):
    path = tmp_path / "r.json"
    cache.write_json_atomic(path, {"a": [1], "p": tmp_path})
    assert path.read_text() == json.dumps({"a": [1], "p": str(tmp_path)}, indent=2) + "\n"


def test_atomic_write_renames_a_hidden_temporary_from_the_same_folder(tmp_path, monkeypatch):
    import tempfile

    # A temporary made anywhere else could not be renamed into place on another file system.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    renamed = []
    real_replace = os.replace

    def spy(src, dst):
        renamed.append((os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    path = tmp_path / "r.json"
    cache.write_text_atomic(path, "x")
    ((src, dst),) = renamed
    assert dst == str(path) and os.path.dirname(src) == str(tmp_path)
    assert os.path.basename(src).startswith(".r.json") and src.endswith(".tmp")


def test_failed_atomic_write_raises_its_own_error_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    target.mkdir()  # os.replace of a file onto a folder fails
    with pytest.raises(IsADirectoryError):
        cache.write_text_atomic(target, "x")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_key_ignores_the_order_params_and_inputs_are_written_in(folder):
    (folder / "b.csv").write_text("3\n")
    assert key(folder, params={"n": 1, "m": 2}) == key(folder, params={"m": 2, "n": 1})
    assert key(folder, inputs=["raw.csv", "b.csv"]) == key(folder, inputs=["b.csv", "raw.csv"])


def test_code_hash_reads_cells_without_metadata_or_source(tmp_path):
    plain = {"cells": [{"cell_type": "code", "source": "x = 1"}, {"cell_type": "code"}]}
    (tmp_path / "n.ipynb").write_text(json.dumps(plain))
    other = {"cells": [{"cell_type": "code", "source": "x = 2", "metadata": {}}]}
    (tmp_path / "m.ipynb").write_text(json.dumps(other))
    assert cache.code_hash(tmp_path / "n.ipynb") != cache.code_hash(tmp_path / "m.ipynb")


def test_code_hash_normalises_line_ends_and_trailing_space_only(tmp_path):
    def hashed(*sources, **extra):
        cells = [{"cell_type": "code", "source": s, "metadata": {}} for s in sources]
        (tmp_path / "n.ipynb").write_text(json.dumps({"cells": cells, **extra}))
        return cache.code_hash(tmp_path / "n.ipynb")

    base = hashed("if a:\n    b = 1\nc = 2")
    assert hashed("if a:\r\n    b = 1  \r\nc = 2\n") == base  # CRLF, trailing blanks
    assert hashed("if a:\n    b = 1\n    c = 2") != base  # indentation is code
    assert hashed("if a:\n    b =  1\nc = 2") != base
    (tmp_path / "n.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code"}]}))
    no_source = cache.code_hash(tmp_path / "n.ipynb")
    assert no_source == hashed("")
    (tmp_path / "n.ipynb").write_text(json.dumps({"metadata": {}}))
    assert cache.code_hash(tmp_path / "n.ipynb") == hashed()  # no cells at all
