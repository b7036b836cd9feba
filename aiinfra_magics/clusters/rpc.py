"""Small synchronous calls to a scheduler from any process, kernel or not.

Each call runs in a private event loop on a helper thread, so it works the same
inside a Jupyter kernel (whose main thread already runs a loop) and in a CLI.
"""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="aiinfra-rpc")

CONTROL_OP = "aiinfra_control"


def _run(coro_factory: Any, timeout: float) -> Any:
    def runner() -> Any:
        return asyncio.run(asyncio.wait_for(coro_factory(), timeout))

    try:
        return _POOL.submit(runner).result()
    except asyncio.TimeoutError:
        raise TimeoutError(f"no answer within {timeout:g}s") from None


def scheduler_call(
    address: str,
    op: str,
    timeout: float = 10.0,
    connection_args: dict[str, Any] | None = None,
    **msg: Any,
) -> Any:
    """Send one message ``op`` to the scheduler at ``address`` and return its reply.

    ``connection_args``: TLS settings, e.g. a gateway cluster's ``security``.
    """
    from distributed.comm.core import CommClosedError
    from distributed.core import rpc

    async def call() -> Any:
        async with rpc(address, timeout=timeout, connection_args=connection_args) as remote:
            return await getattr(remote, op)(**msg)

    try:
        return _run(call, timeout)
    except CommClosedError as exc:
        raise OSError(f"connection to {address} closed: {exc}") from None


def scheduler_identity(address: str, timeout: float = 5.0) -> dict[str, Any]:
    return scheduler_call(address, "identity", timeout=timeout)


COST_OP = "aiinfra_cost"  # answered by clusters/cost.py's plugin


def observe(
    address: str, timeout: float, connection_args: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(identity, cost report or None) of one scheduler in one connection; OSError if none."""
    return observe_many([address], timeout, connection_args, strict=True)[address]


def observe_many(
    addresses: list[str],
    timeout: float = 5.0,
    connection_args: dict[str, Any] | None = None,
    strict: bool = False,
) -> dict[str, tuple[Any, Any]]:
    """``identity`` and cost report of each scheduler, all at once; (None, None) if one is silent.

    A scheduler without the cost plugin answers None for it (and logs a warning).
    """
    if not addresses:  # before importing distributed: an empty listing must not pay for it
        return {}
    from distributed.core import rpc

    async def one(address: str) -> tuple[Any, Any]:
        try:
            async with rpc(address, timeout=timeout, connection_args=connection_args) as remote:
                identity = await asyncio.wait_for(remote.identity(), timeout)
                figures = await asyncio.wait_for(getattr(remote, COST_OP)(), timeout)
                return identity, figures if isinstance(figures, dict) else None
        except (OSError, asyncio.TimeoutError, TimeoutError) as exc:
            if strict:
                raise OSError(f"{address}: {exc}") from None
            return None, None

    async def every() -> list[Any]:
        return await asyncio.gather(*(one(a) for a in addresses))

    return dict(zip(addresses, _run(every, timeout * 2 + 1.0)))


#: A scheduler's first message (its handshake) is a few hundred bytes; anything claiming
#: more is not a Dask scheduler, and must not make us allocate what it claims.
MAX_HANDSHAKE_BYTES = 1 << 20


def check_dask_handshake(address: str, timeout: float = 5.0) -> None:
    """Raise ValueError/OSError unless a Dask comm greets us at ``address`` with a sane frame.

    Distributed's TCP comm begins every message with its total size (8 bytes,
    little-endian) and the listening side speaks first. Reading just that header,
    bounded by ``timeout`` and ``MAX_HANDSHAKE_BYTES``, tells a scheduler from any
    other service without trusting a length the other side chose.
    """
    parts = urlsplit(address)
    if parts.scheme != "tcp" or parts.port is None:
        return  # tls/ucx/inproc: no raw probe; distributed's own bounded connect decides
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        header = b""
        while len(header) < 8:
            chunk = sock.recv(8 - len(header))
            if not chunk:
                raise ValueError("closed before greeting")
            header += chunk
    size = int.from_bytes(header, "little")
    if not 0 < size <= MAX_HANDSHAKE_BYTES:
        raise ValueError(f"not a Dask comm (first frame claims {size} bytes)")


def tcp_reachable(address: str, timeout: float = 0.5) -> bool | None:
    """True/False for tcp/tls addresses; None when the protocol can't be probed this way."""
    parts = urlsplit(address)
    if parts.scheme not in ("tcp", "tls") or parts.port is None:
        return None
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except OSError:
        return False
