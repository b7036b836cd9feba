"""nbval plugin for ``make test-notebooks``: a failing magic fails its cell.

IPython shows a ``UsageError`` (how every ``%aiinfra`` error reaches a notebook) as
stderr text, not as an error message, so nbval alone passes such a cell. And nbval does
not check that a cell marked ``NBVAL_RAISES_EXCEPTION`` (or tagged ``raises-exception``)
raises at all. This plugin fails both.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

USAGE_ERROR = re.compile(r"^UsageError: .*$", re.MULTILINE)


def _usage_errors(outputs: list[Any]) -> list[str]:
    found: list[str] = []
    for out in outputs:
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            found += USAGE_ERROR.findall(out.get("text", ""))
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    result = yield  # nbval's own checks (errors, compared outputs) fail first
    outputs = getattr(item, "test_outputs", None)
    options = getattr(item, "options", None)
    if outputs is None or options is None:  # not a notebook cell
        return result
    usage = _usage_errors(outputs)
    if options.get("check_exception"):
        if not usage and not any(o.get("output_type") == "error" for o in outputs):
            pytest.fail("the cell is marked to raise an exception but ran without one")
    elif usage:
        pytest.fail("the cell failed: " + "; ".join(usage))
    return result
