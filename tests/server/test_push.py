"""The push channel: one authenticated WebSocket that sends what changed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from aiinfra_magics.clusters.registry import Registry


def _request(jp_http_port, jp_base_url, headers: dict) -> HTTPRequest:
    url = f"ws://127.0.0.1:{jp_http_port}{jp_base_url}aiinfra/api/events"
    return HTTPRequest(url, headers=headers)


async def _next(socket, kind: str, predicate=lambda value: True, timeout: float = 60.0):
    async def wait():
        while True:
            message = await socket.read_message()
            assert message is not None, "socket closed"
            data = json.loads(message)
            if data["type"] == kind and predicate(data[kind]):
                return data[kind]

    return await asyncio.wait_for(wait(), timeout)


def test_events_need_authentication(run, http_server_client, jp_http_port, jp_base_url):
    with pytest.raises(HTTPClientError) as err:
        run(_connect(_request(jp_http_port, jp_base_url, {"Authorization": "token no"})))
    assert err.value.code == 403


def test_a_registered_cluster_is_pushed_without_asking(
    run, http_server_client, jp_http_port, jp_base_url, jp_auth_header, aiinfra_home
):
    socket = run(_connect(_request(jp_http_port, jp_base_url, jp_auth_header)))
    try:
        assert run(_next(socket, "clusters")) == []
        # Another process registers a cluster (here: a record whose owner is this live process).
        Registry().write(
            {"name": "pushed", "backend": "local", "status": "starting", "owner": _me(),
             "created": 0, "scheduler_address": None}
        )  # fmt: skip
        pushed = run(_next(socket, "clusters", lambda cs: [c["name"] for c in cs] == ["pushed"]))
        assert pushed[0]["status"] == "starting"
        Registry().remove("pushed")
        assert run(_next(socket, "clusters", lambda cs: cs == [])) == []
    finally:
        socket.close()


async def _connect(request: Any) -> Any:
    # Made inside the running loop: tornado's client looks up the current loop when it is
    # created, and an earlier test on this xdist worker may have left the thread none.
    return await websocket_connect(request)


def _me() -> dict:
    from aiinfra_magics.clusters.registry import this_process

    return {**this_process(), "kind": "kernel"}
