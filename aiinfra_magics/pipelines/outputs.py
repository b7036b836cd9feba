"""Where executed notebooks go: the run folder, another folder, or any URL.

papermill writes through its own I/O registry (``s3://``, ``gs://``, ``abs://``,
``http(s)://``, ...). A scheme it has no handler for but fsspec knows (``memory://``,
``file://``, ``abfs://``, ``sftp://``, ...) gets a small fsspec handler registered in
that same registry, so papermill's code path stays the one that writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import field_error


class FsspecHandler:
    """papermill I/O handler (read, write, listdir, pretty_path) over fsspec."""

    def read(self, path: str) -> str:
        import fsspec

        with fsspec.open(path, "r", encoding="utf-8") as fh:
            return fh.read()

    def write(self, buf: str, path: str) -> None:
        import fsspec

        with fsspec.open(path, "w", encoding="utf-8", auto_mkdir=True) as fh:
            fh.write(buf)

    def listdir(self, path: str) -> list[Any]:
        import fsspec

        fs, inner = fsspec.core.url_to_fs(path)
        return fs.ls(inner, detail=False)

    def pretty_path(self, path: str) -> str:
        return path


def is_url(target: str) -> bool:
    return "://" in target


def ensure_handler(url: str) -> None:
    """Make papermill able to write ``url`` (idempotent; per process)."""
    if not is_url(url):
        return
    from papermill.iorw import papermill_io

    for scheme, _ in papermill_io._handlers:
        if scheme != "local" and url.startswith(scheme):
            return
    protocol = url.split("://", 1)[0]
    import fsspec

    if protocol not in fsspec.available_protocols():
        raise field_error("output", url, "a folder or a URL papermill or fsspec can write")
    papermill_io.register(protocol + "://", FsspecHandler())


def notebook_target(base: str | None, folder: Path, run_dir: Path, run_id: str, file: str) -> str:
    """The output path of one executed notebook: ``{base}/{run_id}/{file}``, or the run folder."""
    if not base:
        return str(run_dir / file)
    if is_url(base):
        return base.rstrip("/") + f"/{run_id}/{file}"
    return str((folder / base).resolve() / run_id / file)
