"""``aiinfra/dashboard/{name}/...``: the Dask dashboard of a registered cluster, HTTP and WebSocket.

The target comes only from the registry record of ``name`` (scheme, host and
port of its dashboard link), so the proxy reaches registered dashboards (on any
host) and nothing else; the request can only choose the path on that server.
The Dask dashboard uses relative links, and Bokeh opens its socket at the page
path + ``/ws``, so forwarding the path under our prefix is enough to make it
work behind any base_url (JupyterHub included).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlsplit

from jupyter_server.auth.decorator import ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import httpclient, web, websocket

from ..errors import AiinfraError, NotFoundError, OperationError
from .base import status_for

# Hop-by-hop headers (RFC 9110 7.6.1) and those the proxy sets itself.
SKIP_REQUEST = {
    "host", "connection", "keep-alive", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "cookie", "authorization", "content-length",
}  # fmt: skip
SKIP_RESPONSE = {
    "connection", "keep-alive", "transfer-encoding", "content-length", "set-cookie",
    "content-encoding", "server", "date",
}  # fmt: skip
TIMEOUT_S = 30.0


class DashboardProxyHandler(JupyterHandler, websocket.WebSocketHandler):
    """One handler for both, because Bokeh's socket lives on the page's own path.

    GET only: the dashboard needs nothing else, and a state-changing verb here
    would need Jupyter's XSRF token, which the dashboard's own pages do not send.
    """

    upstream: websocket.WebSocketClientConnection | None = None

    @property
    def state(self) -> Any:
        return self.settings["aiinfra_state"]

    async def _target(self, name: str, path: str) -> str:
        loop = asyncio.get_running_loop()
        try:
            base = await loop.run_in_executor(
                self.state.executor, self.state.dashboard_target, name
            )
        except (AiinfraError, OperationError) as exc:
            raise web.HTTPError(status_for(exc) or 400, str(exc)) from None
        url = f"{base}/{quote(path, safe='/%:@!$&()*+,;=-._~')}"
        if self.request.query:
            url += "?" + self.request.query
        return url

    def _prefix(self, name: str) -> str:
        return url_path_join(self.base_url, "aiinfra/dashboard", quote(name, safe=""))

    @ws_authenticated
    async def get(self, name: str, path: str = "") -> None:
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            await self._http(name, path)
            return
        # Connect upstream first, so a dead dashboard is an HTTP error, not a socket
        # that opens and closes, and the upstream's chosen subprotocol can be echoed.
        url = (await self._target(name, path)).replace("http", "ws", 1)
        asked = self.request.headers.get("Sec-WebSocket-Protocol")
        self._pending: list[str | bytes] = []
        try:
            self.upstream = await websocket.websocket_connect(
                httpclient.HTTPRequest(url, connect_timeout=TIMEOUT_S),
                on_message_callback=self._from_upstream,
                subprotocols=[p.strip() for p in asked.split(",")] if asked else None,
            )
        except (OSError, httpclient.HTTPClientError, websocket.WebSocketError) as exc:
            raise web.HTTPError(502, f"dashboard of {name!r} did not answer: {exc}") from None
        await websocket.WebSocketHandler.get(self, name, path)
        if self.ws_connection is None and self.upstream is not None:  # handshake refused
            self.upstream.close()
            self.upstream = None

    async def _http(self, name: str, path: str) -> None:
        url = await self._target(name, path)
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in SKIP_REQUEST}
        request = httpclient.HTTPRequest(
            url,
            method="GET",
            headers=headers,
            follow_redirects=False,
            request_timeout=TIMEOUT_S,
            decompress_response=True,
        )
        try:
            response = await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, httpclient.HTTPClientError) as exc:
            raise web.HTTPError(502, f"dashboard of {name!r} did not answer: {exc}") from None
        if response.code == 599:  # tornado's code for "no HTTP response at all"
            raise web.HTTPError(502, f"dashboard of {name!r} did not answer: {response.error}")
        self.set_status(response.code, response.reason)
        self.clear_header("Content-Type")
        for key, value in response.headers.get_all():
            if key.lower() in SKIP_RESPONSE:
                continue
            if key.lower() == "location":
                value = self._rewrite_location(name, value)
            self.add_header(key, value)
        if response.body and response.code not in (204, 304):
            self.write(response.body)
        await self.finish()

    def _rewrite_location(self, name: str, location: str) -> str:
        """Keep redirects inside the proxy (Dask redirects ``/`` to ``/status``)."""
        parts = urlsplit(location)
        if parts.scheme or location.startswith("/"):
            rest = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
            return url_path_join(self._prefix(name), rest)
        return location  # relative: already right under the proxy path

    # -- WebSocket side ----------------------------------------------------------------

    def open(self, name: str, path: str = "") -> None:
        for message in self._pending:
            self.write_message(message, binary=isinstance(message, bytes))
        self._pending = []

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        # Bokeh passes ["bokeh", session token]; answer what the dashboard chose.
        chosen = self.upstream.selected_subprotocol if self.upstream is not None else None
        return chosen or (subprotocols[0] if subprotocols else None)

    def _from_upstream(self, message: str | bytes | None) -> None:
        if message is None:  # upstream closed
            self.close()
            return
        if self.ws_connection is None:  # our side is not open yet
            self._pending.append(message)
            return
        try:
            self.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            if self.upstream is not None:
                self.upstream.close()

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream is None:
            return
        try:
            await self.upstream.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            self.close()

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None


def proxy_handlers() -> list[tuple[str, type]]:
    return [
        (r"aiinfra/dashboard/(?P<name>[^/]+)/?(?P<path>.*)", DashboardProxyHandler),
    ]


__all__ = ["DashboardProxyHandler", "NotFoundError", "proxy_handlers"]
