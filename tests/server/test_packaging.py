"""What `pip install` relies on: the server config that enables the extension, and the entry points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aiinfra_magics
from aiinfra_magics.server import AiinfraServerApp

REPO = Path(__file__).resolve().parents[2]


def test_install_config_enables_the_server_extension():
    config = json.loads((REPO / "jupyter-config/jupyter_server_config.d/aiinfra.json").read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"aiinfra_magics": True}}}
    (point,) = aiinfra_magics._jupyter_server_extension_points()
    assert point == {"module": "aiinfra_magics", "app": AiinfraServerApp}


def test_labextension_paths_point_at_the_built_extension():
    (path,) = aiinfra_magics._jupyter_labextension_paths()
    built = Path(aiinfra_magics.__file__).parent / path["src"] / "package.json"
    if not built.exists():
        pytest.skip("labextension not built here (pip install -e . builds it)")
    meta = json.loads(built.read_text())
    assert meta["name"] == path["dest"] == "aiinfra"
    assert (built.parent / meta["jupyterlab"]["_build"]["load"]).exists()
    assert (built.parent / "schemas" / "aiinfra" / "plugin.json").exists()
