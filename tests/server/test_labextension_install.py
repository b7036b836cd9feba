"""Issue 14 item 10: the labextension is installed once, with the metadata `labextension list` shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILT = REPO / "aiinfra_magics" / "labextension"
if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10, which we support, has no tomllib; tomli is the same parser
    import tomli as tomllib


def test_the_wheel_carries_the_labextension_once():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"][
        "targets"
    ]
    wheel = config["wheel"]
    # As a package artifact it would ship a second copy inside aiinfra_magics/.
    assert not any("labextension" in a for a in wheel.get("artifacts", []))
    shared = [src for src, dest in wheel["shared-data"].items() if "labextensions" in dest]
    assert shared == ["aiinfra_magics/labextension"]
    assert (
        wheel["shared-data"]["aiinfra_magics/labextension"] == "share/jupyter/labextensions/aiinfra"
    )
    assert (
        "aiinfra_magics/labextension" in config["sdist"]["artifacts"]
    )  # sdists install without Node


def test_labextension_list_shows_the_python_package(tmp_path):
    if not (BUILT / "package.json").exists():
        pytest.skip("labextension not built here (pip install -e . or jlpm build:prod builds it)")
    assert json.loads((BUILT / "install.json").read_text()) == json.loads(
        (REPO / "extension" / "install.json").read_text()
    )
    data = tmp_path / "data" / "labextensions"
    data.mkdir(parents=True)
    (data / "aiinfra").symlink_to(BUILT)  # where the wheel's shared-data puts it
    env = {
        **os.environ,
        "JUPYTER_PATH": str(tmp_path / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
    }
    out = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    line = next(
        (x for x in (out.stdout + out.stderr).splitlines() if "aiinfra" in x and "enabled" in x), ""
    )
    assert "(python, aiinfra)" in line, out.stdout + out.stderr
