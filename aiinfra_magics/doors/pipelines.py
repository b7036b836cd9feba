"""Words: ``pipeline run|status|plot|report FILE ...`` and ``promote ...``.

Thin: parse, call the core in runner / record / report / promote, return a result.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import AiinfraError, OperationError
from ..pipelines.dag import apply_overrides, expand
from ..pipelines.params import collect
from ..pipelines.record import RunRecord
from ..pipelines.report import Picture, ReportFile, dag_svg, write_report
from ..pipelines.spec import PipelineSpec
from .run_control import (  # resume, notify, cancel, runs; the shared options
    RAW_HELP,
    add_param_options,
    add_run_options,
    add_run_words,
    pipeline_folder,
)
from .words import Context, add_subcommands


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: an integer >= 1")
    return value


def _params(parser: argparse.ArgumentParser) -> None:
    """The parameter options of ``run`` and ``plot``: papermill's, by papermill's names."""
    add_param_options(
        parser,
        aliases=("--parameters",),
        sources={
            "raw": RAW_HELP,
            "yaml_params": "parameters as a YAML mapping (KEY or STEP.KEY: VALUE)",
            "param_files": "parameters from a YAML file (local or any papermill URL)",
        },
    )
    parser.add_argument(
        "-k",
        "--kernel",
        metavar="NAME",
        help="kernel for every step (default: each notebook's kernelspec)",
    )


def add_pipeline(pipeline: argparse.ArgumentParser) -> None:
    actions = add_subcommands(pipeline, "action")

    run = actions.add_parser("run", help="run the pipeline (skipping unchanged steps)")
    run.add_argument("file", metavar="FILE", help="pipeline.yaml")
    run.add_argument(
        "--cluster",
        metavar="NAME",
        help="a registered cluster (default: the run's own worker threads)",
    )
    _params(run)
    run.add_argument(
        "--log-output", action="store_true", help="stream the cells' output as they run"
    )
    run.add_argument(
        "--output",
        metavar="URL",
        help="where executed notebooks go: a folder or a papermill/fsspec URL (default: runs/)",
    )
    run.add_argument(
        "--force", action="store_true", help="run every selected step, ignoring the cache"
    )
    run.add_argument(
        "--only",
        metavar="STEP",
        action="append",
        help="run only STEP (a step or an expanded name like train[lr=0.1]); repeat for more",
    )
    run.add_argument(
        "--upstream", action="store_true", help="with --only: also run what STEP depends on"
    )
    run.add_argument(
        "--workers",
        type=_positive,
        default=2,
        metavar="N",
        help="worker threads of the run's own pool (without --cluster)",
    )
    run.add_argument(
        "--trigger",
        metavar="KIND[:SCHEDULE]",
        help="who started the run, recorded in run.json: manual (default), lab or schedule:NAME",
    )
    add_run_options(run)
    run.set_defaults(run=_run)

    status = actions.add_parser("status", help="show the last run as a table")
    status.add_argument("file", metavar="FILE")
    status.add_argument("--run", dest="run_id", metavar="RUN_ID", help="a run other than the last")
    status.add_argument("--json", action="store_true", help="print run.json")
    status.add_argument(
        "--suggest",
        action="store_true",
        help="right-sizing per step (memory, resources) from the run's measured peaks",
    )
    status.set_defaults(run=_status)

    plot = actions.add_parser("plot", help="draw the DAG (SVG)")
    plot.add_argument("file", metavar="FILE")
    _params(plot)
    plot.add_argument(
        "--output",
        metavar="PATH",
        help="where to write the SVG (CLI default: pipeline.svg beside FILE)",
    )
    plot.set_defaults(run=_plot)

    report = actions.add_parser("report", help="write a standalone HTML report of a run")
    report.add_argument("file", metavar="FILE")
    report.add_argument("--run", dest="run_id", metavar="RUN_ID", help="a run other than the last")
    report.add_argument("--output", metavar="PATH", help="default: runs/<run_id>/report.html")
    report.set_defaults(run=_report)

    from .lineage import add_lineage_words  # lineage and diff: their own door module

    add_lineage_words(actions)
    add_run_words(actions)
    from .schedules import SCHEDULE_HELP, add_schedule  # schedule words: their own door module

    add_schedule(actions.add_parser("schedule", help=SCHEDULE_HELP))


def add_promote(prom: argparse.ArgumentParser) -> None:
    prom.add_argument(
        "--pipeline", metavar="FILE", help="default: pipeline.yaml beside the notebook"
    )
    prom.add_argument("--name", metavar="STEP", help="default: the notebook's name")
    prom.add_argument("--after", metavar="A,B", help="steps this one runs after")
    add_param_options(prom, "a parameter of this step (repeat), typed as papermill's -p types it")
    prom.add_argument(
        "--product",
        dest="products",
        action="append",
        metavar="PATH",
        help="a file the step writes (repeat)",
    )
    prom.add_argument("--notebook", metavar="PATH", help="default: the notebook of this kernel")
    prom.set_defaults(run=_promote)


def _run(args: argparse.Namespace, ctx: Context) -> Any:
    if args.upstream and not args.only:
        raise AiinfraError("--upstream: allowed only together with --only STEP", field="--upstream")
    from ..pipelines import progress as progress_mod
    from ..pipelines.runner import run_pipeline
    from ..pipelines.signals import RunTerminated

    try:
        run = _start_run(args, ctx, run_pipeline, progress_mod)
    except RunTerminated as exc:  # SIGTERM/SIGHUP: the record says so; exit 1, not a traceback
        raise OperationError(f"pipeline run stopped by {exc}; every step recorded") from None
    report = write_report(run)
    if run.status != "ok":
        if ctx.door == "cli":
            ctx.show(run.table())
        raise OperationError(run.summary().replace("\n  ", "; ") + f"; report: {report}")
    return run


def _start_run(args: argparse.Namespace, ctx: Context, run_pipeline: Any, progress_mod: Any) -> Any:
    return run_pipeline(
        args.file,
        cluster=args.cluster,
        params=args.params,
        raw=args.raw,
        yaml_params=args.yaml_params,
        param_files=args.param_files,
        kernel=args.kernel,
        log_output=args.log_output,
        output=args.output,
        force=args.force,
        only=args.only,
        with_upstream=args.upstream,
        workers=args.workers,
        progress=progress_mod.for_door(ctx.door, ctx.show),
        trigger=args.trigger,
        resume=args.resume,
        from_step=args.from_step,
        notify=args.notify,
    )


def _status(args: argparse.Namespace, ctx: Context) -> Any:
    run = RunRecord.load(pipeline_folder(args.file), args.run_id)
    if args.suggest:  # runs recorded before suggestions were kept: made from their steps
        found = run.data.get("suggestions") or run.suggestions()
        if args.json:
            return found
        return "\n".join(s["text"] for s in found) or f"run {run.run_id}: nothing measured to size"
    return run.to_dict() if args.json else run


def _plot(args: argparse.Namespace, ctx: Context) -> Any:
    overrides = collect(args.params, args.raw, args.yaml_params, args.param_files)
    spec = apply_overrides(
        PipelineSpec.from_file(args.file), overrides=overrides, kernel=args.kernel
    )
    nodes = expand(spec)
    try:
        steps = RunRecord.load(spec.folder).steps
        steps = {n: s for n, s in steps.items() if n in nodes}
    except AiinfraError:
        steps = None
    picture = Picture(dag_svg(nodes, steps))
    output = args.output or (str(spec.folder / "pipeline.svg") if ctx.door == "cli" else None)
    if output:
        picture.path = Path(output)
        picture.path.write_text(picture.svg)
    return picture


def _report(args: argparse.Namespace, ctx: Context) -> Any:
    run = RunRecord.load(pipeline_folder(args.file), args.run_id)
    return ReportFile(write_report(run, Path(args.output) if args.output else None))


def _promote(args: argparse.Namespace, ctx: Context) -> Any:
    from ..pipelines.promote import (  # ruamel and nbformat: only when promoting
        current_notebook,
        promote,
    )

    notebook = Path(args.notebook) if args.notebook else current_notebook(ctx.namespace)
    after = (
        [a.strip() for a in args.after.split(",") if a.strip()] if args.after is not None else None
    )
    return promote(
        notebook,
        pipeline=Path(args.pipeline) if args.pipeline else None,
        name=args.name,
        after=after,
        params=args.params,
        products=args.products,
    )
