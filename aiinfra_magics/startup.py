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

The same for two modules that papermill imports at its own import only for handlers a
pipeline rarely uses (``papermill.iorw``, 0.3 s together here, on the way to a run's first
step, issue 24 and 26):

- ``requests`` (its HTTP handler; urllib3, charset detection): a module that loads the
  real one on its first attribute read. Not ``importlib.util.LazyLoader``: on Python 3.11
  the ``import`` statement itself reads the lazy module's ``__spec__`` and loads it;
- ``pyarrow.fs`` (its HDFS handler; pyarrow and numpy): a stand-in like the one above,
  because papermill takes two names from it at import (``from pyarrow.fs import ...``);
  each is a callable that loads the real module on first call. A stand-in cannot fill
  in the ``fs`` attribute of a ``pyarrow`` package imported later, so only processes
  that run no user code take it (the CLI, the pipeline runner), never a worker.

Only our own processes call this: never a user's kernel or the Jupyter server.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

SLOW_AT_IMPORT = "rfc3987_syntax"
#: module -> (the module whose import takes names from it, the names it takes)
STAND_INS = {
    SLOW_AT_IMPORT: ("jsonschema", ("is_valid_syntax",)),
    "pyarrow.fs": ("papermill.iorw", ("FileSelector", "HadoopFileSystem")),
}
#: Loaded on their first attribute read, where papermill is not loaded yet.
LAZY = ("requests",)


def _stand_in(name: str, names: tuple[str, ...]) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__["__aiinfra_deferred__"] = True
    lock = threading.Lock()  # the runner's worker threads may reach it at once

    def real() -> types.ModuleType:
        with lock:
            if sys.modules.get(name) is module:
                del sys.modules[name]
            loaded = importlib.import_module(name)
            # Whoever already holds the stand-in (jsonschema's `from ... import`) gets the
            # real objects on their next attribute read too.
            module.__dict__.update({k: v for k, v in loaded.__dict__.items() if k != "__name__"})
            return loaded

    def deferred(attr: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(real(), attr)(*args, **kwargs)

        call.__name__ = call.__qualname__ = attr
        return call

    def __getattr__(attr: str) -> Any:  # noqa: N807 - PEP 562 module hook
        # With names taken at import: `from m import name` asks for __path__ first, and
        # must not load it. A plain lazy module loads for any attribute it lacks.
        if names and attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(real(), attr)

    for attr in names:
        setattr(module, attr, deferred(attr))
    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return module


def _lazy(name: str) -> None:
    spec = importlib.util.find_spec(name)
    if spec is None:
        return
    module = _stand_in(name, ())
    module.__spec__ = spec  # find_spec(name) answers as before; the import sees no loading
    sys.modules[name] = module


def _top_level_present(name: str) -> bool:
    # find_spec of "a.b" would import "a": only the top-level package is looked up.
    return importlib.util.find_spec(name.partition(".")[0]) is not None


def defer_slow_imports(runs_user_code: bool = False) -> None:
    """Put the stand-ins in place, each unless its module or the module that takes names
    from it is already loaded. ``runs_user_code`` (a Dask worker): only those that behave
    exactly as the real module for any importer (not the ``pyarrow.fs`` stand-in)."""
    for name, (importer, names) in STAND_INS.items():
        if runs_user_code and name != SLOW_AT_IMPORT:
            continue
        top = name.partition(".")[0]
        if name in sys.modules or top in sys.modules or importer in sys.modules:
            continue
        if _top_level_present(name):
            sys.modules[name] = _stand_in(name, names)
    for name in LAZY:
        if name not in sys.modules and "papermill.iorw" not in sys.modules:
            _lazy(name)
