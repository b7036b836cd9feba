"""The notebook checks of ``make test-notebooks`` fail what nbval alone lets pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def test_failed_magic_and_missing_exception_fail_their_cells(tmp_path):
    nb = nbformat.v4.new_notebook()
    cells = [
        "%load_ext aiinfra_magics",
        "%aiinfra cluster stop nosuch",  # UsageError: shown as stderr text only
        "print('fine')",
        "%aiinfra cluster start --workers 0",  # expected to raise, and does
        "print('no exception here')",  # expected to raise, does not
        "raise ValueError('expected')",  # expected to raise, does
    ]
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    for i in (3, 4, 5):
        nb.cells[i].metadata["tags"] = ["raises-exception"]
    nbformat.write(nb, str(tmp_path / "probe.ipynb"))
    env = {**os.environ, "AIINFRA_HOME": str(tmp_path / "home")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "--nbval-lax"]
    args += ["-p", "tests.nbval_strict", "probe.ipynb"]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    lines = done.stdout.splitlines()
    outcome = {
        line.split("::Cell ")[1].split()[0]: line.split()[0]
        for line in lines
        if "probe.ipynb::Cell " in line and line.split()[0] in ("PASSED", "FAILED")
    }
    assert outcome == {
        "0": "PASSED",
        "1": "FAILED",
        "2": "PASSED",
        "3": "PASSED",
        "4": "FAILED",
        "5": "PASSED",
    }, done.stdout
    assert "the cell failed: UsageError: name: no cluster named 'nosuch'" in done.stdout
    assert "marked to raise an exception but ran without one" in done.stdout, done.stdout
