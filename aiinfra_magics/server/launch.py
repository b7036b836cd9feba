"""``python -m aiinfra_magics.server.launch JOB.json``: a run the server starts, in its own process.

The server writes the request as JSON (pipeline, cluster, typed params, only,
force) to a private file and starts this entry point detached. The params go
to the runner as the typed values they are (``run_pipeline(parameters=...)``),
never through ``-p`` text. As soon as the runner knows its run id it is written
to ``run_id_file``, so the server can map the run to this process (to cancel it).

Exit status as the CLI's: 0 ok, 1 a step failed or the run was stopped, 2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from ..errors import AiinfraException, InputError
from ..paths import atomic_write_text
from ..startup import defer_slow_imports


class _Announce:
    """Progress that logs lines and writes the run id once the run begins."""

    def __init__(self, run_id_file: Path | None) -> None:
        from ..pipelines.progress import LineProgress

        self.lines = LineProgress(sys.stdout)
        self.run_id_file = run_id_file

    def begin(self, run: Any) -> None:
        if self.run_id_file is not None:
            atomic_write_text(self.run_id_file, run.run_id)
        self.lines.begin(run)

    def update(self, run: Any, name: str, cell: int | None = None) -> None:
        self.lines.update(run, name, cell)

    def end(self, run: Any) -> None:
        self.lines.end(run)


def run_job(job: dict[str, Any]) -> Any:
    """Run the pipeline a job file describes; returns the RunRecord."""
    from ..pipelines.runner import run_pipeline

    run_id_file = job.get("run_id_file")
    return run_pipeline(
        job["pipeline"],
        cluster=job.get("cluster"),
        parameters=job.get("params") or None,
        force=bool(job.get("force")),
        only=job.get("only") or None,
        trigger=job.get("trigger") or "lab",  # started from the lab unless the job says
        progress=_Announce(Path(run_id_file) if run_id_file else None),
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m aiinfra_magics.server.launch JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text())
    defer_slow_imports()  # this process is the pipeline runner: papermill and nbformat
    try:
        run = run_job(job)
    except KeyboardInterrupt as exc:  # SIGINT (cancel) or SIGTERM: every step is recorded
        print(f"pipeline run stopped ({exc or 'SIGINT'}); every step recorded", file=sys.stderr)
        return 1
    except AiinfraException as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, InputError) else 1
    from ..pipelines.report import write_report

    print(f"{run.summary()}; report: {write_report(run)}")
    return 0 if run.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
