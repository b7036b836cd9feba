"""What a process aiinfra owns (the CLI, the pipeline runner) does before anything else.

jsonschema (imported by nbformat, so by papermill) imports ``rfc3987_syntax`` at its
own import when that package is installed, and ``rfc3987_syntax`` compiles about 38
Lark grammars there: 0.8-1.4 s on a quiet core of the 2-core VM, 4-5 s under load
(jsonschema #1428). It serves only the ``iri``/``iri-reference`` format checks, which
nbformat's notebook schemas never use. The ways around it, measured for issue 24:

- install ``rfc3987`` instead (jsonschema prefers it): GPL-3.0, refused for a BSD
  package;
- hide the module (``sys.modules[...] = None``): as fast, but jsonschema then drops
  the ``iri`` checks for the whole process, a silent change of behaviour;
- pin an older jsonschema: every 4.2x imports it the same way;
- defer it (chosen): a stand-in module whose functions import the real one on first
  call. jsonschema registers the same checks, an IRI check validates exactly as
  before (tests/test_startup.py), and a process that never checks an IRI never
  compiles a grammar.

Only our own processes call this: never a user's kernel or the Jupyter server.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

SLOW_AT_IMPORT = "rfc3987_syntax"


def _stand_in(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__["__aiinfra_deferred__"] = True

    def real() -> types.ModuleType:
        if sys.modules.get(name) is module:
            del sys.modules[name]
        loaded = importlib.import_module(name)
        # Whoever already holds the stand-in (jsonschema's `from ... import`) gets the
        # real objects on their next attribute read too.
        module.__dict__.update({k: v for k, v in loaded.__dict__.items() if k != "__name__"})
        return loaded

    def is_valid_syntax(*args: Any, **kwargs: Any) -> Any:
        return real().is_valid_syntax(*args, **kwargs)

    def __getattr__(attr: str) -> Any:  # noqa: N807 - PEP 562 module hook
        if attr.startswith("__"):  # the import system asks for __path__ and the like
            raise AttributeError(attr)
        return getattr(real(), attr)

    module.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined]
    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return module


def defer_slow_imports() -> None:
    """Put the stand-in in place unless jsonschema (or the module) is already loaded."""
    if SLOW_AT_IMPORT in sys.modules or "jsonschema" in sys.modules:
        return
    if importlib.util.find_spec(SLOW_AT_IMPORT) is None:
        return
    sys.modules[SLOW_AT_IMPORT] = _stand_in(SLOW_AT_IMPORT)
