"""Live progress: rich bars in a terminal, plain lines in logs, an ipywidgets panel in notebooks.

Each bar follows one node through its notebook's cells (events sent by the
workers); the overall bar counts finished nodes.
"""

from __future__ import annotations

import html
import sys
from typing import Any, Protocol

from .cache import read_cells
from .record import RunRecord

FINAL = ("ok", "cached", "failed", "skipped")


class Progress(Protocol):
    """What the runner reports to: a run begins, a node changes (or reaches a cell), it ends."""

    def begin(self, run: RunRecord) -> None: ...
    def update(self, run: RunRecord, name: str, cell: int | None = None) -> None: ...
    def end(self, run: RunRecord) -> None: ...


class NoProgress:
    def begin(self, run: RunRecord) -> None:
        pass

    def update(self, run: RunRecord, name: str, cell: int | None = None) -> None:
        pass

    def end(self, run: RunRecord) -> None:
        pass


def _cell_counts(run: RunRecord) -> dict[str, int]:
    """Cells per node's notebook (+1 for the cell papermill injects)."""
    counts: dict[str, int] = {}
    for name, step in run.steps.items():
        try:
            counts[name] = len(read_cells(run.folder / step["source"])) + 1
        except Exception:
            counts[name] = 1
    return counts


class RichProgress:
    """A bar per node and one overall, on stderr (stdout keeps the summary)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(
            # markup=False: a name like "train[lr=0.1]" is not rich markup
            TextColumn("{task.description:<24}", markup=False),
            BarColumn(),
            TextColumn("{task.fields[status]:<8}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.tasks: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def begin(self, run: RunRecord) -> None:
        self.counts = _cell_counts(run)
        self.overall = self.bars.add_task(
            f"pipeline {run.data['pipeline']}", total=len(run.steps), status=""
        )
        for name in run.steps:
            self.tasks[name] = self.bars.add_task(
                name, total=self.counts[name], status="pending", start=False
            )
        self.bars.start()

    def update(self, run: RunRecord, name: str, cell: int | None = None) -> None:
        task = self.tasks[name]
        status = run.steps[name]["status"]
        if status == "running":
            self.bars.start_task(task)
        if cell is not None:
            self.bars.update(task, completed=cell + 1)
        if status in FINAL:
            self.bars.update(task, completed=self.counts[name], status=status)
            self.bars.stop_task(task)
        else:
            self.bars.update(task, status=status)
        done = sum(s["status"] in FINAL for s in run.steps.values())
        self.bars.update(self.overall, completed=done)

    def end(self, run: RunRecord) -> None:
        self.bars.update(self.overall, status=run.status)
        self.bars.stop()

    def output(self, run: RunRecord, name: str, text: str, stream: str = "stdout") -> None:
        for line in text.rstrip("\n").splitlines():
            self.bars.console.print(f"[{name}] {line}", markup=False, highlight=False)


class LineProgress:
    """One line per finished node, for logs and pipes where bars would garble."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.seen: set[str] = set()

    def begin(self, run: RunRecord) -> None:
        print(
            f"pipeline {run.data['pipeline']}: {len(run.steps)} steps, run {run.run_id}",
            file=self.stream,
        )

    def update(self, run: RunRecord, name: str, cell: int | None = None) -> None:
        step = run.steps[name]
        if step["status"] in FINAL and name not in self.seen:
            self.seen.add(name)
            took = f" {step['duration']:.2f}s" if step.get("duration") is not None else ""
            note = f"  {step.get('error') or ''}" if step["status"] == "failed" else ""
            print(f"  {step['status']:<8}{name}{took}{note}", file=self.stream, flush=True)

    def end(self, run: RunRecord) -> None:
        pass

    def output(self, run: RunRecord, name: str, text: str, stream: str = "stdout") -> None:
        """``log_output``: a step's cell output, line by line, prefixed by its node."""
        for line in text.rstrip("\n").splitlines():
            print(f"[{name}] {line}", file=self.stream, flush=True)


class WidgetProgress:
    """An ipywidgets panel: overall bar plus a bar per node, coloured by outcome."""

    STYLES = {"ok": "success", "cached": "info", "failed": "danger", "skipped": "warning"}

    def __init__(self, show: Any) -> None:
        self.show = show

    def begin(self, run: RunRecord) -> None:
        import ipywidgets as w

        self.counts = _cell_counts(run)
        layout = w.Layout(width="320px")
        # The pipeline's name is the user's text: escaped, never markup.
        name, run_id = html.escape(str(run.data["pipeline"])), html.escape(str(run.run_id))
        self.title = w.HTML(f"<b>pipeline {name}</b> run {run_id}")
        self.overall = w.IntProgress(
            min=0, max=len(run.steps), description="overall", layout=layout
        )
        self.rows: dict[str, tuple[Any, Any]] = {}
        boxes = [self.title, self.overall]
        for name in run.steps:
            bar = w.IntProgress(min=0, max=self.counts[name], description=name[:20], layout=layout)
            bar.style.description_width = "160px"
            label = w.Label("pending")
            self.rows[name] = (bar, label)
            boxes.append(w.HBox([bar, label]))
        self.overall.style.description_width = "160px"
        self.panel = w.VBox(boxes)
        self.show(self.panel)

    def update(self, run: RunRecord, name: str, cell: int | None = None) -> None:
        bar, label = self.rows[name]
        step = run.steps[name]
        if cell is not None:
            bar.value = min(cell + 1, bar.max)
        if step["status"] in FINAL:
            bar.value = bar.max
            bar.bar_style = self.STYLES[step["status"]]
        took = f" {step['duration']:.2f}s" if step.get("duration") is not None else ""
        label.value = (
            step["status"] + took + (f": {step['error']}" if step["status"] == "failed" else "")
        )
        self.overall.value = sum(s["status"] in FINAL for s in run.steps.values())

    def output(self, run: RunRecord, name: str, text: str, stream: str = "stdout") -> None:
        import ipywidgets as w

        if not hasattr(self, "log"):
            self.log = w.Textarea(layout=w.Layout(width="640px", height="160px"), disabled=True)
            self.panel.children = (*self.panel.children, self.log)
        lines = self.log.value + "".join(f"[{name}] {ln}\n" for ln in text.splitlines())
        self.log.value = "\n".join(lines.splitlines()[-200:]) + "\n"  # the last 200 lines

    def end(self, run: RunRecord) -> None:
        self.overall.bar_style = "success" if run.status == "ok" else "danger"
        self.title.value += (
            f": <b>{html.escape(str(run.status))}</b> in {run.data['duration']:.1f} s"
        )


def for_door(door: str, show: Any) -> Any:
    """Pick the progress display that suits the caller."""
    if door == "magic":
        try:
            import ipywidgets  # noqa: F401

            return WidgetProgress(show)
        except ImportError:
            return LineProgress(sys.stdout)
    if sys.stderr.isatty():
        return RichProgress()
    return LineProgress()
