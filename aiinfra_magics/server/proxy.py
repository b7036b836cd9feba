"""``aiinfra/dashboard/{name}/...``: the Dask dashboard of a registered cluster, HTTP and WebSocket.

The target comes only from the registry record of ``name`` (scheme, host and
port of its dashboard link), so the proxy reaches registered dashboards and
nothing else; the request can only choose the path on that server.
The Dask dashboard uses relative links, and Bokeh opens its socket at the page
path + ``/ws``, so forwarding the path under our prefix is enough to make it
work behind any base_url (JupyterHub included).

Trust: a dashboard is someone else's web page served from the Jupyter origin.
Every proxied response carries a CSP ``sandbox`` without ``allow-same-origin``,
so the browser runs it in an opaque origin: it cannot read the ``_xsrf`` cookie,
and any call it makes to ``/api/*`` is cross-origin (no CORS grant, Origin
``null`` refused by Jupyter). Nothing that authenticates the user travels
upstream (cookies, Authorization, XSRF headers, ``?token=``), and nothing the
upstream says about cookies or CORS comes back.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from jupyter_server.auth.decorator import allow_unauthenticated, ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import httpclient, web, websocket

from ..checks import NAME_ALLOWED, NAME_PATTERN
from ..errors import AiinfraError, NotFoundError, OperationError
from .base import status_for

# Hop-by-hop headers (RFC 9110 7.6.1), those the proxy sets itself, and every
# header that carries the user's Jupyter credentials or says where they came from.
SKIP_REQUEST = {
    "host", "connection", "keep-alive", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "cookie", "authorization", "content-length",
    "x-xsrftoken", "x-xsrf-token", "x-csrftoken", "origin", "referer",
}  # fmt: skip
# The upstream may not set cookies on the Jupyter origin, grant CORS on it, or
# replace our sandbox with its own policy.
SKIP_RESPONSE = {
    "connection", "keep-alive", "transfer-encoding", "content-length", "set-cookie",
    "set-cookie2", "content-encoding", "server", "date", "content-security-policy",
    "content-security-policy-report-only", "referrer-policy", "x-content-type-options",
}  # fmt: skip
SKIP_RESPONSE_PREFIXES = ("access-control-",)
# Query parameters Jupyter reads as credentials.
SKIP_QUERY = {"token", "_xsrf"}
# Scripts and popups (the dashboard opens its pages in new tabs), never same-origin.
SANDBOX = "sandbox allow-scripts allow-popups"
TIMEOUT_S = 30.0
PATH_SAFE = "/%:@!$&()*+,;=-._~"
# The capability in a dashboard path, as the log must not show it (anyone who reads
# the log could open the dashboard until it expires, as with a token in a query).
CAPABILITY_IN_PATH = re.compile(r"/~[^/?#]*")
SCRUBBED = "/~[secret]"


def scrub_capability(uri: str) -> str:
    """``uri`` with any dashboard capability replaced, as Jupyter scrubs ``?token=``."""
    return CAPABILITY_IN_PATH.sub(SCRUBBED, uri)


def upstream_query(query: str) -> str:
    """The request's query string without the parameters that authenticate to Jupyter."""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.lower() not in SKIP_QUERY]
    return query if len(kept) == len(pairs) else urlencode(kept)


def check_name(name: str) -> str:
    """``name`` as a cluster name, or a 404 before anything reads the registry.

    Tornado decodes ``%2F`` in path arguments, so ``..%2F..%2Fx`` arrives as a
    path; only a full match of the name pattern may become a registry lookup.
    """
    if not NAME_PATTERN.fullmatch(name):
        raise web.HTTPError(404, f"name: not a cluster name; allowed: {NAME_ALLOWED}")
    return name


