"""Words: ``pipeline run --resume | --from STEP | --notify TARGET``, ``pipeline cancel`` and
``pipeline runs``; and the options every word that runs a pipeline shares (parameters, FILE).

Thin: parse, call the core in pipelines/liveness.py and record.py, return a result.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import AiinfraError
from .words import Context

PARAM_HELP = (
    "override a parameter, typed as papermill's -p types it: KEY=VALUE for every step that "
    "has KEY, or STEP.KEY=VALUE"
)
#: papermill's other parameter sources, by papermill's names: flags, dest, metavar.
PARAM_SOURCES = (
    (("-r", "--parameters_raw"), "raw", "KEY=VALUE"),
    (("-y", "--parameters_yaml"), "yaml_params", "YAML"),
    (("-f", "--parameters_file"), "param_files", "FILE"),
)
RAW_HELP = "a parameter kept as the raw string"


def add_param_options(
    parser: argparse.ArgumentParser,
    help: str = PARAM_HELP,
    *,
    aliases: tuple[str, ...] = (),
    sources: dict[str, str] | None = None,
) -> None:
    """``-p``/``--param`` (and ``aliases``); with ``sources`` (help by dest), ``-r``/``-y``/``-f``.

    ``pipeline run``, ``plot``, ``promote`` and ``pipeline schedule add`` take the same
    parameter options into the same ``args`` fields; only their help differs.
    """
    parser.add_argument(
        "-p", "--param", *aliases, dest="params", action="append", default=[], metavar="KEY=VALUE",
        help=help,
    )  # fmt: skip
    for flags, dest, metavar in PARAM_SOURCES if sources else ():
        parser.add_argument(
            *flags, dest=dest, action="append", default=[], metavar=metavar, help=sources[dest]
        )


def pipeline_folder(file: str) -> Path:
    """The folder of the pipeline.yaml named by a word's FILE.

    Raises:
        AiinfraError: FILE is not an existing file.
    """
    path = Path(file).expanduser()
    if not path.is_file():
        raise AiinfraError(f"FILE: got {file!r}; allowed: an existing pipeline.yaml", field="FILE")
    return path.resolve().parent


def add_run_options(run: argparse.ArgumentParser) -> None:
    """``--resume``, ``--from`` and ``--notify`` on ``pipeline run``."""
    run.add_argument(
        "--resume",
        action="store_true",
        help="run again what the last run did not finish (failed, interrupted) and what "
        "follows it; keep the steps it finished",
    )
    run.add_argument(
        "--from",
        dest="from_step",
        metavar="STEP",
        action="append",
        help="run STEP and everything after it, ignoring the cache (repeat for more)",
    )
    run.add_argument(
        "--notify",
        metavar="TARGET",
        action="append",
        help="tell webhook:URL or email:ADDRESS when the run fails (repeat for more)",
    )


def add_run_words(actions: argparse._SubParsersAction) -> None:
    """Add ``cancel`` and ``runs`` to the ``pipeline`` word's actions."""
    cancel = actions.add_parser("cancel", help="stop a running run, wherever it was started")
    cancel.add_argument("file", metavar="FILE", help="pipeline.yaml")
    cancel.add_argument("--run", dest="run_id", metavar="RUN_ID", help="a run other than the last")
    cancel.set_defaults(run=_cancel)

    runs = actions.add_parser("runs", help="list the pipeline's runs, newest first")
    runs.add_argument("file", metavar="FILE", help="pipeline.yaml")
    runs.add_argument("--json", action="store_true", help="print the list as JSON")
    runs.set_defaults(run=_runs)


def _cancel(args: argparse.Namespace, ctx: Context) -> Any:
    from ..pipelines.liveness import cancel
    from ..pipelines.record import RunRecord

    run = RunRecord.load(pipeline_folder(args.file), args.run_id)
    outcome = cancel(run.run_dir)
    return f"run {outcome['run_id']}: {outcome['status']} ({', '.join(outcome['signals'])})"


def _runs(args: argparse.Namespace, ctx: Context) -> Any:
    from ..pipelines.record import list_runs

    runs = list_runs(pipeline_folder(args.file))
    if args.json:
        return runs
    lines = [f"{'run':<30}{'status':<13}{'trigger':<22}duration"]
    for run in runs:
        trigger = run.get("trigger") or {}
        kind = trigger.get("kind", "") if isinstance(trigger, dict) else str(trigger)
        if isinstance(trigger, dict) and trigger.get("schedule"):
            kind += f":{trigger['schedule']}"
        took = run.get("duration")
        took = f"{took:.1f} s" if isinstance(took, (int, float)) else ""
        lines.append(f"{run['run_id']:<30}{run['status']:<13}{kind:<22}{took}")
    return "\n".join(lines)
