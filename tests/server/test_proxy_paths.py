"""Proxy target resolution as pure functions: which query parameters go upstream, the proxy
prefix of a dashboard, and where an upstream redirect is sent (gaps found by mutation testing,
see docs/testing.md). The full round trip is tests/server/test_proxy_security.py."""

from __future__ import annotations

import pytest
from tornado import web

from aiinfra_magics.checks import NAME_ALLOWED
from aiinfra_magics.server.proxy import DashboardProxyHandler, check_name, upstream_query


@pytest.mark.parametrize(
    ("query", "upstream"),
    [
        ("", ""),
        ("b=2&a=1", "b=2&a=1"),  # nothing to drop: passed on exactly as given
        ("a=&b", "a=&b"),
        ("token=t&a=1", "a=1"),
        ("a=&_xsrf=x&TOKEN=t", "a="),  # blank values stay; the auth names in any case go
        ("token=t", ""),
    ],
)
def test_upstream_query_drops_only_jupyter_credentials(query, upstream):
    assert upstream_query(query) == upstream


def test_check_name_is_a_404_naming_what_is_allowed():
    assert check_name("web-1") == "web-1"
    with pytest.raises(web.HTTPError) as info:
        check_name("../x")
    assert info.value.status_code == 404
    assert info.value.log_message == f"name: not a cluster name; allowed: {NAME_ALLOWED}"


class Handler:
    """The attributes the path helpers read (a request handler holds them)."""

    _prefix = DashboardProxyHandler._prefix
    _rewrite_location = DashboardProxyHandler._rewrite_location

    def __init__(self, capability: str | None) -> None:
        self.base_url = "/user/a/"
        self.capability = capability


def test_prefix_quotes_the_name_and_carries_the_capability():
    assert Handler(None)._prefix("web 1/x") == "/user/a/aiinfra/dashboard/web%201%2Fx"
    assert Handler("cap")._prefix("web") == "/user/a/aiinfra/dashboard/web/~cap"


@pytest.mark.parametrize(
    ("location", "rewritten"),
    [
        ("http://127.0.0.1:8787/status", "/user/a/aiinfra/dashboard/web/~cap/status"),
        ("/status?x=1&y=", "/user/a/aiinfra/dashboard/web/~cap/status?x=1&y="),
        ("//evil.example/x", "/user/a/aiinfra/dashboard/web/~cap/x"),
        ("https://elsewhere.example/a/b", "/user/a/aiinfra/dashboard/web/~cap/a/b"),
        ("status", "status"),  # relative: already under the proxy path
        ("../info", "../info"),
    ],
)
def test_redirects_stay_inside_the_proxy(location, rewritten):
    assert Handler("cap")._rewrite_location("web", location) == rewritten
