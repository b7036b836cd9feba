"""The run view as a first-time user meets it, in a real JupyterLab and Chromium (issues 29, 26).

A three-step pipeline whose middle step fails until a file exists:

- the run view names the host and worker (no ``inproc://``), writes costs in s/min/h with two
  significant digits, draws its DAG's edges with arrows, and its buttons look like buttons;
- Resume (``resume: true``) runs the failed step and what follows once the cause is fixed;
  "Run from here" on a DAG box (``from: STEP``) runs that step and what follows;
- a run started by a schedule (``aiinfra pipeline schedule run``) is tagged in the run view
  and the sidebar, which lists runs by their start time;
- a launch that never became a run links to its log, served by our REST, not a server path;
- every badge, tag, DAG box and button keeps WCAG AA contrast in the light and dark themes;
- "Run pipeline…" in the sidebar names the pipeline it will run and lets the user pick
  another one, known or another file; "Schedule…" runs ``aiinfra:schedule-pipeline``.

Screenshots go to tmp (``make screenshots`` makes the README's from docs/screenshots.py).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

from chromium import browser_page
from contrast import AA, contrast, low_contrast
from labserver import NEEDS_LAB, hide_toasts, open_run, screenshot
from nbfiles import notebook_text
from waiting import wait_for

pytestmark = NEEDS_LAB

#: Each DAG box's label (SVG text: its fill) and the fill of the box it is drawn on.
_DAG_TEXTS = """() => Array.from(document.querySelectorAll('.aiinfra-dag-node')).map(g => ({
  node: g.dataset.node,
  fg: getComputedStyle(g.querySelector(':scope > text')).fill,
  bg: getComputedStyle(g.querySelector(':scope > rect')).fill,
}))"""


def _pipelines(root: Path) -> Path:
    """sales/: total -> check (fails until ``fixed`` exists) -> report; other/: one step."""
    sales = root / "sales"
    sales.mkdir()
    (sales / "total.ipynb").write_text(
        notebook_text("n = 3", "total = sum(range(n))\nprint('total', total)")
    )
    (sales / "check.ipynb").write_text(
        notebook_text("limit = 1", "import os\nassert os.path.exists('fixed'), 'no fixed file yet'")
    )
    (sales / "report.ipynb").write_text(notebook_text("title = 'r'", "print('report', title)"))
    (sales / "pipeline.yaml").write_text(
        "name: sales\nsteps:\n"
        "  total:\n    notebook: total.ipynb\n    params: {n: 3}\n"
        "  check:\n    notebook: check.ipynb\n    after: [total]\n    retries: 0\n"
        "  report:\n    notebook: report.ipynb\n    after: [check]\n"
    )
    other = root / "other"
    other.mkdir()
    (other / "solo.ipynb").write_text(notebook_text("k = 2", "print('solo', k)"))
    (other / "pipeline.yaml").write_text(
        "name: other\nsteps:\n  solo:\n    notebook: solo.ipynb\n    params: {k: 2}\n"
    )
    return sales


def _runs(lab) -> list[dict]:
    return lab.api("aiinfra/api/pipelines/runs")["runs"]


def _new_run(lab, before: set[str], status: str | None = None) -> dict:
    """The run that is not in ``before`` (and has ``status``, when given)."""

    def found():
        for run in _runs(lab):
            if run["run_id"] not in before and (status is None or run.get("status") == status):
                return run
        return None

    return wait_for(found, timeout=300, what=f"a new run{f' {status}' if status else ''}")


def _contrast_ok(page, theme: str) -> None:
    """Switch to ``theme``; every text of the run view keeps AA contrast there."""
    page.evaluate(
        f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})"
    )
    light = theme == "JupyterLab Light"
    # Applied once the run view's own background is light (or dark) as the theme's.
    page.wait_for_function(
        r"""(light) => {
             const view = document.querySelector('.aiinfra-runs-view');
             for (let e = view; e; e = e.parentElement) {
               const m = getComputedStyle(e).backgroundColor.match(/[\d.]+/g);
               if (m && (m.length < 4 || +m[3] > 0)) {
                 const grey = (+m[0] + +m[1] + +m[2]) / 3;
                 return light ? grey > 160 : grey < 96;
               }
             }
             return false;
           }""",
        arg=light,
    )
    page.locator("#jupyterlab-splash").wait_for(state="detached")  # the theme's splash is gone
    # Every text of the run view (badges, tags, buttons, tables) on what it is drawn on ...
    assert low_contrast(page, ".aiinfra-runs-view") == [], theme
    # ... and each DAG box's label on the box.
    boxes = page.evaluate(_DAG_TEXTS)
    assert boxes, "no DAG drawn"
    low = [
        (b["node"], contrast(b["fg"], b["bg"])) for b in boxes if contrast(b["fg"], b["bg"]) < AA
    ]
    assert low == [], (theme, low, boxes)


def _run_post(request) -> bool:
    # The lab's requests carry a cache-busting query: compare the path only.
    path = request.url.split("?")[0]
    return request.method == "POST" and path.endswith("aiinfra/api/pipelines/runs")


def _aiinfra(lab, *args: str) -> subprocess.CompletedProcess:
    """The CLI, as a user types it, on the lab's AIINFRA_HOME."""
    cli = Path(sys.executable).with_name("aiinfra")
    return subprocess.run(
        [str(cli), *args], env=lab.env, capture_output=True, text=True, timeout=120, cwd=lab.root
    )


