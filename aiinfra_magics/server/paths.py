"""Where a request may reach on disk: the server's root and what lies inside it.

A leaf of the server package: the pipeline and run handlers both check paths with
these, and neither needs to import the other for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import AiinfraError

MAX_PATH = 4096  # PATH_MAX
MAX_NAME = 255  # NAME_MAX: a longer component is ENAMETOOLONG, not a missing file


def server_root(handler: Any) -> Path:
    """The server's root directory (``root_dir``), links resolved."""
    return Path(handler.settings.get("server_root_dir") or os.getcwd()).resolve()


def inside(root: Path, relative: str) -> Path:
    allowed = "a path inside the server's root directory"
    if (
        "\0" in relative
        or len(relative) > MAX_PATH
        or any(len(part.encode()) > MAX_NAME for part in relative.split("/"))
    ):
        shown = relative if len(relative) <= 60 else relative[:60] + "..."
        raise AiinfraError(f"pipeline: got {shown!r}; allowed: {allowed}", field="pipeline")
    path = (root / relative.lstrip("/")).resolve()
    if path != root and root not in path.parents:
        raise AiinfraError(
            f"pipeline: got {relative!r}; allowed: a path inside the server's root directory",
            field="pipeline",
        )
    return path


def within(root: Path, path: Path) -> bool:
    """Is ``path``, links resolved, below ``root``? (A ``runs`` link may point anywhere.)"""
    resolved = path.resolve()
    return resolved == root or root in resolved.parents


def relative(root: Path, path: Path) -> str | None:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return None  # outside the server's root: the lab cannot open it
