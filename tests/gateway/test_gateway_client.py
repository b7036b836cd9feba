"""The dask-gateway client pieces of the gateway backend, against the real session gateway."""

from __future__ import annotations

import pytest
from gateway_server import MAX_WORKERS
from waiting import wait_for

from aiinfra_magics.clusters import cost
from aiinfra_magics.clusters import gateway_client as gwb
from aiinfra_magics.errors import AiinfraError


def test_options_are_listed_with_defaults_and_allowed_values(gateway):
    with gateway_opened(gateway) as gw:
        rows = {r["name"]: r for r in gateway_table(gw)}
    assert rows["worker_cores"]["default"] == 1 and rows["worker_cores"]["allowed"] == "1..2"
    assert rows["environment"]["allowed"] == "basic | gpu-sim"
    assert rows["idle_timeout"]["type"] == "float"


def gateway_opened(server):
    return gwb.opened(server.address, server.proxy_address, "simple")


def gateway_table(gw):
    return gwb.options_table(gw.cluster_options())


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("cores=2", "option: this gateway has no option 'cores'; offered: worker_cores, "),
        ("worker_cores=9", "option: worker_cores='9' refused"),
        ("worker_cores=two", "option: worker_cores='two' refused"),
        ("environment=huge", "allowed: basic | gpu-sim"),
        ("novalue", "option: got 'novalue'; allowed: KEY=VALUE"),
    ],
)
def test_bad_options_name_the_key_and_what_is_allowed(gateway, pair, message):
    with gateway_opened(gateway) as gw:
        options = gw.cluster_options()
    with pytest.raises(AiinfraError) as caught:
        gwb.apply_options(options, [pair])
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_auth_needs_what_it_needs(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    with pytest.raises(AiinfraError, match="JUPYTERHUB_API_TOKEN"):
        gwb.make_auth("jupyterhub")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "abc")
    assert gwb.make_auth("jupyterhub").api_token == "abc"
    with pytest.raises(AiinfraError, match="gateway-auth: got 'ldap'; allowed: basic"):
        gwb.make_auth("ldap")


def test_a_plain_client_cluster_is_read_and_capped(gateway):
    with gateway_opened(gateway) as gw:
        plain = gw.new_cluster(shutdown_on_close=True)
        handle = gwb.GatewayHandle(plain)
        try:
            assert gwb.cluster_id(plain.scheduler_address) == plain.name
            handle.scale(MAX_WORKERS + 2)
            assert handle.notes and gwb.cap_of(handle.notes[-1]) == MAX_WORKERS
            assert "capped by the gateway" in handle.notes[-1]
            report = gw.get_cluster(plain.name)
            wait_for(
                lambda: (
                    len((gwb.scheduler_reports(report)[0] or {}).get("workers", {})) == MAX_WORKERS
                ),
                what="capped worker count",
            )
            # Started without aiinfra: the first look installs the cost plugin, the next reads it.
            figures = wait_for(lambda: gwb.scheduler_reports(report)[1], what="cost figures")
            assert figures["now"]["workers"] == MAX_WORKERS
            assert set(cost.FIGURES) <= set(figures)
        finally:
            handle.close()
        assert gw.list_clusters() == []
