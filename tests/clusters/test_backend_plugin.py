"""An installed backend plugin is found through the entry-point group alone, at every door."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from backend_plugin import install_plugin


def aiinfra(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aiinfra_magics", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_plugin_backend_shows_in_help_validates_and_starts(tmp_path):
    env = install_plugin(tmp_path / "plugin")

    helped = aiinfra(env, "cluster", "start", "-h")
    assert helped.returncode == 0
    assert "throwaway backend:" in helped.stdout and "--greeting" in helped.stdout
    # Without the plugin installed, none of it is there: the help really comes from the entry point.
    plain = aiinfra({}, "cluster", "start", "-h")
    assert "throwaway" not in plain.stdout and "--greeting" not in plain.stdout

    # The plugin's own option is validated by its declaration: it is unknown to other backends.
    wrong = aiinfra(env, "cluster", "start", "--backend", "local", "--greeting", "hi")
    assert wrong.returncode == 2
    assert "greeting: only allowed with --backend throwaway" in wrong.stderr

    started = aiinfra(
        env, "cluster", "start", "plug", "--backend", "throwaway", "--workers", "1",
        "--threads", "1", "--greeting", "bonjour", "--json",
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        assert "throwaway says bonjour" in started.stderr
        info = json.loads(started.stdout)
        assert info["backend"] == "throwaway" and info["workers"] == 1
        status = json.loads(aiinfra(env, "cluster", "status", "plug", "--json").stdout)
        assert status["status"] == "running" and status["workers"] == 1
    finally:
        stopped = aiinfra(env, "cluster", "stop", "plug")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(aiinfra(env, "cluster", "list", "--json").stdout) == []
