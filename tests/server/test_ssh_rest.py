"""An SSH cluster through the lab's server: its options in GET backends, start over REST
(the server owns it), scale, the proxied dashboard of its remote scheduler, stop."""

from __future__ import annotations

from ssh_fixture import sshd, sshd_server  # noqa: F401 - the real sshd on loopback


def test_ssh_cluster_over_rest_with_its_proxied_dashboard(
    run,
    api,
    api_until,
    sshd,  # noqa: F811 - the fixture imported above
    dashboard_fetch,
):
    async def go():
        code, backends = await api("GET", "backends")
        (ssh,) = [b for b in backends["backends"] if b["name"] == "ssh"]
        flags = {o["flag"] for o in ssh["options"]}
        assert {"--hosts", "--hosts-from", "--known-hosts", "--gpus-per-host"} <= flags

        code, info = await api("POST", "clusters", body={"name": "rest", **sshd.options()})
        assert code == 201, info
        try:
            assert info["backend"] == "ssh" and info["workers"] == 2
            assert info["owner"]["kind"] == "server"
            assert info["scheduler_address"].startswith("tcp://127.0.0.1:")
            code, _ = await api("PATCH", "clusters", "rest", body={"workers": 3})
            assert code == 200
            status = await api_until(("clusters", "rest"), lambda s: s["workers"] == 3, 600, 0.1)
            assert status["workers"] == 3
            assert sorted(status["ssh_hosts"]) == ["127.0.0.1", "127.0.0.2"]
            # The dashboard of the scheduler on the first host, through the lab's proxy.
            redirect, page = await dashboard_fetch("aiinfra", "dashboard", "rest", "status")
            assert redirect.code == 302 and page.code == 200
            assert "bokeh" in page.body.decode()
        finally:
            code, _ = await api("DELETE", "clusters", "rest")
        assert code in (200, 204)
        code, listed = await api("GET", "clusters")
        assert "rest" not in [c["name"] for c in listed["clusters"]]

    run(go())
