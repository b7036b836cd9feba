"""Cache keys: a node is skipped when nothing that could change its products changed.

The key covers the notebook's normalised code cells, the node's params, the
content hashes of its upstream products and declared inputs, and its kernel.
A hit also needs every product to still exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .dag import Node

CHUNK = 1 << 20


def code_hash(notebook: Path) -> str:
    """Hash of the code cells only: outputs, metadata, markdown and trailing spaces do not count."""
    h = hashlib.sha256()
    for cell in read_cells(notebook):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") != "code" or "injected-parameters" in tags:
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        lines = [line.rstrip() for line in source.replace("\r\n", "\n").split("\n")]
        h.update("\n".join(lines).strip("\n").encode())
        h.update(b"\0cell\0")
    return h.hexdigest()


def read_cells(notebook: Path) -> list[dict[str, Any]]:
    """The cells of an .ipynb, read as plain JSON (importing nbformat costs seconds here)."""
    return json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])


def file_hash(path: Path) -> str | None:
    """Content hash of a file, or of a folder's files and names; None if missing."""
    if path.is_file():
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()
    if path.is_dir():
        h = hashlib.sha256()
        for sub in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(sub.relative_to(path)).encode() + b"\0" + (file_hash(sub) or "").encode())
        return h.hexdigest()
    return None


def node_hashes(
    folder: Path, node: Node, upstream_products: dict[str, dict[str, str | None]]
) -> dict[str, Any]:
    """Everything the key is made of, kept in run.json so a miss can be explained.

    ``upstream_products`` maps each upstream node to {product path: content hash}.
    """
    inputs = {p: file_hash(folder / p) for p in node.step.inputs}
    upstream = {up: upstream_products.get(up, {}) for up in node.upstream}
    parts = {
        "code": code_hash(folder / node.step.notebook),
        "params": hashlib.sha256(
            json.dumps(node.params, sort_keys=True, default=str).encode()
        ).hexdigest(),
        "upstream": upstream,
        "inputs": inputs,
        "kernel": node.step.kernel,
    }
    parts["key"] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return parts


def _record_path(folder: Path, name: str) -> Path:
    return folder / "runs" / ".cache" / (quote(name, safe="") + ".json")


def lookup(folder: Path, node: Node, key: str) -> dict[str, Any] | None:
    """The cached record when ``key`` matches and every product still exists."""
    path = _record_path(folder, node.name)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != key:
        return None
    if not all((folder / p).exists() for p in node.products):
        return None
    return record


def store(
    folder: Path, node: Node, key: str, run_id: str, product_hashes: dict[str, str | None]
) -> None:
    record = {"key": key, "run_id": run_id, "products": product_hashes}
    write_json_atomic(_record_path(folder, node.name), record)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write via a temporary file and rename, so readers never see half a file."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
