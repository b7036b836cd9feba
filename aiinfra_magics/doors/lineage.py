"""Words: ``pipeline lineage FILE`` and ``pipeline diff RUN_A RUN_B``.

Thin: parse, call the core in pipelines/lineage.py, return its result (a dict with --json).
"""

from __future__ import annotations

import argparse
from typing import Any

from .words import Context

PIPELINE_HELP = "the pipeline.yaml (or its folder) whose runs to search (default: found above)"


def add_lineage_words(actions: argparse._SubParsersAction) -> None:
    """Add ``lineage`` and ``diff`` to the ``pipeline`` word's actions."""
    lineage = actions.add_parser("lineage", help="which run and step made a file's current content")
    lineage.add_argument("file", metavar="FILE", help="a product of a pipeline (or a copy of one)")
    lineage.add_argument("--pipeline", metavar="FILE", help=PIPELINE_HELP)
    lineage.add_argument("--json", action="store_true", help="print the answer as JSON")
    lineage.set_defaults(run=_lineage)

    diff = actions.add_parser(
        "diff", help="what changed between two runs: parameters, code, packages, products"
    )
    for name in ("run_a", "run_b"):
        diff.add_argument(
            name,
            metavar=name.upper(),
            help="a run id (or unique prefix), last, last~N, or a run folder / run.json",
        )
    diff.add_argument("--pipeline", metavar="FILE", help=PIPELINE_HELP + " (default: from here)")
    diff.add_argument("--json", action="store_true", help="print the differences as JSON")
    diff.set_defaults(run=_diff)


def _lineage(args: argparse.Namespace, ctx: Context) -> Any:
    from ..pipelines.lineage import lineage

    found = lineage(args.file, args.pipeline)
    return found.to_dict() if args.json else found


def _diff(args: argparse.Namespace, ctx: Context) -> Any:
    from ..pipelines.run_diff import diff_runs

    changes = diff_runs(args.run_a, args.run_b, args.pipeline)
    return changes.to_dict() if args.json else changes
