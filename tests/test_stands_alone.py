"""The project stands alone (issue 25 item 19): no tracked file sends a reader to design
notes or recipes that live outside the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Built from parts, so this file does not hold the references it looks for.
OUTSIDE = tuple("shared/" + name for name in ("DESIGN.md", "FACTS.md", "recipes"))


def test_no_tracked_file_points_outside_the_repository():
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in files:
        if name.endswith((".png", ".lock")):
            continue
        try:
            text = (REPO / name).read_text(errors="ignore")
        except OSError:
            continue
        found += [f"{name}: {ref}" for ref in OUTSIDE if ref in text]
    assert not found, found
