"""A real dask-gateway-server for the whole session (see gateway_server.py)."""

from __future__ import annotations

import pytest
from gateway_server import GatewayServer, start_gateway


@pytest.fixture(scope="session")
def gateway_server(tmp_path_factory) -> GatewayServer:
    server = start_gateway(tmp_path_factory.mktemp("gateway"))
    yield server
    server.stop()


@pytest.fixture
def gateway(gateway_server, monkeypatch) -> GatewayServer:
    """The session's gateway, made the dask-gateway client's default for this test."""
    import dask.config
    import dask_gateway  # noqa: F401 - loads its config defaults before we override them

    for key, value in gateway_server.env().items():
        monkeypatch.setenv(key, value)
    with dask.config.set(
        {
            "gateway.address": gateway_server.address,
            "gateway.proxy-address": gateway_server.proxy_address,
            "gateway.auth.type": "basic",
            "gateway.auth.kwargs": {"password": gateway_server.password},
        }
    ):
        yield gateway_server
