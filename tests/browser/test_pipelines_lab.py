"""Pipelines in a real JupyterLab, driven through Debian's Chromium with Python playwright.

On a tiny two-step pipeline in tmp_path: run it from the file browser's context
menu through the dialog made from its spec, watch the run view reach ok, open an
executed notebook read-only (no kernel started, not modified), run it again from
the path picker and see that run shown as cached, then add a notebook to the
pipeline from the notebook's toolbar.

``AIINFRA_SCREENSHOTS=1`` also saves docs/pipeline-runs.png for the README.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from chromium import browser_page
from labserver import NEEDS_LAB, REPO

from aiinfra_magics.pipelines.record import hours

pytestmark = NEEDS_LAB


def _notebook(params: str, source: str) -> str:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb)


def _tiny_pipeline(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "make.ipynb").write_text(
        _notebook("n = 1", "open('made.txt', 'w').write(str(n * 2))\nprint('made', n * 2)")
    )
    (folder / "use.ipynb").write_text(_notebook("x = 0", "print('used', open('made.txt').read())"))
    (folder / "pipeline.yaml").write_text(
        "name: tiny\nsteps:\n"
        "  make:\n    notebook: make.ipynb\n    params: {n: 1}\n    products: [made.txt]\n"
        "  use:\n    notebook: use.ipynb\n    after: [make]\n"
    )
    import nbformat

    extra = nbformat.v4.new_notebook()
    extra.cells = [nbformat.v4.new_code_cell("k = 1"), nbformat.v4.new_code_cell("print(k)")]
    extra.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    (folder / "extra.ipynb").write_text(nbformat.writes(extra))


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
        news = page.locator(".jp-toast-button", has_text="No")  # JupyterLab's news prompt
        if news.count():
            news.first.click()

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
        assert make_row.locator(".aiinfra-step-where").inner_text()  # worker · devices
        # Its cost cell is run.json's figures, written as the CLI writes them.
        run_id = detail.get_attribute("data-run-id")
        cost = json.loads((folder / "runs" / run_id / "run.json").read_text())["steps"]["make"][
            "cost"
        ]
        shown = f"{hours(cost['gpu_hours'])} GPU-h · {hours(cost['core_hours'])} core-h"
        assert cost["gpu_hours"] == 0 and cost["core_hours"] > 0, cost
        assert make_row.locator(".aiinfra-step-cost").inner_text() == shown
        if os.environ.get("AIINFRA_SCREENSHOTS") == "1":
            page.screenshot(path=str(REPO / "docs" / "pipeline-runs.png"))
        else:
            page.screenshot(path=str(tmp_path / "pipeline-runs.png"))

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
        button = page.locator(".jp-NotebookPanel:not(.aiinfra-readonly) .aiinfra-add-to-pipeline")
        button.click()
        form = page.locator(".jp-Dialog .aiinfra-promote-form")
        form.locator('input[name="after.use"]').check()
        assert form.locator('input[name="pipeline"]').input_value() == "pipe/pipeline.yaml"
        assert form.locator('input[name="name"]').input_value() == "extra"
        form.locator('textarea[name="params"]').fill("k=5")
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
