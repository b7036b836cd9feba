"""The deferred rfc3987_syntax (aiinfra_magics/startup.py): same IRI checks, no grammars
compiled until one is asked for. Each case runs in a fresh interpreter, as the CLI does."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, sys
from aiinfra_magics.startup import defer_slow_imports
{setup}
import nbformat, jsonschema
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
nbformat.validate(nb)
after_validate = getattr(sys.modules["rfc3987_syntax"], "__aiinfra_deferred__", False)
checker = jsonschema.FormatChecker()
iri_ok = checker.conforms("http://example.org/ä", "iri")
iri_bad = checker.conforms("http://exa mple.org/<>", "iri")
ref_ok = checker.conforms("../relative/ü", "iri-reference")
real_now = not hasattr(sys.modules["rfc3987_syntax"], "__aiinfra_deferred__")
print(json.dumps([after_validate, iri_ok, iri_bad, ref_ok, real_now]))
"""


def probe(setup: str) -> list:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(setup=setup)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_deferred_module_checks_iris_as_the_real_one():
    deferred = probe("defer_slow_imports()")
    real = probe("")
    # Validating a notebook compiles no grammar; the first IRI check loads the real module.
    assert deferred[0] is True
    assert deferred[4] is True
    assert real[0] is False
    # The same answers, with and without the deferral.
    assert deferred[1:4] == real[1:4] == [True, False, True]


def python_out(code: str) -> str:
    """What ``python -c code`` prints, in a fresh interpreter as the CLI is."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_no_stand_in_once_jsonschema_is_loaded():
    code = (
        "import sys, jsonschema\n"
        "from aiinfra_magics.startup import defer_slow_imports\n"
        "defer_slow_imports()\n"
        "print(hasattr(sys.modules['rfc3987_syntax'], '__aiinfra_deferred__'))"
    )
    assert python_out(code) == "False"


PAPERMILL_PROBE = r"""
import json, sys, threading, http.server, functools, pathlib
from aiinfra_magics.startup import defer_slow_imports
defer_slow_imports({args})
import papermill.iorw as iorw
before = [m for m in ("pyarrow", "numpy", "urllib3") if m in sys.modules]
folder = pathlib.Path(sys.argv[1])
(folder / "nb.ipynb").write_text('{{"cells": []}}')
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
handler.log_message = lambda *a: None
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
text = iorw.HttpHandler.read(f"http://127.0.0.1:{{server.server_address[1]}}/nb.ipynb")
server.shutdown()
selector = iorw.FileSelector(str(folder), recursive=False)
from pyarrow.fs import FileSelector, LocalFileSystem
listed = [i.base_name for i in LocalFileSystem().get_file_info(selector)]
print(json.dumps([before, text, isinstance(selector, FileSelector), listed,
                  "urllib3" in sys.modules]))
"""


def papermill_probe(tmp_path, args: str) -> list:
    out = subprocess.run(
        [sys.executable, "-c", PAPERMILL_PROBE.format(args=args), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_papermill_loads_without_pyarrow_or_requests_and_both_work_when_used(tmp_path):
    before, text, real_selector, listed, urllib3_now = papermill_probe(tmp_path, "")
    assert before == []  # neither pyarrow (nor numpy through it) nor urllib3 at import
    # papermill's HTTP handler read the notebook through requests, loaded on first use ...
    assert json.loads(text) == {"cells": []} and urllib3_now is True
    # ... and its HDFS handler's names build the real pyarrow objects, which the real
    # module then accepts.
    assert real_selector is True and listed == ["nb.ipynb"]


def test_a_worker_keeps_the_real_pyarrow_fs(tmp_path):
    """Workers run user code: only the stand-ins that act as the real module for any
    importer (``import pyarrow.fs`` then ``pyarrow.fs.X`` needs the real one)."""
    before, text, real_selector, listed, _ = papermill_probe(tmp_path, "runs_user_code=True")
    assert "pyarrow" in before and "urllib3" not in before
    assert json.loads(text) == {"cells": []} and real_selector is True and listed == ["nb.ipynb"]
    code = (
        "from aiinfra_magics.startup import defer_slow_imports\n"
        "defer_slow_imports(runs_user_code=True)\n"
        "import pyarrow.fs\n"
        "print(type(pyarrow.fs.LocalFileSystem()).__name__)"
    )
    assert python_out(code) == "LocalFileSystem"
