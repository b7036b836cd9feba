"""Each front door imports only what it runs (issue 24).

Every command runs in a fresh interpreter under ``-X importtime``, which names each
module as it is imported; the test asserts which heavy packages were loaded. It checks
behaviour, not speed, so it cannot flake, and it fails the day someone adds an eager
import to a door. benchmarks/frontdoor.py measures what this saves.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from live_server import LiveServer

#: Packages that each cost from 0.3 s to several seconds to import on the 2-core VM.
HEAVY = {
    "papermill", "nbformat", "jsonschema", "rfc3987_syntax", "distributed", "dask", "jax",
    "numba", "pyarrow", "pandas", "bokeh",
}  # fmt: skip
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$")


def loaded_packages(stderr: str) -> set[str]:
    """Top-level packages of every module ``-X importtime`` reported."""
    return {m.group(1).split(".")[0] for m in map(IMPORT_LINE.match, stderr.splitlines()) if m}


def run_imports(*args: str, env_home: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    import os

    env = {**os.environ, "AIINFRA_HOME": str(env_home)}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return proc, loaded_packages(proc.stderr)


def test_the_import_probe_sees_heavy_imports(tmp_path):
    # The probe itself must be able to fail: an eager import shows up.
    proc, loaded = run_imports("-c", "import papermill", env_home=tmp_path)
    assert proc.returncode == 0
    assert {"papermill", "nbformat", "jsonschema"} <= loaded


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["cluster", "list"],
        ["cluster", "list", "--json"],
        ["cluster", "--help"],
        ["pipeline", "run", "--help"],
        ["pipeline", "--help"],
        ["devices", "--help"],
        ["gateway", "list"],
    ],
    ids=" ".join,
)
def test_cli_front_doors_import_nothing_heavy(tmp_path, argv):
    proc, loaded = run_imports("-m", "aiinfra_magics", *argv, env_home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not loaded & HEAVY, f"aiinfra {' '.join(argv)} imported {sorted(loaded & HEAVY)}"


def test_cli_cluster_list_on_an_empty_registry_says_so(tmp_path):
    proc, _ = run_imports("-m", "aiinfra_magics", "cluster", "list", env_home=tmp_path / "h")
    assert "no clusters registered" in proc.stdout


def test_cluster_list_with_a_live_cluster_imports_nothing_heavy(aiinfra_home):
    # Its owner (this process) publishes the cluster's state into the record: a listing
    # reads it there instead of importing distributed to ask the scheduler (issue 24 aim 5).
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec

    manager = ClusterManager()
    spec = {"name": "live", "backend": "local", "workers": 1, "threads": 1}
    manager.start(ClusterSpec.from_options(spec))
    try:
        proc, loaded = run_imports(
            "-m", "aiinfra_magics", "cluster", "list", "--json", env_home=aiinfra_home
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        (shown,) = json.loads(proc.stdout)
        assert (shown["name"], shown["status"], shown["workers"]) == ("live", "running", 1)
        assert not loaded & HEAVY, f"cluster list imported {sorted(loaded & HEAVY)}"

        proc, loaded = run_imports("-m", "aiinfra_magics", "cluster", "list", env_home=aiinfra_home)
        assert proc.returncode == 0 and "running" in proc.stdout.splitlines()[1]
        assert not loaded & HEAVY, f"cluster list imported {sorted(loaded & HEAVY)}"

        proc, loaded = run_imports("-c", MAGIC, env_home=aiinfra_home)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "live" in proc.stdout and "running" in proc.stdout
        assert not loaded & HEAVY, f"the magic imported {sorted(loaded & HEAVY)}"
    finally:
        manager.stop("live")


MAGIC = """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "aiinfra_magics")
print(shell.run_line_magic("aiinfra", "cluster list"))
shell.run_line_magic("aiinfra", "")
"""


def test_magic_load_and_first_cluster_list_import_nothing_heavy(tmp_path):
    proc, loaded = run_imports("-c", MAGIC, env_home=tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no clusters registered" in proc.stdout
    assert "usage: %aiinfra" in proc.stdout
    assert not loaded & HEAVY, f"the magic imported {sorted(loaded & HEAVY)}"


def test_cli_pipeline_run_help_lists_papermills_words(tmp_path):
    proc, loaded = run_imports(
        "-m", "aiinfra_magics", "pipeline", "run", "--help", env_home=tmp_path
    )
    for word in ("-p", "--parameters_raw", "--parameters_yaml", "--parameters_file", "--cluster"):
        assert word in proc.stdout
    assert "papermill" not in loaded


def test_server_extension_loads_without_heavy_imports(tmp_path):
    server = LiveServer(tmp_path, python_flags=("-X", "importtime"))
    try:
        # The sidebar's first call; `backends` (the New-cluster dialog) reads dask's config.
        status, body = server.request("GET", "aiinfra/api/clusters")
        assert status == 200, body
    finally:
        server.stop()
    log = (tmp_path / "server.log").read_text()
    loaded = loaded_packages(log)
    assert "aiinfra_magics" in loaded  # the extension really was loaded
    # jupyter_server itself imports nbformat and jsonschema; the extension adds none of these.
    own = HEAVY - {"nbformat", "jsonschema", "rfc3987_syntax"}
    assert not loaded & own, f"the server extension imported {sorted(loaded & own)}"
