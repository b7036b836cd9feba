"""Regenerate the README's screenshots (``make screenshots``; not part of ``make test``).

A real ``jupyter lab`` with this checkout's labextension, a local cluster started the way a
notebook would, a little work on it, and Chromium: the sidebar with the running cluster,
two of its dashboard plots as panels and the host chart (docs/lab.png), and the same in the
dark theme (docs/lab-dark.png).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "tests" / "browser"))

from conftest import CHROMIUM, CHROMIUM_ARGS, LIVE_TOKEN, Lab  # noqa: E402


def main() -> int:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="aiinfra-screenshots-"))
    os.environ["AIINFRA_HOME"] = str(tmp / "home")
    lab = Lab(tmp, base_url="/", env={"AIINFRA_HOME": str(tmp / "home")})
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec

    manager = ClusterManager()
    manager.start(
        ClusterSpec.from_options({"name": "demo", "backend": "local", "workers": 2, "threads": 1})
    )
    client = manager.connect("demo")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(f"{lab.url}lab?token={LIVE_TOKEN}")
            page.locator('.jp-SideBar [data-id="aiinfra-sidebar"]').click()
            card = page.locator('.aiinfra-cluster[data-name="demo"]')
            card.wait_for()
            card.locator("details.aiinfra-panes > summary").click()
            for plot in ("individual-task-stream", "individual-progress"):
                card.locator(f'.aiinfra-pane-button[data-plot="{plot}"]').click()
                page.frame_locator(f'.aiinfra-dashboard-tab[data-plot="{plot}"] iframe').locator(
                    "body .bk-Figure, body canvas"
                ).first.wait_for()
            page.locator('.aiinfra-chart-button[data-chart="machine"]').click()
            # Work for the task stream and progress bars to show, and samples for the chart.
            import dask.array as da

            future = client.compute((da.random.random((6000, 6000), chunks=500) ** 2).sum())
            page.wait_for_timeout(6000)
            future.result()
            # JupyterLab's "news?" toast is not part of the picture.
            page.add_style_tag(content=".Toastify { display: none !important; }")
            page.screenshot(path=str(DOCS / "lab.png"))
            page.evaluate(
                "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
            )
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(DOCS / "lab-dark.png"))
            browser.close()
    finally:
        client.close()
        manager.stop("demo")
        lab.stop()
    print(f"wrote {DOCS / 'lab.png'} and {DOCS / 'lab-dark.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
