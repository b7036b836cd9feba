"""Tiny notebooks on disk for tests and benchmarks: the one builder they share.

A pipeline step is a notebook with a cell tagged ``parameters`` (papermill injects the
step's params after it) and a cell of work, on the ``python3`` kernel. nbformat is
imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path

PYTHON3 = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook_text(params: str, source: str, *, tagged: bool = True) -> str:
    """The JSON of a notebook of two code cells: ``params`` (tagged ``parameters`` unless
    ``tagged`` is false) then ``source``, on the python3 kernel."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    if tagged:
        cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = dict(PYTHON3)
    return nbformat.writes(nb)


def write_notebook(path: Path, params: str, source: str, *, tagged: bool = True) -> Path:
    """Write :func:`notebook_text` to ``path`` (its folder made if missing); return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_text(params, source, tagged=tagged))
    return path
