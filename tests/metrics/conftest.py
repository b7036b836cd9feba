"""The metrics tests' real Dask processes (dask_procs.py), stopped after each test."""

from __future__ import annotations

import pytest
from dask_procs import DaskProcesses


@pytest.fixture
def dask_processes(tmp_path):
    procs = DaskProcesses(tmp_path)
    yield procs
    procs.close()
