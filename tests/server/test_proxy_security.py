"""The dashboard proxy keeps the user's Jupyter credentials and authority on the Jupyter side.

A real upstream HTTP/WebSocket server on 127.0.0.1 records what reaches it and
answers with the headers a hostile dashboard would send; it is registered as a
cluster's dashboard the way an ``address`` cluster is (an external record).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket

from aiinfra_magics.clusters.registry import Registry, this_process
from aiinfra_magics.server.state import CAPABILITY_TTL_S

SECRET_COOKIE = "_xsrf=2|secret-xsrf; username-127-0-0-1=secret-session"


class _Seen:
    requests: list[dict] = []


class _Upstream(tornado.web.RequestHandler):
    def get(self, path: str) -> None:
        _Seen.requests.append(
            {"path": path, "query": self.request.query, "headers": dict(self.request.headers)}
        )
        # What a hostile dashboard answers: cookies and CORS on the Jupyter origin,
        # and a policy of its own instead of the proxy's sandbox.
        self.set_header("Set-Cookie", "_xsrf=attacker; Path=/")
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Access-Control-Allow-Credentials", "true")
        self.set_header("Access-Control-Allow-Methods", "PUT")
        self.set_header("Content-Security-Policy", "default-src *")
        self.set_header("X-Upstream", "kept")
        self.write("<html><body>hello</body></html>")


class _UpstreamSocket(tornado.websocket.WebSocketHandler):
    def open(self) -> None:
        _Seen.requests.append(
            {"path": "ws", "query": self.request.query, "headers": dict(self.request.headers)}
        )
        self.write_message("hi")


def _register(name: str, port: int, host: str = "127.0.0.1") -> None:
    """An external cluster record whose 'scheduler' is the upstream's own TCP port."""
    Registry().write(
        {
            "name": name,
            "backend": "address",
            "status": "running",
            "owner": {**this_process(), "kind": "external"},
            "created": time.time(),
            "scheduler_address": f"tcp://127.0.0.1:{port}",
            "dashboard_link": f"http://{host}:{port}/status",
            "gpus": [],
        }
    )


@pytest.fixture
def upstream(jp_asyncio_loop):
    _Seen.requests = []

    async def listen():  # on the loop the server's requests run on (see test_dashboard_plots)
        app = tornado.web.Application([(r"/ws", _UpstreamSocket), (r"/(.*)", _Upstream)])
        return app.listen(0, "127.0.0.1")

    server = jp_asyncio_loop.run_until_complete(listen())
    port = next(iter(server._sockets.values())).getsockname()[1]
    yield port
    server.stop()


