"""Every REST route of the server extension against a real jupyter server (pytest-jupyter)."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket
from nbfiles import notebook_text

ROUTES = [
    ("GET", "aiinfra/api/devices"),
    ("GET", "aiinfra/api/metrics/gpu"),
    ("GET", "aiinfra/api/clusters"),
    ("POST", "aiinfra/api/clusters"),
    ("GET", "aiinfra/api/clusters/x"),
    ("PATCH", "aiinfra/api/clusters/x"),
    ("DELETE", "aiinfra/api/clusters/x"),
    ("GET", "aiinfra/api/pipelines/runs"),
    ("POST", "aiinfra/api/pipelines/runs"),
    ("GET", "aiinfra/api/pipelines/runs/x"),
    ("GET", "aiinfra/dashboard/x/status"),
]


# Requests that do nothing when they get through: a bad body (400) or an unknown name (404).
PROBE = {
    "POST": b'{"name": "bad name!"}',
    "PATCH": b'{"workers": 0}',
}
XSRF = "0123456789abcdef0123456789abcdef"  # tornado accepts a bare token in cookie and header


async def _probe(jp_fetch, method, path, *, login: bool):
    """``method path`` with a valid XSRF cookie and header, with or without the token."""
    headers = {"Cookie": f"_xsrf={XSRF}", "X-XSRFToken": XSRF}
    if not login:
        headers["Authorization"] = ""
    response = await jp_fetch(
        path, method=method, body=PROBE.get(method), headers=headers, raise_error=False
    )
    return response.code


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_verb_needs_authentication(run, jp_fetch, method, path):
    """The XSRF check passes, so the refusal comes from authentication alone."""

    async def go():
        assert await _probe(jp_fetch, method, path, login=False) in (401, 403)
        # The same request logged in gets past authentication (and XSRF).
        assert await _probe(jp_fetch, method, path, login=True) not in (401, 403)

    run(go())


def test_websocket_proxy_needs_authentication(run, jp_ws_fetch):
    async def go():
        with pytest.raises(tornado.httpclient.HTTPClientError) as err:
            await jp_ws_fetch(
                "aiinfra", "dashboard", "x", "status", "ws", headers={"Authorization": ""}
            )
        assert err.value.code == 403

    run(go())


def test_devices_lists_this_machine(run, api):
    async def go():
        code, body = await api("GET", "devices")
        assert code == 200
        assert body["available"] is True
        assert isinstance(body["gpus"], list)
        assert body["cpu"]["logical_cores"] >= 1
        if not body["gpus"]:
            assert body["gpu_note"]  # the reason, on a CPU-only machine

    run(go())


def test_gpu_metrics_answer_without_blocking(run, api, api_until):
    async def go():
        code, body = await api("GET", "metrics", "gpu")
        assert code == 200 and isinstance(body["gpus"], list)
        # the sampler thread fills in the first sample
        body = await api_until(("metrics", "gpu"), lambda b: b["timestamp"] is not None, 100, 0.05)
        assert body["timestamp"] is not None
        if not body["gpus"]:
            assert "GPU" in body["reason"]
        else:
            assert {"index", "utilization", "memory_used", "memory_total"} <= set(body["gpus"][0])

    run(go())


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b'"text"', "body"),
        (json.dumps({"workers": 0}).encode(), "workers"),
        (json.dumps({"workers": "many"}).encode(), "workers"),
        (json.dumps({"backend": "nope"}).encode(), "backend"),
        (json.dumps({"name": "Bad Name!"}).encode(), "name"),
        (json.dumps({"colour": "red"}).encode(), "colour"),
        (json.dumps({"adapt": "5:1"}).encode(), "adapt"),
        (json.dumps({"backend": "address"}).encode(), "address"),
        (json.dumps({"backend": "local", "gpus": "0"}).encode(), "gpus"),
    ],
)
def test_bad_cluster_bodies_get_400_naming_the_field(run, api, raw, field):
    async def go():
        code, body = await api("POST", "clusters", raw=raw)
        assert code == 400
        assert body["field"] == field
        assert body["message"].startswith(field)

    run(go())


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{}", "body"),
        (json.dumps({"workers": -1}).encode(), "workers"),
        (json.dumps({"workers": True}).encode(), "workers"),
        (json.dumps({"workers": "2"}).encode(), "workers"),  # JSON numbers are numbers
        (json.dumps({"workers": 100_001}).encode(), "workers"),
        (json.dumps({"threads": 2}).encode(), "threads"),
        (json.dumps({"adapt": "x"}).encode(), "adapt"),
        (json.dumps({"workers": 1, "adapt": "1:2"}).encode(), "adapt"),
    ],
)
def test_bad_patch_bodies_get_400_before_the_lookup(run, api, raw, field):
    async def go():
        code, body = await api("PATCH", "clusters", "nope", raw=raw)
        assert code == 400
        assert body["field"] == field and body["message"].startswith(f"{field}: ")

    run(go())


@pytest.mark.parametrize(
    ("method", "parts", "body"),
    [
        ("GET", ("clusters", "nope"), None),
        ("PATCH", ("clusters", "nope"), {"workers": 1}),
        ("PATCH", ("clusters", "nope"), {"workers": 0}),  # scaling to zero is allowed
        ("DELETE", ("clusters", "nope"), None),
        ("GET", ("pipelines", "runs", "nope"), None),
    ],
)
def test_unknown_names_get_404(run, api, method, parts, body):
    async def go():
        code, reply = await api(method, *parts, body=body)
        assert code == 404
        assert "nope" in reply["message"]

    run(go())


def test_unknown_dashboard_gets_404(run, jp_fetch):
    async def go():
        response = await jp_fetch("aiinfra", "dashboard", "nope", "status", raise_error=False)
        assert response.code == 404

    run(go())


@pytest.mark.parametrize("jp_base_url", ["/", "/hub/user/j%40x/"])
def test_routes_live_under_any_base_url(run, api, jp_fetch, jp_base_url):
    async def go():
        code, body = await api("GET", "clusters")
        assert (code, body) == (200, {"clusters": []})
        code, body = await api("POST", "clusters", body={"workers": 0})
        assert code == 400 and body["field"] == "workers"
        code, _ = await api("GET", "clusters", "nope")
        assert code == 404
        # Outside the base_url the routes do not exist.
        if jp_base_url != "/":
            response = await jp_fetch(
                "..", "..", "..", "aiinfra", "api", "clusters", raise_error=False
            )
            assert response.code == 404

    run(go())


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "pipeline", 400),
        ({"pipeline": 3}, "pipeline", 400),
        ({"pipeline": "../../etc/passwd"}, "pipeline", 400),
        ({"pipeline": "missing/pipeline.yaml"}, "pipeline", 404),
        ({"pipeline": "p.yaml", "params": [1]}, "params", 400),
        ({"pipeline": "p.yaml", "force": "yes"}, "force", 400),
        ({"pipeline": "p.yaml", "colour": 1}, "colour", 400),
    ],
)
def test_bad_pipeline_run_bodies(run, api, body, field, code):
    async def go():
        got, reply = await api("POST", "pipelines", "runs", body=body)
        assert got == code
        assert reply["field"] == field

    run(go())


def test_pipeline_runs_list_reads_run_records(run, api, jp_root_dir):
    async def go():
        run = jp_root_dir / "demo" / "runs" / "20260101-000000-abcd"
        run.mkdir(parents=True)
        record = {
            "run_id": run.name,
            "status": "ok",
            "steps": {
                "prepare": {"status": "ok", "notebook": str(run / "prepare.ipynb")},
                "outside": {"status": "ok", "notebook": "/elsewhere/x.ipynb"},
            },
        }
        (run / "run.json").write_text(json.dumps(record))
        code, body = await api("GET", "pipelines", "runs")
        assert code == 200
        assert [r["run_id"] for r in body["runs"]] == [run.name]
        assert body["runs"][0]["folder"] == "demo/runs/20260101-000000-abcd"
        steps = body["runs"][0]["steps"]
        assert steps["prepare"]["notebook_path"] == "demo/runs/20260101-000000-abcd/prepare.ipynb"
        assert steps["outside"]["notebook_path"] is None
        code, one = await api("GET", "pipelines", "runs", run.name)
        assert code == 200 and one["status"] == "ok"

    run(go())


class _Recorder(tornado.web.RequestHandler):
    hits: list[str] = []

    def get(self, path: str) -> None:
        self.hits.append(path)
        self.write("reached")


def test_cluster_lifecycle_and_dashboard_proxy(
    run,
    api,
    api_until,
    jp_fetch,
    jp_ws_fetch,
    jp_base_url,
    jp_http_port,
    dashboard_fetch,
    http_server_client,
):
    async def go():
        # A bystander HTTP server: nothing sent through the proxy may reach it.
        bystander = tornado.web.Application([(r"/(.*)", _Recorder)]).listen(0, "127.0.0.1")
        port = next(iter(bystander._sockets.values())).getsockname()[1]

        code, info = await api(
            "POST",
            "clusters",
            body={"name": "web1", "backend": "local", "workers": 1, "threads": 1},
        )
        assert code == 201, info
        try:
            assert info["name"] == "web1" and info["workers"] == 1
            assert info["owner"]["kind"] == "server"

            code, listed = await api("GET", "clusters")
            assert [c["name"] for c in listed["clusters"]] == ["web1"]
            assert listed["clusters"][0]["workers"] == 1

            code, scaled = await api("PATCH", "clusters", "web1", body={"workers": 2})
            assert code == 200
            status = await api_until(("clusters", "web1"), lambda s: s["workers"] == 2, 100, 0.1)
            assert status["workers"] == 2

            # HTTP through the proxy: the page (at its capability URL), its relative
            # assets, redirects kept inside.
            redirect, page = await dashboard_fetch("aiinfra", "dashboard", "web1", "status")
            view = redirect.headers["Location"].rsplit("/", 1)[0]  # .../web1/~<capability>
            assert view.startswith(jp_base_url + "aiinfra/dashboard/web1/~")
            html = page.body.decode()
            assert "bokeh" in html and 'href="statics/css/base.css"' in html
            css = await http_server_client.fetch(f"{view}/statics/css/base.css")
            assert css.code == 200 and css.body
            root = await http_server_client.fetch(
                f"{view}/", follow_redirects=False, raise_error=False
            )
            if root.code in (301, 302, 303, 307, 308):
                assert root.headers["Location"].startswith(view)

            # WebSocket through the proxy: Bokeh's session socket answers with its ACK,
            # on the authenticated path and on the capability path from a sandboxed page.
            token = re.search(r'"token":"([^"]+)"', html).group(1)
            ws = await jp_ws_fetch(
                "aiinfra", "dashboard", "web1", "status", "ws", subprotocols=["bokeh", token]
            )
            first = await asyncio.wait_for(ws.read_message(), 20)
            assert first is not None and "ACK" in first
            ws.close()
            ws = await tornado.websocket.websocket_connect(
                tornado.httpclient.HTTPRequest(
                    f"ws://127.0.0.1:{jp_http_port}{view}/status/ws", headers={"Origin": "null"}
                ),
                subprotocols=["bokeh", token],
            )
            first = await asyncio.wait_for(ws.read_message(), 20)
            assert first is not None and "ACK" in first
            ws.close()

            # Only the registered dashboard is reachable; the path cannot pick another host.
            for tricky in (
                ("aiinfra", "dashboard", f"127.0.0.1:{port}", "x"),
                ("aiinfra", "dashboard", "web1", f"http://127.0.0.1:{port}/x"),
                ("aiinfra", "dashboard", "web1", f"/127.0.0.1:{port}/x"),
                ("aiinfra", "dashboard", "web1", f"@127.0.0.1:{port}/x"),
            ):
                _, response = await dashboard_fetch(*tricky)
                assert response.code < 500 or response.code == 502
            assert _Recorder.hits == []
        finally:
            code, stopped = await api("DELETE", "clusters", "web1")
            bystander.stop()
        assert code == 200 and stopped["status"] == "stopped"
        code, _ = await api("GET", "clusters", "web1")
        assert code == 404
        response = await jp_fetch("aiinfra", "dashboard", "web1", "status", raise_error=False)
        assert response.code == 404

    run(go())


def test_stop_extension_closes_the_clusters_it_started(run, api, jp_serverapp):
    async def go():
        code, info = await api(
            "POST", "clusters", body={"name": "owned", "backend": "local", "workers": 1}
        )
        assert code == 201, info
        app = jp_serverapp.extension_manager.extension_apps["aiinfra_magics"]
        (extension,) = app
        await extension.stop_extension()
        from aiinfra_magics.clusters.manager import ClusterManager

        assert [c.name for c in ClusterManager().list_clusters()] == []

    run(go())


def test_pipeline_run_started_over_rest(run, api, api_until, jp_root_dir):
    folder = jp_root_dir / "pipe"
    folder.mkdir()
    (folder / "make.ipynb").write_text(
        notebook_text("n = 1", "open(product[0], 'w').write(str(n * 2))")
    )
    (folder / "pipeline.yaml").write_text(
        "name: tiny\nsteps:\n  make:\n    notebook: make.ipynb\n"
        "    params: {n: 21}\n    products: [out.txt]\n"
    )

    async def go():
        code, launch = await api(
            "POST", "pipelines", "runs", body={"pipeline": "pipe/pipeline.yaml"}
        )
        assert code == 202, launch
        state = await api_until(
            ("pipelines", "runs", launch["launch"]), lambda s: s["status"] != "running", 600, 0.25
        )
        assert state["status"] == "finished", open(state["log"]).read()
        code, listed = await api("GET", "pipelines", "runs")
        (record,) = listed["runs"]
        assert record["status"] == "ok"
        assert record["steps"]["make"]["notebook_path"].startswith("pipe/runs/")
        assert (folder / "out.txt").read_text() == "42"

    run(go())


@pytest.mark.parametrize("name", ["ok\n", "a/b", "..", "../x", "a\u0000b", "a b"])
def test_post_cluster_name_must_be_one_safe_file_name(run, api, aiinfra_home, name):
    async def go():
        code, body = await api("POST", "clusters", body={"name": name, "backend": "local"})
        assert code == 400 and body["field"] == "name"
        assert not list((aiinfra_home / "clusters").glob("*.json"))

    run(go())
