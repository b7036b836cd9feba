"""The words shared by the ``%aiinfra`` magic and the ``aiinfra`` CLI.

One argparse tree serves both doors, so an option means the same thing
everywhere. Each feature module contributes its sub-commands through
``add_commands(subparsers)``; the list below is the only place that knows them
all (papermill-style: a registry that new modules extend).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

# Modules that define sub-commands; each exposes add_commands(subparsers).
COMMAND_MODULES: list[str] = [
    "aiinfra_magics.doors.clusters",
    "aiinfra_magics.doors.pipelines",
    "aiinfra_magics.doors.devices",
    "aiinfra_magics.doors.jax",
    "aiinfra_magics.doors.gateway",
]


class UsageShown(Exception):
    """Raised instead of exiting when argparse printed help (``-h``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class WordsParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of calling ``sys.exit``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise UsageShown(message or "")

    def print_help(self, file: Any = None) -> None:
        raise UsageShown(self.format_help())

    def print_usage(self, file: Any = None) -> None:
        raise UsageShown(self.format_usage())


@dataclass
class Context:
    """What a command may use from the door that called it."""

    door: str  # "magic" or "cli"
    namespace: dict[str, Any] | None = None  # the user's namespace (magic only)
    cell: str | None = None  # the cell body for %%aiinfra cell magics
    #: notes along the way (which backend auto chose, warnings): stderr
    say: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr))
    #: the one-line outcome of an action ("cluster 'a' running"): stdout in a notebook
    done: Callable[[str], None] = field(default=print)
    show: Callable[[Any], None] = field(default=print)
    shell: Any = None  # the IPython shell (magic only)


def build_parser(prog: str = "aiinfra") -> WordsParser:
    parser = WordsParser(
        prog=prog,
        description="aiinfra: Dask clusters, JAX sessions and pipelines from Jupyter.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=WordsParser)
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).add_commands(subparsers)
    return parser


def add_subcommands(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:
    """Sub-command group whose parsers share WordsParser's behaviour."""
    sub = parser.add_subparsers(dest=dest, metavar="ACTION", parser_class=WordsParser)
    sub.required = True
    return sub


def run_words(argv: list[str], ctx: Context, prog: str = "aiinfra") -> Any:
    """Parse ``argv`` and run the chosen command; return its result object."""
    args = build_parser(prog).parse_args(argv)
    return args.run(args, ctx)


def usage(prog: str = "aiinfra") -> str:
    return build_parser(prog).format_help()