def test_credentials_do_not_reach_the_upstream_and_its_grants_do_not_come_back(
    run, dashboard_fetch, jp_serverapp, jp_http_port, jp_base_url, upstream
):
    _register("hostile", upstream)
    token = jp_serverapp.identity_provider.token

    async def go():
        redirect, response = await dashboard_fetch(
            "aiinfra", "dashboard", "hostile", "page",
            params={"token": token, "keep": "1", "_xsrf": "secret-xsrf"},
            headers={
                "Authorization": f"token {token}", "Cookie": SECRET_COOKIE,
                "X-XSRFToken": "secret-xsrf", "Referer": f"http://x/lab?token={token}",
            },
        )  # fmt: skip
        # The authenticated URL hands out the capability URL, credentials dropped.
        assert redirect.code == 302, redirect.code
        assert (
            token not in redirect.headers["Location"]
            and "secret" not in redirect.headers["Location"]
        )
        assert response.code == 200 and b"hello" in response.body
        (seen,) = _Seen.requests
        assert seen["path"] == "page"
        assert seen["query"] == "keep=1"
        sent = {k.lower(): v for k, v in seen["headers"].items()}
        for header in ("cookie", "authorization", "x-xsrftoken", "referer"):
            assert header not in sent, (header, sent[header])
        assert token not in repr(seen) and "secret" not in repr(seen)

        back = {k.lower(): v for k, v in response.headers.get_all()}
        # (Jupyter itself may set its login cookie for a ?token= request; not the upstream's.)
        assert not any("attacker" in c for c in response.headers.get_list("Set-Cookie"))
        assert not [k for k in back if k.startswith("access-control-")], back
        assert back["x-upstream"] == "kept"
        # The page runs in an opaque origin: sandboxed, never same-origin.
        csp = response.headers.get_list("Content-Security-Policy")
        assert any("sandbox allow-scripts" in c for c in csp), csp
        assert not any("allow-same-origin" in c or "default-src *" in c for c in csp), csp

        # The WebSocket side forwards no credentials either.
        ws = await tornado.websocket.websocket_connect(
            tornado.httpclient.HTTPRequest(
                f"ws://127.0.0.1:{jp_http_port}{jp_base_url}aiinfra/dashboard/hostile/ws"
                f"?token={token}&keep=1",
                headers={"Cookie": SECRET_COOKIE, "X-XSRFToken": "secret-xsrf"},
            )
        )
        assert await asyncio.wait_for(ws.read_message(), 20) == "hi"
        ws.close()
        seen_ws = _Seen.requests[-1]
        assert seen_ws["path"] == "ws" and "token" not in seen_ws["query"]
        sent = {k.lower() for k in seen_ws["headers"]}
        assert not sent & {"cookie", "authorization", "x-xsrftoken"}

    run(go())


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2Foutside",  # decoded by tornado into ../../outside
        "..%2Foutside",
        "Outside",
        "-x",
        "a" * 64,
        "x%00y",
        "%2E%2E",
    ],
)
def test_names_that_are_not_cluster_names_never_reach_the_registry(
    run, http_server_client, jp_base_url, jp_auth_header, upstream, name
):
    # A record outside the registry folder that a path built from the name would reach.
    registry = Registry()
    outside = registry.root.parent.parent / "outside.json"
    _register("outside", upstream)
    registry.path("outside").rename(outside)
    (registry.root.parent / "outside.json").write_bytes(outside.read_bytes())
    (registry.root / "Outside.json").write_bytes(outside.read_bytes())
    (registry.root / "-x.json").write_bytes(outside.read_bytes())

    async def go():
        # Raw percent-escapes on the wire (jp_fetch would quote the %).
        response = await http_server_client.fetch(
            f"{jp_base_url}aiinfra/dashboard/{name}/status",
            headers=jp_auth_header, raise_error=False, follow_redirects=False,
        )  # fmt: skip
        assert response.code in (400, 404), response.code
        assert _Seen.requests == []

    run(go())


def test_a_dashboard_on_another_host_than_its_scheduler_is_refused(run, jp_fetch, upstream):
    _register("elsewhere", upstream, host="192.0.2.1")  # refused before any connection

    async def go():
        response = await jp_fetch("aiinfra", "dashboard", "elsewhere", "status", raise_error=False)
        assert response.code == 409
        assert _Seen.requests == []

    run(go())


def test_only_an_issued_capability_opens_a_dashboard_without_credentials(
    run, dashboard_fetch, http_server_client, jp_http_port, jp_base_url, upstream
):
    _register("one", upstream)
    _register("two", upstream)

    async def go():
        redirect, response = await dashboard_fetch("aiinfra", "dashboard", "one", "page")
        assert response.code == 200
        location = redirect.headers["Location"]
        capability = location.split("/~")[1].split("/")[0]
        expires, signature = capability.split(".")
        forged = [
            location.replace("/one/", "/two/"),  # another cluster's dashboard
            location.replace(capability, f"{int(expires, 16) + 1:x}.{signature}"),  # longer life
            location.replace(capability, f"{expires}.{'0' * len(signature)}"),
            location.replace(capability, f"{int(time.time()) - 1:x}.{signature}"),  # expired
        ]
        for url in forged:
            response = await http_server_client.fetch(url, raise_error=False)
            assert response.code == 403, url

        # Bokeh's socket from the sandboxed page: Origin null, no cookie, capability in
        # the path. Without the capability the same socket is refused.
        ws_base = f"ws://127.0.0.1:{jp_http_port}"
        ws = await tornado.websocket.websocket_connect(
            tornado.httpclient.HTTPRequest(
                ws_base + location.replace("/page", "/ws"), headers={"Origin": "null"}
            )
        )
        assert await asyncio.wait_for(ws.read_message(), 20) == "hi"
        ws.close()
        with pytest.raises(tornado.httpclient.HTTPClientError) as err:
            await tornado.websocket.websocket_connect(
                tornado.httpclient.HTTPRequest(
                    f"{ws_base}{jp_base_url}aiinfra/dashboard/one/ws", headers={"Origin": "null"}
                )
            )
        assert err.value.code == 403

    run(go())


