"""A real dask-gateway-server for the whole session (see tests/gateway_server.py)."""

from __future__ import annotations

from gateway_server import gateway, gateway_server  # noqa: F401 - fixtures for this folder
