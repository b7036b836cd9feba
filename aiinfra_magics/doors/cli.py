"""``aiinfra``: the shell door over the same words as the magic.

Exit status: 0 success, 2 bad input (the message names the field), 1 a valid
request that failed.
"""

from __future__ import annotations

import gc
import json
import sys
from typing import Any, NoReturn

from ..errors import InputError, OperationError
from ..startup import defer_slow_imports
from .words import Context, UsageShown, run_words


def _show(result: Any) -> None:
    if result is None:
        return
    if isinstance(result, (dict, list)):
        print(json.dumps(result, indent=2, default=str))
    else:
        print(str(result))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    defer_slow_imports()  # this process runs papermill only if a step really runs
    # stdout holds results only (JSON with --json); notes and outcomes go to stderr.
    ctx = Context(door="cli", show=_show, done=lambda text: print(text, file=sys.stderr))
    try:
        _show(run_words(argv, ctx))
    except UsageShown as shown:
        print(shown.text, end="" if shown.text.endswith("\n") else "\n")
        return 0
    except OperationError as exc:
        print(f"aiinfra: failed: {exc}", file=sys.stderr)
        return 1
    except InputError as exc:  # NotFoundError included: the user named something wrong
        print(f"aiinfra: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def console() -> NoReturn:
    """The ``aiinfra`` command: :func:`main`, then an exit that skips the heap walk.

    A pipeline run leaves about a million objects (papermill, nbformat, distributed), and
    the interpreter's collections at exit took 0.16-0.33 s of every such call (measured
    for issue 24). Frozen objects are still freed by reference counting and atexit
    handlers still run; only the final cycle walks are skipped. Not in ``main``: tests
    call that in-process, where collection must stay on.
    """
    code = main()
    gc.freeze()
    gc.disable()
    sys.exit(code)


if __name__ == "__main__":
    console()