def test_a_failing_run_resumed_run_from_a_step_scheduled_and_readable_in_both_themes(
    live_lab, tmp_path
):
    lab = live_lab
    sales = _pipelines(lab.root)
    launch = lab.api("aiinfra/api/pipelines/runs", "POST", {"pipeline": "sales/pipeline.yaml"})
    with browser_page(width=1400, height=900) as page:
        lab.open(page)
        page.locator(".jp-DirListing-item", has_text="sales").first.wait_for()
        hide_toasts(page)
        detail = open_run(page, launch["launch"], "failed")
        failed_id = detail.get_attribute("data-run-id")
        record = json.loads((sales / "runs" / failed_id / "run.json").read_text())

        # Item 7: host and worker name, not the address; human units; arrows; buttons.
        for name, step in record["steps"].items():
            if step["status"] == "skipped":
                continue
            where = page.locator(f'.aiinfra-step-row[data-step="{name}"] .aiinfra-step-where')
            assert where.inner_text().startswith(f"{socket.gethostname()} · worker "), name
            assert "://" not in where.inner_text()
            cost = page.locator(f'.aiinfra-step-row[data-step="{name}"] .aiinfra-step-cost')
            assert re.fullmatch(r"\d+(\.\d+)? core-(s|min|h)", cost.inner_text()), cost.inner_text()
        edges = page.locator(".aiinfra-dag-edge")
        assert edges.count() == 2
        for marker in edges.evaluate_all("els => els.map(e => e.getAttribute('marker-end'))"):
            target = marker[len("url(#") : -1]
            assert page.locator(f"marker#{target} path").count() == 1
        rerun = page.locator("button.aiinfra-rerun-failed")
        box = rerun.bounding_box()
        assert box["width"] < detail.bounding_box()["width"] / 3  # its own width, not a bar
        style = rerun.evaluate(
            "b => { const s = getComputedStyle(b); return [s.borderTopStyle, s.cursor]; }"
        )
        assert style == ["solid", "pointer"]
        # The failing cell, inline.
        assert (
            "no fixed file yet"
            in page.locator('.aiinfra-step-failure[data-step="check"]').inner_text()
        )
        screenshot(page, tmp_path, "run-view-failed.png")

        # Item 8: contrast, light then dark.
        _contrast_ok(page, "JupyterLab Light")
        _contrast_ok(page, "JupyterLab Dark")
        screenshot(page, tmp_path, "run-view-failed-dark.png")
        _contrast_ok(page, "JupyterLab Light")

        # Issue 26 item 5: Resume once the cause is fixed: check and report run, total is kept.
        (sales / "fixed").write_text("yes")
        before = {r["run_id"] for r in _runs(lab)}
        with page.expect_request(_run_post) as request:
            page.locator("button.aiinfra-resume-run").click()
        assert json.loads(request.value.post_data) == {
            "pipeline": "sales/pipeline.yaml",
            "resume": True,
        }
        resumed = _new_run(lab, before)
        page.locator(
            f'.aiinfra-run-detail[data-run-id="{resumed["run_id"]}"][data-status="ok"]'
        ).wait_for(timeout=300_000)
        resumed = next(r for r in _runs(lab) if r["run_id"] == resumed["run_id"])
        assert resumed["steps"]["check"]["status"] == "ok"
        assert resumed["steps"]["report"]["status"] == "ok"
        assert resumed["steps"]["total"]["status"] == "cached"  # kept from the failed run
        assert page.locator("button.aiinfra-resume-run").count() == 0  # nothing to resume

        # "Run from here" on report's box: after a confirmation, report runs again, alone.
        before = {r["run_id"] for r in _runs(lab)}
        page.locator('.aiinfra-dag-node[data-node="report"] .aiinfra-dag-from').click()
        confirm = page.locator(".jp-Dialog", has_text="Run from report?")
        with page.expect_request(_run_post) as request:
            confirm.locator("button.jp-mod-accept").click()
        assert json.loads(request.value.post_data) == {
            "pipeline": "sales/pipeline.yaml",
            "from": "report",
        }
        from_run = _new_run(lab, before, status="ok")
        assert from_run["steps"]["report"]["status"] == "ok"
        assert {from_run["steps"][s]["status"] for s in ("total", "check")} <= {"cached", "skipped"}

        # Issue 26 item 8: a run a schedule started is tagged, in the run view and the sidebar.
        before = {r["run_id"] for r in _runs(lab)}
        added = _aiinfra(lab, "pipeline", "schedule", "add", "sales/pipeline.yaml", "--name", "nightly", "--every", "24h")  # fmt: skip
        assert added.returncode == 0, added.stderr
        try:
            fired = _aiinfra(lab, "pipeline", "schedule", "run", "nightly")
            assert fired.returncode == 0, fired.stderr
            scheduled = _new_run(lab, before)
            row = page.locator(f'.aiinfra-runs-row[data-run-id="{scheduled["run_id"]}"]')
            row.locator('.aiinfra-scheduled[data-schedule="nightly"]').wait_for()
            row.click()
            page.locator(
                ".aiinfra-run-head .aiinfra-scheduled", has_text="scheduled: nightly"
            ).wait_for()
            _contrast_ok(page, "JupyterLab Dark")
            _contrast_ok(page, "JupyterLab Light")

            # The sidebar lists runs by their start time, latest first, scheduled ones tagged.
            page.locator('.jp-SideBar [data-id="aiinfra-sidebar"]').click()
            page.wait_for_function(
                "(id) => document.querySelector('.aiinfra-runinfo')?.dataset.runId === id",
                arg=scheduled["run_id"],
            )
            first = page.locator(".aiinfra-panel .aiinfra-runinfo").first
            assert first.locator('.aiinfra-scheduled[data-schedule="nightly"]').count() == 1
            when = first.locator(".aiinfra-run-when").inner_text()
            assert re.search(r"\d{1,2}.\d{2}", when), when
            assert scheduled["run_id"][:8] not in first.locator("summary").inner_text()
        finally:
            _aiinfra(lab, "scheduler", "stop")

        # Item 7: a run that stops before its steps (its cluster is not registered) says why,
        # with its launch's log a click away through our REST: no server path on screen.
        # (other/ has not run: its step needs the cluster, where sales/ is all cached now.)
        failed_launch = lab.api(
            "aiinfra/api/pipelines/runs",
            "POST",
            {"pipeline": "other/pipeline.yaml", "cluster": "nosuch"},
        )
        page.evaluate(
            "(launch) => window.jupyterapp.commands.execute('aiinfra:open-runs', {launch})",
            failed_launch["launch"],
        )
        stopped = page.locator(".aiinfra-run-detail .aiinfra-run-error")
        stopped.wait_for(timeout=300_000)
        assert "nosuch" in stopped.inner_text()
        stopped.locator(".aiinfra-launch-log-open").click()
        log = stopped.locator(".aiinfra-launch-log")
        log.wait_for()
        assert "nosuch" in log.inner_text()
        shown = page.locator(".aiinfra-run-detail").inner_text()
        assert str(lab.root) not in shown and ".log" not in shown
        # No Resume: it never reached a cluster, and resuming would run it elsewhere.
        assert page.locator("button.aiinfra-resume-run").count() == 0
        screenshot(page, tmp_path, "failed-launch-log.png")


