"""The cluster magics on real local clusters (scheduler in-process, worker processes)."""

from __future__ import annotations

import json
import re
import time

import psutil
import pytest
from distributed import Client

from aiinfra_magics.clusters.info import ClusterInfo


def until(condition, what: str, timeout: float = 120.0):
    """Poll ``condition`` with a generous deadline (a loaded machine is slow, never wrong)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_usage_printed_without_arguments(ip, capsys):
    assert ip.run_line_magic("aiinfra", "") is None
    out = capsys.readouterr().out
    assert "usage: %aiinfra" in out and "cluster" in out


def test_start_scale_adapt_status_stop(ip, aiinfra_home):
    info = ip.run_line_magic(
        "aiinfra", "cluster start t1 --backend local --workers 2 --threads 1 --memory 1GB"
    )
    assert isinstance(info, ClusterInfo)
    assert (info.name, info.backend, info.status, info.workers, info.threads) == (
        "t1",
        "local",
        "running",
        2,
        2,
    )
    assert info.memory == 2 * 1024**3 or info.memory == 2 * 10**9
    client = ip.user_ns["client"]
    assert isinstance(client, Client)
    assert client.submit(lambda x: x * 2, 21).result() == 42
    # worker processes really exist as children of this process
    worker_pids = client.run(lambda: __import__("os").getpid())
    assert len(worker_pids) == 2 and all(psutil.pid_exists(p) for p in worker_pids.values())
    assert all(psutil.Process(p).ppid() == __import__("os").getpid() for p in worker_pids.values())

    record = json.loads((aiinfra_home / "clusters" / "t1.json").read_text())
    assert record["status"] == "running" and record["owner"]["kind"] == "kernel"

    assert ip.run_line_magic("aiinfra", "cluster scale t1 3").workers == 3
    assert len(client.scheduler_info()["workers"]) == 3

    adapted = ip.run_line_magic("aiinfra", "cluster adapt t1 1 2")
    assert adapted.adapt == "1:2"
    # Dask's adaptive really runs: idle, the 3 workers shrink to the maximum of 2 or fewer.
    until(lambda: 1 <= len(client.scheduler_info()["workers"]) <= 2, "adapt to shrink the cluster")
    status = ip.run_line_magic("aiinfra", "cluster status t1")
    assert status.adapt == "1:2" and status.status == "running"

    listed = ip.run_line_magic("aiinfra", "cluster list")
    assert [i.name for i in listed] == ["t1"]

    ip.run_line_magic("aiinfra", "cluster stop t1")
    assert not (aiinfra_home / "clusters" / "t1.json").exists()
    assert len(ip.run_line_magic("aiinfra", "cluster list")) == 0
    for pid in worker_pids.values():
        try:
            psutil.Process(pid).wait(timeout=20)
        except psutil.NoSuchProcess:
            pass
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_display_has_the_fields(ip):
    info = ip.run_line_magic(
        "aiinfra", "cluster start shown --backend local --workers 1 --threads 2"
    )
    html = info._repr_html_()
    for word in (
        "shown",
        "local",
        "workers",
        "threads",
        "memory",
        "GPUs",
        "dashboard",
        'href="http://',
    ):
        assert word in html
    text = str(info)
    # Aligned columns (their width follows the longest label, e.g. "efficiency").
    assert re.search(r"^workers +1$", text, re.M) and re.search(r"^threads +2$", text, re.M)
    assert "<" not in text
    formatted = ip.display_formatter.format(info)[0]
    assert "text/html" in formatted and "text/plain" in formatted
    assert formatted["text/plain"] == text


def test_auto_backend_says_why_and_client_var(ip, capsys):
    info = ip.run_line_magic("aiinfra", "cluster start --workers 1 --client-var c2")
    out, err = capsys.readouterr()
    assert "auto: no NVIDIA GPU found, starting a local CPU cluster" in out
    assert out.count("auto:") == 1 and "auto:" not in err and "NVML" not in out
    assert info.backend == "local" and info.name == "local"
    assert ip.user_ns["c2"].submit(sum, [1, 2]).result() == 3
    # a second unnamed start gets a fresh name, never an "in use" error
    second = ip.run_line_magic("aiinfra", "cluster start --workers 1 --client-var c3")
    assert second.name == "local-2"


def test_name_in_use(ip):
    ip.run_line_magic("aiinfra", "cluster start taken --backend local --workers 1")
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="name: 'taken' is already in use"):
        ip.run_line_magic("aiinfra", "cluster start taken --backend local --workers 1")


def test_start_with_adapt_and_stop_all(ip):
    info = ip.run_line_magic("aiinfra", "cluster start elastic --backend local --adapt 0:2")
    assert info.adapt == "0:2"
    elastic = ip.user_ns["client"]
    # Nothing to do: Dask's adaptive retires every worker down to the minimum of 0.
    until(lambda: len(elastic.scheduler_info()["workers"]) == 0, "adapt to reach 0 workers")
    ip.run_line_magic("aiinfra", "cluster start other --backend local --workers 1 --client-var c")
    ip.run_line_magic("aiinfra", "cluster stop --all")
    assert len(ip.run_line_magic("aiinfra", "cluster list")) == 0


def test_connect_and_dashboard(ip):
    ip.run_line_magic(
        "aiinfra", "cluster start dash --backend local --workers 1 --client-var first"
    )
    ip.run_line_magic("aiinfra", "cluster connect dash --client-var second")
    assert ip.user_ns["second"].submit(len, "abc").result() == 3
    link = ip.run_line_magic("aiinfra", "cluster dashboard dash")
    assert "http://" in link.data and "/status" in link.data


def test_scale_after_adapt_ends_adaptivity_and_says_so(ip, aiinfra_home):
    """Issue 25 items 9 and 10: through distributed's public Adaptive.stop(); the reply is
    built from the record after the change."""
    from aiinfra_magics.clusters import host

    ip.run_line_magic(
        "aiinfra", "cluster start rv2 --backend local --workers 1 --threads 1 --memory 1GB"
    )
    assert ip.run_line_magic("aiinfra", "cluster adapt rv2 1 2").adapt == "1:2"
    cluster = host.hosted("rv2").launched.cluster
    assert "Adaptive" in cluster._scaling_status()

    scaled = ip.run_line_magic("aiinfra", "cluster scale rv2 1")
    assert scaled.adapt is None and scaled.workers == 1
    assert ip.run_line_magic("aiinfra", "cluster status rv2").adapt is None
    # distributed's own widget (what a notebook shows for the cluster) still works
    cluster._ipython_display_()
    assert "Manual" in cluster._scaling_status()
    assert "rv2" in cluster._repr_html_() or "LocalCluster" in cluster._repr_html_()