def _state(jp_serverapp) -> Any:
    return jp_serverapp.web_app.settings["aiinfra_state"]


def test_the_capability_url_forwards_none_of_the_users_credentials(
    run, dashboard_fetch, http_server_client, jp_serverapp, upstream
):
    """A real iframe sends the Jupyter cookies (and XSRF, Referer) with the capability URL too."""
    _register("leaky", upstream)
    token = jp_serverapp.identity_provider.token

    async def go():
        redirect, _ = await dashboard_fetch("aiinfra", "dashboard", "leaky", "page")
        _Seen.requests.clear()
        response = await http_server_client.fetch(
            redirect.headers["Location"],
            raise_error=False,
            follow_redirects=False,
            headers={
                "Authorization": f"token {token}", "Cookie": SECRET_COOKIE,
                "X-XSRFToken": "secret-xsrf", "Referer": f"http://x/lab?token={token}",
            },
        )  # fmt: skip
        assert response.code == 200, response.code
        (seen,) = _Seen.requests
        sent = {k.lower(): v for k, v in seen["headers"].items()}
        for header in ("cookie", "authorization", "x-xsrftoken", "referer"):
            assert header not in sent, (header, sent[header])
        assert token not in repr(seen) and "secret" not in repr(seen)

    run(go())


def test_a_correctly_signed_capability_that_expired_is_refused(
    run, http_server_client, jp_base_url, jp_serverapp, upstream
):
    _register("old", upstream)
    state = _state(jp_serverapp)
    now = time.time()
    fresh = state.dashboard_capability("old", now=now)
    # Signed by the server's own key, issued long enough ago that it has expired.
    expired = state.dashboard_capability("old", now=now - CAPABILITY_TTL_S - 60)
    assert expired.split(".")[1] == state._sign("old", int(expired.split(".")[0], 16))

    async def go():
        base = f"{jp_base_url}aiinfra/dashboard/old/~"
        ok = await http_server_client.fetch(f"{base}{fresh}/page", raise_error=False)
        assert ok.code == 200  # the same route and signing with a live expiry works
        response = await http_server_client.fetch(f"{base}{expired}/page", raise_error=False)
        assert response.code == 403, response.code
        assert [r["path"] for r in _Seen.requests] == ["page"]

    run(go())


def test_a_huge_expiry_is_a_403_and_capabilities_stay_out_of_the_log(
    run, dashboard_fetch, http_server_client, jp_base_url, jp_serverapp, upstream
):
    _register("logged", upstream)
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    collect = Collect(level=logging.DEBUG)
    loggers = [
        logging.getLogger(n)
        for n in ("", "tornado.access", "tornado.general", "tornado.application")
    ] + [jp_serverapp.log]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(collect)
        logger.setLevel(logging.DEBUG)

    async def go():
        huge = f"{jp_base_url}aiinfra/dashboard/logged/~{'1' * 4000}.ab/status"
        response = await http_server_client.fetch(huge, raise_error=False)
        assert response.code == 403, response.code  # not a 500 from int -> str of 4000 digits
        redirect, _ = await dashboard_fetch("aiinfra", "dashboard", "logged", "page")
        location = redirect.headers["Location"]
        capability = location.split("/~")[1].split("/")[0]
        # A 4xx through a live capability: its page asked for a path the upstream lacks.
        # A wrong last digit: any but the real one (a fixed "0" was the real one in 1 of 16).
        wrong = capability[:-1] + ("1" if capability.endswith("0") else "0")
        other = await http_server_client.fetch(
            location.replace("/~" + capability, "/~" + wrong),
            raise_error=False,
            headers={"Referer": f"http://127.0.0.1{location}"},
        )
        assert other.code == 403
        return capability

    try:
        capability = run(go())
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(collect)
            logger.setLevel(level)
    text = "\n".join(records)
    assert "/~[secret]" in text, text[-2000:]
    assert capability not in text and capability[:-1] not in text and "1" * 100 not in text
