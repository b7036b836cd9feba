"""Where aiinfra keeps its files, and the one way it writes them.

Everything lives under ``$AIINFRA_HOME`` (default ``<jupyter runtime dir>/aiinfra``),
in directories private to the user (0700) and files only the user can read
(0600): records hold scheduler addresses, logs hold whatever workers print.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def aiinfra_home() -> Path:
    """``$AIINFRA_HOME``, else ``<jupyter runtime dir>/aiinfra`` (created 0700)."""
    home = os.environ.get("AIINFRA_HOME")
    if not home:
        from jupyter_core.paths import jupyter_runtime_dir

        home = os.path.join(jupyter_runtime_dir(), "aiinfra")
    return private_dir(Path(home))


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it 0700; return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(PermissionError):  # not ours (a shared parent): leave it
        os.chmod(path, 0o700)
    return path


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so no reader ever sees half of it (0600)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp creates the file 0600
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))
