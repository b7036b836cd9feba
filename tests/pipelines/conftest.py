"""Shared helpers: notebooks written on the fly and one real 2-worker cluster per module."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from distributed import Client, LocalCluster


def make_notebook(path: Path, params: str, *cells: str) -> Path:
    """A notebook whose first code cell (tagged ``parameters``) is ``params``."""
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(params)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def write_spec(folder: Path, spec: dict) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@contextlib.contextmanager
def local_client(**cluster_options: Any) -> Iterator[Client]:
    """A Client of a real loopback LocalCluster of worker processes (2 x 1 thread unless told)."""
    options = {"n_workers": 2, "threads_per_worker": 1, **cluster_options}
    with (
        LocalCluster(
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.ERROR,
            **options,
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def client():
    with local_client() as c:
        yield c


@pytest.fixture(scope="module")
def gpu_client():
    """One worker of 2 threads with a mocked GPU: a ``GPU`` resource the cost figures count."""
    with local_client(n_workers=1, threads_per_worker=2, resources={"GPU": 1}) as c:
        yield c


@pytest.fixture
def notebook():
    """``notebook(path, params_source, *cell_sources)`` writes a notebook."""
    return make_notebook


@pytest.fixture
def pipeline_file():
    """``pipeline_file(folder, spec_dict)`` writes pipeline.yaml."""
    return write_spec