def test_run_pipeline_names_its_pipeline_and_picks_another(live_lab, tmp_path):
    lab = live_lab
    _pipelines(lab.root)
    with browser_page(width=1400, height=900) as page:
        panel = lab.open_sidebar(page)
        hide_toasts(page)
        # No pipeline selected, none run yet: the file dialog asks which.
        panel.locator("button.aiinfra-run").click()
        picker = page.locator(".jp-Dialog")
        picker.locator(".jp-DirListing-item", has_text="sales").dblclick()
        picker.locator(".jp-DirListing-item", has_text="pipeline.yaml").click()
        picker.locator("button.jp-mod-accept").click()
        dialog = page.locator(".jp-Dialog:has(.aiinfra-run-form)")
        choice = dialog.locator('select[name="pipeline"]')
        choice.wait_for()
        assert choice.input_value() == "sales/pipeline.yaml"  # the dialog names its pipeline
        # Force's help reads as a line beside its box, not a one-word column.
        help_box = dialog.locator('[data-option="force"] .aiinfra-check-help').bounding_box()
        check_box = dialog.locator('input[name="force"]').bounding_box()
        assert help_box["width"] > 150 and help_box["height"] < 3 * check_box["height"]
        assert (
            abs(
                (help_box["y"] + help_box["height"] / 2)
                - (check_box["y"] + check_box["height"] / 2)
            )
            < check_box["height"]
        )
        # Schedule…: only where the Schedules panel's command exists; it gets the path.
        has = page.evaluate(
            "() => window.jupyterapp.commands.hasCommand('aiinfra:schedule-pipeline')"
        )
        assert dialog.locator("button.aiinfra-schedule-pipeline").count() == (1 if has else 0)
        screenshot(page, tmp_path, "run-dialog.png")

        # "Other file…" (a button beside the list, and its last entry): the dialog gives way to
        # a file dialog, then comes back for the file picked there.
        assert "Other file…" in choice.locator("option").all_inner_texts()
        dialog.locator("button.aiinfra-pick-file").click()
        picker = page.locator(".jp-Dialog:has(.jp-DirListing)")
        picker.wait_for()
        picker.locator(".jp-DirListing-item", has_text="other").dblclick()
        picker.locator(".jp-DirListing-item", has_text="pipeline.yaml").click()
        picker.locator("button.jp-mod-accept").click()
        dialog = page.locator(".jp-Dialog:has(.aiinfra-run-form)")
        dialog.locator('input[name="solo.k"]').wait_for()
        assert dialog.locator('select[name="pipeline"]').input_value() == "other/pipeline.yaml"
        dialog.locator("button.jp-mod-accept").click()
        page.locator('.aiinfra-run-detail[data-status="ok"]').wait_for(timeout=300_000)

        # Now other/ has run: "Run pipeline…" offers it by name, with "Other file…".
        panel.locator("button.aiinfra-run").click()
        dialog = page.locator(".jp-Dialog:has(.aiinfra-run-form)")
        choice = dialog.locator('select[name="pipeline"]')
        choice.wait_for()
        assert choice.input_value() == "other/pipeline.yaml"
        options = choice.locator("option").evaluate_all("els => els.map(e => e.textContent)")
        assert options[-1] == "Other file…"
        if not has:  # the contract with the Schedules panel: execute it with {path}
            page.evaluate(
                """() => window.jupyterapp.commands.addCommand('aiinfra:schedule-pipeline',
                     {execute: args => { window.scheduledWith = args; }})"""
            )
        dialog.locator("button.jp-mod-reject").click()
        panel.locator("button.aiinfra-run").click()
        dialog = page.locator(".jp-Dialog:has(.aiinfra-run-form)")
        dialog.locator("button.aiinfra-schedule-pipeline").click()
        dialog.wait_for(state="detached")
        if not has:
            assert page.evaluate("() => window.scheduledWith") == {"path": "other/pipeline.yaml"}
