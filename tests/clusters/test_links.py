"""Issue 14 items 5b and 8: dashboard links that work from the user's browser, memory that exists."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

from aiinfra_magics.clusters import info as info_module
from aiinfra_magics.clusters.info import ClusterInfo, cluster_to_dict, proxied_dashboard
from aiinfra_magics.clusters.manager import ClusterManager
from aiinfra_magics.clusters.spec import ClusterSpec

RAW = "http://127.0.0.1:8787/status"


def _record(name: str = "demo") -> dict:
    from aiinfra_magics.clusters.registry import this_process

    return {"name": name, "backend": "local", "status": "running", "scheduler_address": "tcp://127.0.0.1:1",
            "dashboard_link": RAW, "owner": {**this_process(), "kind": "kernel"}}  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_base_url():
    info_module.jupyter_base_url.cache_clear()
    yield
    info_module.jupyter_base_url.cache_clear()


def test_under_jupyterhub_the_link_goes_through_the_proxy_and_the_raw_one_stays(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice")
    html = ClusterInfo(cluster_to_dict(_record(), None))._repr_html_()
    assert 'href="/user/alice/aiinfra/dashboard/demo/status"' in html
    assert f'(direct: <a href="{RAW}"' in html
    assert str(ClusterInfo(cluster_to_dict(_record(), None))).count(RAW) == 1  # text output: raw


def test_outside_a_jupyter_server_the_raw_link_only(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", "/nonexistent-runtime")
    assert proxied_dashboard("demo", RAW) is None
    html = ClusterInfo(cluster_to_dict(_record(), None))._repr_html_()
    assert "aiinfra/dashboard" not in html and f'href="{RAW}"' in html


def test_a_process_started_by_a_jupyter_server_finds_its_base_url(tmp_path):
    """The server that started the kernel is found by pid in the runtime dir's server list."""
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    server = {"base_url": "/lab-base/", "pid": os.getpid(), "port": 1, "url": "http://127.0.0.1:1/lab-base/",
              "hostname": "127.0.0.1", "secure": False, "token": "", "root_dir": str(tmp_path),
              "password": False, "sock": "", "version": "2"}  # fmt: skip
    (runtime / f"jpserver-{os.getpid()}.json").write_text(json.dumps(server))
    env = {k: v for k, v in os.environ.items() if k != "JUPYTERHUB_SERVICE_PREFIX"}
    code = f"from aiinfra_magics.clusters.info import proxied_dashboard as p; print(p('my demo', {RAW!r}))"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "JUPYTER_RUNTIME_DIR": str(runtime)},
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.stdout.strip() == "/lab-base/aiinfra/dashboard/my%20demo/status", out.stderr
    (runtime / f"jpserver-{os.getpid()}.json").unlink()
    # A live server that did not start this process (a sibling): not ours, so raw links.
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        (runtime / f"jpserver-{sibling.pid}.json").write_text(
            json.dumps({**server, "pid": sibling.pid})
        )
        out = subprocess.run([sys.executable, "-c", code], env={**env, "JUPYTER_RUNTIME_DIR": str(runtime)},
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.stdout.strip() == "None", out.stderr
    finally:
        sibling.kill()
        sibling.wait()


def test_dashboard_magic_links_through_the_proxy(ip, aiinfra_home, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/bob/")
    ip.run_line_magic("aiinfra", "cluster start linked --backend local --workers 1 --threads 1")
    shown = ip.run_line_magic("aiinfra", "cluster dashboard linked")
    assert 'href="/user/bob/aiinfra/dashboard/linked/status"' in shown.data
    assert '(direct: <a href="http://127.0.0.1:' in shown.data


def test_after_scaling_up_the_memory_shown_exists(aiinfra_home):
    manager = ClusterManager()
    manager.start(
        ClusterSpec.from_options({"name": "grow", "backend": "local", "workers": 2, "threads": 1})
    )
    try:
        scaled = manager.scale("grow", 3)
        assert scaled.workers == 3
        assert 0 < scaled.memory <= psutil.virtual_memory().total
        assert 0 < manager.status("grow").memory <= psutil.virtual_memory().total
    finally:
        manager.stop("grow")
