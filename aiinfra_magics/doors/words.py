"""The words shared by the ``%aiinfra`` magic and the ``aiinfra`` CLI.

One argparse tree serves both doors, so an option means the same thing
everywhere. :data:`COMMANDS` is the only place that knows every top-level word
(papermill-style: a registry that new modules extend); each entry names the
function that fills that word's parser.

A parser is filled only when the parse reaches it (:meth:`WordsParser.defer`):
``aiinfra --help`` imports no feature module, ``aiinfra cluster list`` imports
the cluster words but not the backends that only ``cluster start`` needs, and
``pipeline run --help`` never imports papermill. Each of those imports cost
seconds on a loaded 2-core machine (issue 24).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

#: Top-level word -> ("module:function" that fills its parser, one-line help), in the
#: order ``-h`` lists them. The function takes the word's WordsParser.
COMMANDS: dict[str, tuple[str, str]] = {
    "cluster": ("aiinfra_magics.doors.clusters:add_cluster", "start and control Dask clusters"),
    "pipeline": (
        "aiinfra_magics.doors.pipelines:add_pipeline",
        "run notebooks as a cached, parallel pipeline",
    ),
    "promote": (
        "aiinfra_magics.doors.pipelines:add_promote",
        "add this notebook to pipeline.yaml as a step",
    ),
    "devices": (
        "aiinfra_magics.doors.devices:add_devices",
        "GPUs (with MIG slices), TPUs, CPU and memory of this machine",
    ),
    "jax": (
        "aiinfra_magics.doors.jax:add_jax",
        "configure JAX before its backend starts; binds `jax` and `mesh`",
    ),
    "spmd": (
        "aiinfra_magics.doors.jax:add_spmd",
        "run a cell as one multi-process JAX program on a cluster's workers",
    ),
    "gateway": (
        "aiinfra_magics.doors.gateway:add_gateway",
        "register Dask Gateways (their clusters are listed)",
    ),
    "scheduler": (
        "aiinfra_magics.doors.schedules:add_scheduler",
        "the per-user service that fires pipeline schedules",
    ),
}


class UsageShown(Exception):
    """Raised instead of exiting when argparse printed help (``-h``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class WordsParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of calling ``sys.exit`` and fills itself late."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[WordsParser], None]] = []

    def defer(self, fill: Callable[[WordsParser], None]) -> None:
        """Run ``fill(self)`` just before this parser first parses or shows help.

        argparse hands the rest of the line to a sub-parser through its
        ``parse_known_args``, so only the branch the user typed is ever filled.
        """
        self._deferred.append(fill)

    def _fill(self) -> None:
        while self._deferred:
            self._deferred.pop(0)(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        self._fill()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._fill()
        return super().format_help()

    def format_usage(self) -> str:
        self._fill()
        return super().format_usage()

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


def _filler(target: str) -> Callable[[WordsParser], None]:
    def fill(parser: WordsParser) -> None:
        module, _, function = target.partition(":")
        getattr(importlib.import_module(module), function)(parser)

    return fill


def build_parser(prog: str = "aiinfra") -> WordsParser:
    parser = WordsParser(
        prog=prog,
        description="aiinfra: Dask clusters, JAX sessions and pipelines from Jupyter.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=WordsParser)
    subparsers.required = True
    for word, (target, text) in COMMANDS.items():
        subparsers.add_parser(word, help=text).defer(_filler(target))
    return parser


def add_subcommands(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:
    """Sub-command group whose parsers share WordsParser's behaviour."""
    sub = parser.add_subparsers(dest=dest, metavar="ACTION", parser_class=WordsParser)
    sub.required = True
    return sub


def run_words(argv: list[str], ctx: Context, prog: str = "aiinfra") -> Any:
    """Parse ``argv`` and run the chosen command; return its result object."""
    args = build_parser(prog).parse_args(argv)
    if args.command != "scheduler":  # a killed scheduler service comes back with any command
        from ..pipelines.scheduler_revive import revive_quietly

        revive_quietly()
    return args.run(args, ctx)


def usage(prog: str = "aiinfra") -> str:
    return build_parser(prog).format_help()
