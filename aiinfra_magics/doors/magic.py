"""``%aiinfra``: a thin door over the shared words in :mod:`aiinfra_magics.doors.words`."""

from __future__ import annotations

import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from ..errors import AiinfraException
from .words import Context, UsageShown, run_words, usage


@magics_class
class AiinfraMagics(Magics):
    @line_cell_magic
    def aiinfra(self, line: str, cell: str | None = None) -> Any:
        """Provision Dask clusters, JAX sessions and pipelines. ``%aiinfra -h`` for help."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"aiinfra: cannot parse the line: {exc}") from None
        if not argv:
            print(usage("%aiinfra"))
            return None
        ctx = Context(
            door="magic",
            namespace=self.shell.user_ns,
            cell=cell,
            say=lambda text: print(text, file=sys.stderr),
            done=print,
            show=display,
            shell=self.shell,
        )
        try:
            return run_words(argv, ctx, prog="%aiinfra")
        except UsageShown as shown:
            print(shown.text)
            return None
        except AiinfraException as exc:
            raise UsageError(str(exc)) from None
