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


def test_no_stand_in_once_jsonschema_is_loaded():
    code = (
        "import sys, jsonschema\n"
        "from aiinfra_magics.startup import defer_slow_imports\n"
        "defer_slow_imports()\n"
        "print(hasattr(sys.modules['rfc3987_syntax'], '__aiinfra_deferred__'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
