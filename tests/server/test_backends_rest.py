"""``GET aiinfra/api/backends``: every backend, usable here or why not, with its option schema."""

from __future__ import annotations

import json

from backend_plugin import install_plugin


def test_backends_describe_themselves(run, api):
    code, body = run(api("GET", "backends"))
    assert code == 200
    backends = {b["name"]: b for b in body["backends"]}
    assert {"local", "cuda", "address"} <= set(backends)
    assert backends["local"]["usable"] is True and backends["local"]["reason"] is None
    options = {o["name"]: o for o in backends["cuda"]["options"]}
    assert options["protocol"]["choices"] == ["tcp", "ucx"]
    assert options["rmm_pool"]["flag"] == "--rmm-pool" and options["rmm_pool"]["type"] == "size"
    assert backends["address"]["manages_workers"] is False
    if not backends["cuda"]["usable"]:  # no GPU here: the reason says so in words
        assert "GPU" in backends["cuda"]["reason"] or "dask-cuda" in backends["cuda"]["reason"]


def test_plugin_backend_is_listed_and_started_over_rest(tmp_path, monkeypatch, live_server_factory):
    for key, value in install_plugin(tmp_path / "plugin").items():
        monkeypatch.setenv(key, value)
    server = live_server_factory()
    code, raw = server.request("GET", "aiinfra/api/backends")
    assert code == 200
    backends = {b["name"]: b for b in json.loads(raw)["backends"]}
    assert backends["throwaway"]["usable"] is True
    assert [o["name"] for o in backends["throwaway"]["options"]][0] == "greeting"

    body = {"name": "plug", "backend": "throwaway", "workers": 1, "threads": 1, "greeting": "yo"}
    code, raw = server.request("POST", "aiinfra/api/clusters", json.dumps(body).encode())
    assert code == 201, raw
    started = json.loads(raw)
    assert started["backend"] == "throwaway" and "throwaway says yo" in started["notes"]
    code, raw = server.request("DELETE", "aiinfra/api/clusters/plug")
    assert code == 200, raw

    body["greeting"] = ["not", "a", "string"]
    code, raw = server.request("POST", "aiinfra/api/clusters", json.dumps(body).encode())
    assert code == 400 and json.loads(raw)["field"] == "greeting"
