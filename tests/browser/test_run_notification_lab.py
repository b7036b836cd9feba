"""A run that ends shows a JupyterLab notification, whoever started it (issue 26 item 4):
a run started from a terminal (the CLI) fails while the lab is open; the lab says so in a
notification whose "Open run" shows that run in the run view. Real lab, real Chromium."""

from __future__ import annotations

import subprocess
import sys

from chromium import browser_page
from labserver import NEEDS_LAB, screenshot
from nbfiles import notebook_text

pytestmark = NEEDS_LAB


def _failing_pipeline(folder) -> None:
    folder.mkdir(parents=True)
    (folder / "boom.ipynb").write_text(notebook_text("n = 1", "raise RuntimeError('disk full')"))
    (folder / "pipeline.yaml").write_text(
        "name: nightly\nsteps:\n  boom:\n    notebook: boom.ipynb\n    retries: 0\n"
    )


def test_a_failed_cli_run_is_notified_in_the_lab_and_opens_the_run_view(live_lab, tmp_path):
    folder = live_lab.root / "night"
    _failing_pipeline(folder)
    with browser_page() as page:
        live_lab.open_sidebar(page)  # the sidebar's socket is open: the server pushes to it
        run = subprocess.run(
            [sys.executable, "-m", "aiinfra_magics", "pipeline", "run", str(folder / "pipeline.yaml"),
             "--workers", "1"],
            capture_output=True, text=True, timeout=300, env=live_lab.env,
        )  # fmt: skip
        assert run.returncode == 1, run.stderr[-3000:]
        run_id = next((folder / "runs").glob("*/run.json")).parent.name

        toast = page.locator(".jp-toast-message", has_text="Pipeline nightly failed")
        toast.wait_for()
        text = toast.inner_text()
        assert "boom:" in text and "RuntimeError: disk full" in text
        screenshot(page, tmp_path, "run-notification.png")
        page.locator(".jp-toast-button", has_text="Open run").first.click()
        view = page.locator("#aiinfra-runs")
        view.wait_for()
        view.get_by_text(run_id).first.wait_for()
