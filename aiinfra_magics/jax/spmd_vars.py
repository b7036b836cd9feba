"""Notebook variables an SPMD cell reads, sent to every process of the program.

The cell runs in fresh interpreters on the workers, so without this it would see
none of the notebook's names. Only the names the cell reads are sent (found by
``symtable``: every name that resolves to the module's globals, at top level or
inside the cell's functions), each pickled on its own with cloudpickle so that
an error can name the one variable that cannot travel. Names the SPMD process
provides itself (``jax``, ``mesh``, ...) always win: the notebook's ``mesh``
lives on other devices.
"""

from __future__ import annotations

import ast
import base64
import re
import symtable
from collections.abc import Container, Mapping
from typing import Any

from ..errors import AiinfraError

#: Bound by spmd_child in every process; never taken from the notebook.
PROVIDED = frozenset({"jax", "jnp", "process_id", "num_processes", "mesh"})
# IPython's own history names (_, __, _i3, _5, _oh, ...), never the user's data.
_IPYTHON = re.compile(r"_{1,3}|_i{1,3}|_i?\d+|_[iod]h|In|Out|get_ipython|exit|quit")


def read_names(code: str) -> tuple[set[str], set[str]]:
    """(names the cell reads from its globals, names it assigns at top level)."""
    top = symtable.symtable(code, "<spmd cell>", "exec")
    read: set[str] = set()
    assigned = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}

    def visit(table: symtable.SymbolTable, module: bool) -> None:
        for sym in table.get_symbols():
            if sym.is_referenced() and (module or sym.is_global()):
                read.add(sym.get_name())
        for child in table.get_children():
            visit(child, False)

    visit(top, True)
    # symtable counts ``x += 1`` as a store only, but it reads the notebook's x first.
    read |= {
        node.target.id
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name)
    }
    return read, assigned


def pack(code: str, namespace: Mapping[str, Any], hidden: Container[str] = ()) -> dict[str, str]:
    """The notebook variables ``code`` reads, each pickled and base64-encoded (JSON-safe).

    A variable that does not pickle is a one-line error naming it, unless the cell
    assigns that name itself (then it may well not need the notebook's value).
    """
    import cloudpickle

    read, assigned = read_names(code)
    sent: dict[str, str] = {}
    for name in sorted(read):
        if name in PROVIDED or name in hidden or _IPYTHON.fullmatch(name) or name not in namespace:
            continue
        try:
            blob = cloudpickle.dumps(namespace[name])
        except Exception as exc:  # noqa: BLE001 - anything pickle raises: name the variable
            if name in assigned:
                continue
            why = (str(exc).splitlines() or [""])[0]
            raise AiinfraError(
                f"cell: notebook variable {name!r} cannot be sent to the processes "
                f"({type(exc).__name__}: {why}); create it inside the cell instead",
                field="cell",
            ) from None
        sent[name] = base64.b64encode(blob).decode("ascii")
    return sent


def unpack(sent: Mapping[str, str]) -> dict[str, Any]:
    """In each SPMD process: the notebook's variables back (after JAX is initialised)."""
    import cloudpickle

    values = {}
    for name, text in sent.items():
        try:
            values[name] = cloudpickle.loads(base64.b64decode(text))
        except Exception as exc:  # noqa: BLE001 - e.g. a module the node lacks
            raise RuntimeError(
                f"notebook variable {name!r} cannot be loaded here: {type(exc).__name__}: {exc}"
            ) from None
    return values
