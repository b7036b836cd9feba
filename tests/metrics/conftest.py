"""The metrics tests' real Dask processes (dask_procs.py), stopped after each test, and a real
jupyter server (pytest-jupyter) with aiinfra enabled for the REST test."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dask_procs import DaskProcesses

# pytest-jupyter ships no entry point; importing its fixtures here keeps them to this folder.
from pytest_jupyter.jupyter_server import *  # noqa: F403


@pytest.fixture
def dask_processes(tmp_path):
    procs = DaskProcesses(tmp_path)
    yield procs
    procs.close()


@pytest.fixture
def jp_server_config() -> dict:  # noqa: F811 - replaces pytest-jupyter's
    return {"ServerApp": {"jpserver_extensions": {"aiinfra_magics": True}}}


@pytest.fixture
def run(jp_asyncio_loop: Any) -> Any:
    """Run a coroutine on the server's loop (as tests/server/conftest.py does)."""
    return jp_asyncio_loop.run_until_complete


@pytest.fixture
def api(jp_fetch: Any) -> Any:
    """``await api(method, "clusters", ..., params=...)`` -> (status, json), 4xx included."""

    async def call(method: str, *parts: str, body: Any = None, **kw: Any):
        raw = json.dumps(body).encode() if body is not None else None
        response = await jp_fetch(
            "aiinfra", "api", *parts, method=method, body=raw, raise_error=False, **kw
        )
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)

    return call