class DashboardProxyHandler(JupyterHandler, websocket.WebSocketHandler):
    """One handler for both, because Bokeh's socket lives on the page's own path.

    GET only: the dashboard needs nothing else, and a state-changing verb here
    would need Jupyter's XSRF token, which the dashboard's own pages do not send.
    """

    upstream: websocket.WebSocketClientConnection | None = None
    capability: str | None = None  # set on the capability route

    @property
    def state(self) -> Any:
        return self.settings["aiinfra_state"]

    @property
    def content_security_policy(self) -> str:
        # Jupyter's own policy (frame-ancestors 'self') plus the opaque-origin sandbox.
        return f"{super().content_security_policy}; {SANDBOX}"

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Content-Type-Options", "nosniff")

    def set_cors_headers(self) -> None:
        """No CORS grant on proxied content, even for token-authenticated requests."""

    def _request_summary(self) -> str:
        # Tornado's warning line for an HTTPError ("403 GET /.../~cap/... (ip)").
        return scrub_capability(super()._request_summary())

    def _log(self) -> None:
        # Jupyter's access log writes request.uri and, on 4xx, the Referer (the
        # dashboard page's own capability URL): scrub both for the log line only.
        request = self.request
        uri, referer = request.uri, request.headers.get("Referer")
        request.uri = scrub_capability(uri or "")
        if referer is not None:
            request.headers["Referer"] = scrub_capability(referer)
        try:
            super()._log()
        finally:
            request.uri = uri
            if referer is not None:
                request.headers["Referer"] = referer

    async def _target(self, name: str, path: str) -> str:
        check_name(name)
        loop = asyncio.get_running_loop()
        try:
            base = await loop.run_in_executor(
                self.state.executor, self.state.dashboard_target, name
            )
        except (AiinfraError, OperationError) as exc:
            raise web.HTTPError(status_for(exc) or 400, str(exc)) from None
        url = f"{base}/{quote(path, safe=PATH_SAFE)}"
        query = upstream_query(self.request.query)
        if query:
            url += "?" + query
        return url

    def _prefix(self, name: str) -> str:
        prefix = url_path_join(self.base_url, "aiinfra/dashboard", quote(name, safe=""))
        return f"{prefix}/~{self.capability}" if self.capability else prefix

    @ws_authenticated
    async def get(self, name: str, path: str = "") -> None:
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            await self._proxy(name, path)
            return
        # A page goes to its capability URL: the sandboxed page has an opaque
        # origin, so the browser sends it no Jupyter cookie, and its relative
        # links and Bokeh's socket keep the capability in their path instead.
        await self._target(name, "")  # 404 for unknown clusters before any redirect
        self.capability = self.state.dashboard_capability(name)
        url = url_path_join(self._prefix(name), quote(path, safe=PATH_SAFE))
        query = upstream_query(self.request.query)
        self.redirect(url + (f"?{query}" if query else ""))

    async def _proxy(self, name: str, path: str) -> None:
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
            if key.lower() in SKIP_RESPONSE or key.lower().startswith(SKIP_RESPONSE_PREFIXES):
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

    def open(self, *args: str, **kwargs: str) -> None:
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


class DashboardViewHandler(DashboardProxyHandler):
    """``aiinfra/dashboard/{name}/~{capability}/...``: what the sandboxed page loads.

    The capability (an HMAC of the name and an expiry, keyed per server start)
    was handed out by an authenticated redirect; it grants GETs of this one
    dashboard through the proxy and nothing else, so it authenticates requests
    that carry no Jupyter cookie: the page's assets, and Bokeh's socket, whose
    Origin is ``null`` because the page is sandboxed.
    """

    @allow_unauthenticated
    async def get(self, name: str, capability: str, path: str = "") -> None:  # type: ignore[override]
        check_name(name)
        if not self.state.dashboard_capability_ok(name, capability):
            raise web.HTTPError(403, "dashboard link expired or not issued here; reopen it")
        self.capability = capability
        await self._proxy(name, path)

    def check_origin(self, origin_to_satisfy_tornado: str = "") -> bool:
        # The sandboxed dashboard's own socket: the capability in the path, checked
        # in get() before the handshake, is what authenticates it.
        if self.request.headers.get("Origin", "").lower() == "null":
            return self.capability is not None
        return super().check_origin(origin_to_satisfy_tornado)


def proxy_handlers() -> list[tuple[str, type]]:
    return [
        (
            r"aiinfra/dashboard/(?P<name>[^/]+)/~(?P<capability>[0-9a-f]+\.[0-9a-f]+)/?(?P<path>.*)",
            DashboardViewHandler,
        ),
        (r"aiinfra/dashboard/(?P<name>[^/]+)/?(?P<path>.*)", DashboardProxyHandler),
    ]


__all__ = ["DashboardProxyHandler", "DashboardViewHandler", "NotFoundError", "proxy_handlers"]
