"""Pipelines in a real JupyterLab, driven through Debian's Chromium with Python playwright.

On a tiny two-step pipeline in tmp_path: run it from the file browser's context
menu through the dialog made from its spec (a bad value keeps the form open with
the error under its field), watch the run view reach ok, open an executed notebook
read-only (no kernel started, not modified, titled and bannered as a run's output,
what cannot act disabled), run it again from the path picker and see that run shown
as cached, then add a notebook to the pipeline from the notebook's toolbar (bad
params and a pipeline outside the root keep that form open too).

The screenshots go to tmp (``make screenshots`` makes the README's from docs/screenshots.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from chromium import browser_page
from labserver import NEEDS_LAB, decline_news, field_error, screenshot
from nbfiles import notebook_text

pytestmark = NEEDS_LAB


def _tiny_pipeline(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "make.ipynb").write_text(
        notebook_text("n = 1", "open('made.txt', 'w').write(str(n * 2))\nprint('made', n * 2)")
    )
    (folder / "use.ipynb").write_text(
        notebook_text("x = 0", "print('used', open('made.txt').read())")
    )
    (folder / "pipeline.yaml").write_text(
        "name: tiny\nsteps:\n"
        "  make:\n    notebook: make.ipynb\n    params: {n: 1}\n    products: [made.txt]\n"
        "  use:\n    notebook: use.ipynb\n    after: [make]\n"
    )
    (folder / "extra.ipynb").write_text(notebook_text("k = 1", "print(k)", tagged=False))


@pytest.fixture
def lab(live_lab):
    """The live lab, its root holding the tiny pipeline in pipe/."""
    _tiny_pipeline(live_lab.root / "pipe")
    return live_lab


def _open_folder(page, name: str) -> None:
    page.locator(".jp-DirListing-item", has_text=name).first.dblclick()
    page.locator(".jp-BreadCrumbs", has_text=name).wait_for()


def test_run_dialog_run_view_read_only_notebook_and_add_to_pipeline(lab, tmp_path):
    folder = lab.root / "pipe"
    with browser_page() as page:
        lab.open(page)
        page.locator(".jp-DirListing-item", has_text="pipe").first.wait_for()
        decline_news(page)

        # 6. Right-click pipeline.yaml -> Run Pipeline: the dialog is made from the spec.
        _open_folder(page, "pipe")
        page.locator('.jp-DirListing-item[data-file-type="yaml"]').click(button="right")
        page.locator(".lm-Menu-itemLabel", has_text="aiinfra: Run Pipeline").click()
        dialog = page.locator(".jp-Dialog")
        dialog.locator('.aiinfra-param[data-step="make"][data-param="n"]').wait_for()
        assert dialog.locator(".aiinfra-param").count() == 1  # only make declares params
        only = dialog.locator('select[name="only"] option').evaluate_all(
            "els => els.map(e => e.value)"
        )
        assert only == ["", "make", "use"]
        # Issue 29 item 2: a bad value keeps the form open, the value kept, the error under it.
        dialog.locator('input[name="make.n"]').fill("twenty")
        dialog.locator("button.jp-mod-accept").click()
        error = field_error(dialog, "make.n")
        assert "make.n" in error.inner_text() and "integer" in error.inner_text()
        assert dialog.locator('input[name="make.n"]').input_value() == "twenty"
        assert page.locator(".jp-Dialog").count() == 1  # no second, separate error box
        dialog.locator('input[name="make.n"]').fill("21")
        dialog.locator("button.jp-mod-accept").click()

        # 7. The run view opens and follows the run to ok.
        detail = page.locator(".aiinfra-run-detail[data-run-id]")
        detail.wait_for(timeout=120_000)
        page.wait_for_selector('.aiinfra-run-detail[data-status="ok"]', timeout=240_000)
        states = page.locator(".aiinfra-dag-node").evaluate_all(
            "els => els.map(e => e.dataset.node + '=' + e.dataset.status)"
        )
        assert states == ["make=ok", "use=ok"]
        assert (folder / "made.txt").read_text() == "42"  # the form's typed value reached it
        make_row = page.locator('.aiinfra-step-row[data-step="make"]')
        assert make_row.locator(".aiinfra-step-duration").inner_text().endswith(" s")
        assert make_row.locator(".aiinfra-step-attempts").inner_text() == "1"
        # The host and the worker's name, not its address (issue 29 item 7).
        run_id = detail.get_attribute("data-run-id")
        record = json.loads((folder / "runs" / run_id / "run.json").read_text())["steps"]["make"]
        where = make_row.locator(".aiinfra-step-where").inner_text()
        assert where.startswith(f"{record['host']} · worker {record['worker_name']}"), where
        assert "://" not in where
        # Its cost cell is run.json's core-hours in a unit a person reads (two digits).
        cost = record["cost"]
        assert cost["gpu_hours"] == 0 and cost["core_hours"] > 0, cost
        shown = make_row.locator(".aiinfra-step-cost").inner_text()
        number, unit = re.fullmatch(r"([\d.]+) core-(s|min|h)", shown).groups()
        seconds = float(number) * {"s": 1, "min": 60, "h": 3600}[unit]
        assert abs(seconds - cost["core_hours"] * 3600) <= 0.05 * seconds, (shown, cost)
        screenshot(page, tmp_path, "pipeline-run-ok.png")

        # An executed notebook opens read-only, with no kernel and unmodified.
        assert lab.api("api/kernels") == []
        make_row.locator("button.aiinfra-open-executed").click()
        panel = page.locator(".jp-NotebookPanel.aiinfra-readonly")
        panel.wait_for()
        panel.locator(".jp-OutputArea-output", has_text="made 42").wait_for()
        # Every cell's editor is read-only (JupyterLab marks them jp-mod-readOnly).
        assert panel.locator(".jp-Cell .cm-editor").count() >= 2
        assert panel.locator(".jp-Cell .cm-editor:not(.jp-mod-readOnly)").count() == 0
        assert lab.api("api/kernels") == []
        assert lab.api("api/sessions") == []
        tab = page.locator(".lm-TabBar-tab.lm-mod-current", has_text="make")
        assert "jp-mod-dirty" not in (tab.get_attribute("class") or "")
        # Issue 29 item 6: it says what it is, in the tab and in a banner ...
        assert tab.get_attribute("data-aiinfra-suffix") == f" · run {run_id[:15]} · read-only"
        banner = panel.locator(".aiinfra-readonly-banner")
        assert banner.inner_text().startswith(
            f"make.ipynb, run {run_id}: executed output, read-only"
        )
        assert "edit pipe/make.ipynb and run the pipeline again" in banner.inner_text()
        # ... and what cannot act here is disabled: run, cut, paste, insert, add to pipeline.
        toolbar = panel.locator(".jp-Toolbar").first
        names = ["run", "cut", "paste", "insert", "aiinfra-add-to-pipeline", "kernelName"]
        if toolbar.locator('[data-jp-item-name="aiinfra-schedule-notebook"]').count():
            names.append("aiinfra-schedule-notebook")  # the Schedules panel's button, when there
        for name in names:
            item = toolbar.locator(f'[data-jp-item-name="{name}"]')
            assert item.get_attribute("aria-disabled") == "true", name
            control = item.locator("jp-button, button, select").first
            assert control.evaluate("e => e.disabled === true"), name
        copy = toolbar.locator('[data-jp-item-name="copy"] jp-button')
        assert copy.evaluate("e => e.disabled === false")  # copying out is fine
        # Keys that would cut, paste, delete or run do nothing, and the banner says why.
        cells = panel.locator(".jp-Cell").count()
        panel.locator(".jp-Cell").first.click()
        page.keyboard.press("Escape")
        for key in ("x", "d", "d", "v", "b", "Shift+Enter"):
            page.keyboard.press(key)
        assert panel.locator(".jp-Cell").count() == cells
        assert "aiinfra-mod-flash" in (banner.get_attribute("class") or "")
        # Nor does the lab's context menu (Cut Cell, Paste, Run...) open over its cells.
        panel.locator(".jp-Cell").first.click(button="right")
        assert page.locator(".lm-Menu").count() == 0
        assert lab.api("api/kernels") == []
        assert "jp-mod-dirty" not in (tab.get_attribute("class") or "")
        screenshot(page, tmp_path, "executed-read-only.png")
        # "Open make.ipynb" opens the source, editable.
        banner.locator("button.aiinfra-open-source").click()
        page.locator(
            ".lm-TabBar-tab.lm-mod-current:not(.aiinfra-readonly-tab)", has_text="make.ipynb"
        ).wait_for()

        # The same pipeline again, picked with the path picker: nothing changed -> cached.
        # Not awaited: the command resolves only once its dialogs are done.
        page.evaluate("() => { window.jupyterapp.commands.execute('aiinfra:pick-pipeline'); }")
        picker = page.locator(".jp-Dialog")
        picker.locator(".jp-DirListing-item", has_text="pipeline.yaml").click()
        picker.locator("button.jp-mod-accept").click()
        page.locator(".jp-Dialog .aiinfra-run-form").wait_for()
        page.locator('.jp-Dialog input[name="make.n"]').fill("21")  # as the first run
        page.locator(".jp-Dialog button.jp-mod-accept").click()
        cached = page.locator(".aiinfra-runs-row.aiinfra-runs-cached")
        cached.wait_for(timeout=120_000)
        groups = page.locator(".aiinfra-runs-group")
        assert groups.count() == 1
        assert groups.locator(".aiinfra-runs-row").count() == 2  # the run and its cached repeat

        # 8. Add a notebook to the pipeline from its toolbar.
        page.locator(".jp-DirListing-item", has_text="extra.ipynb").dblclick()
        button = page.locator(
            ".jp-NotebookPanel:not(.aiinfra-readonly):not(.lm-mod-hidden) .aiinfra-add-to-pipeline"
        )
        button.click()
        form = page.locator(".jp-Dialog .aiinfra-promote-form")
        form.locator('input[name="after.use"]').check()
        assert form.locator('input[name="pipeline"]').input_value() == "pipe/pipeline.yaml"
        assert form.locator('input[name="name"]').input_value() == "extra"
        # Issue 29 item 2: bad params, then a pipeline outside the root (the server's 400):
        # the form stays, with what was typed, the error under the field.
        form.locator('textarea[name="params"]').fill("bad key=5")
        page.locator(".jp-Dialog button.jp-mod-accept").click()
        error = field_error(form, "params")
        assert "KEY a Python identifier" in error.inner_text()
        assert form.locator('textarea[name="params"]').input_value() == "bad key=5"
        form.locator('textarea[name="params"]').fill("k=5")
        form.locator('input[name="pipeline"]').fill("../elsewhere/pipeline.yaml")
        page.locator(".jp-Dialog button.jp-mod-accept").click()
        error = field_error(form, "pipeline")
        assert "inside the server's root" in error.inner_text()
        assert form.locator('textarea[name="params"]').input_value() == "k=5"
        assert form.locator('input[name="after.use"]').is_checked()
        assert page.locator(".jp-Dialog").count() == 1
        form.locator('input[name="pipeline"]').fill("pipe/pipeline.yaml")
        page.locator(".jp-Dialog button.jp-mod-accept").click()
        page.locator(".jp-Dialog", has_text="Step extra added").wait_for()
        page.locator(".jp-Dialog button.jp-mod-accept").click()
        spec = yaml.safe_load((folder / "pipeline.yaml").read_text())
        assert spec["steps"]["extra"] == {
            "notebook": "extra.ipynb",
            "after": ["use"],
            "params": {"k": 5},
        }
        described = lab.api("aiinfra/api/pipelines/spec?path=pipe/pipeline.yaml")
        assert [s["name"] for s in described["steps"]] == ["make", "use", "extra"]
