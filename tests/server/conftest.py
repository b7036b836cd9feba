"""Fixtures for the server extension: a real jupyter server (pytest-jupyter) with aiinfra enabled."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from live_server import LiveServer

# pytest-jupyter ships no entry point; importing its fixtures here keeps them to this folder.
from pytest_jupyter.jupyter_server import *  # noqa: F403

SERVER_CONFIG = {"ServerApp": {"jpserver_extensions": {"aiinfra_magics": True}}}


@pytest.fixture
def jp_server_config() -> dict:  # noqa: F811 - replaces pytest-jupyter's
    return SERVER_CONFIG


@pytest.fixture
def run(jp_asyncio_loop: Any) -> Any:
    """Run a coroutine on the server's loop.

    Tests here are plain functions that drive the loop themselves: pytest-jupyter
    serves on its own loop, and pytest-asyncio (auto mode in this project) would
    run ``async def`` tests on another one.
    """
    return jp_asyncio_loop.run_until_complete


@pytest.fixture
def api(jp_fetch: Any) -> Any:
    """``await api(method, "clusters", body=...)`` -> (status, json) without raising on 4xx."""

    async def call(method: str, *parts: str, body: Any = None, raw: bytes | None = None, **kw: Any):
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
        if raw is None and method in ("POST", "PATCH"):
            raw = b""
        response = await jp_fetch(
            "aiinfra", "api", *parts, method=method, body=raw, raise_error=False, **kw
        )
        text = response.body.decode() if response.body else ""
        return response.code, (json.loads(text) if text else None)

    return call


@pytest.fixture
def api_until(api: Any) -> Any:
    """``await api_until(parts, until, tries, interval)`` -> the last body of ``GET *parts``,
    asked again until ``until(body)`` holds or ``tries`` ran out (the caller asserts on it)."""

    async def poll(parts: tuple[str, ...], until: Any, tries: int, interval: float) -> Any:
        for _ in range(tries):
            _, body = await api("GET", *parts)
            if until(body):
                break
            await asyncio.sleep(interval)
        return body

    return poll


@pytest.fixture
def dashboard_fetch(jp_fetch: Any, http_server_client: Any, jp_auth_header: dict) -> Any:
    """GET a proxied dashboard path the way the lab's iframe does: the authenticated
    URL answers with a redirect to the capability URL, which is fetched without
    Jupyter credentials (a sandboxed page has none). Returns (redirect, response).

    (pytest-tornasync's client cannot follow redirects itself.)
    """

    async def fetch(*parts: str, headers: dict | None = None, **kw: Any) -> Any:
        first = await jp_fetch(
            *parts, headers=headers, follow_redirects=False, raise_error=False, **kw
        )
        if first.code != 302:
            return first, first
        second = await http_server_client.fetch(
            first.headers["Location"], follow_redirects=False, raise_error=False
        )
        return first, second

    return fetch


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: Any) -> Any:
    server = LiveServer(tmp_path_factory.mktemp("live"))
    yield server
    server.stop()


@pytest.fixture
def live_server_factory(tmp_path: Any) -> Any:
    """Start LiveServers inside a test (with the test's environment); all stopped after it."""
    started: list[LiveServer] = []

    def start(name: str = "server", base_url: str = "/") -> LiveServer:
        folder = tmp_path / name
        folder.mkdir()
        server = LiveServer(folder, base_url)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
