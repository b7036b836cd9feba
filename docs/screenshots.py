"""Regenerate the README's screenshots (``make screenshots``; not part of ``make test``).

A real ``jupyter lab`` with this checkout's labextension and Chromium:

- a local cluster started the way a notebook would, with a little work on it: the sidebar
  with the running cluster, two of its dashboard plots as panels and the host chart
  (docs/lab.png), and the same in the dark theme (docs/lab-dark.png);
- a small pipeline (prepare, a two-value grid of train, evaluate) run twice from the REST
  API the lab uses, the second time with a target its evaluate step misses: the run view
  of that failed run, its DAG, the failing cell and Resume (docs/pipeline-runs.png), and
  the same in the dark theme (docs/pipeline-runs-dark.png).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent / "tests" / "browser"), str(DOCS.parent / "tests")]

from chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from labserver import LIVE_TOKEN, Lab, hide_toasts, open_run  # noqa: E402
from nbfiles import notebook_text  # noqa: E402
from waiting import wait_for  # noqa: E402


def _theme(page, theme: str) -> None:
    page.evaluate(
        f"() => window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})"
    )
    light = "true" if theme == "JupyterLab Light" else "false"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
    page.locator("#jupyterlab-splash").wait_for(state="detached")
    page.wait_for_timeout(1500)  # the theme's stylesheet applied everywhere (a picture only)


def _demo_pipeline(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "prepare.ipynb").write_text(
        notebook_text(
            "n = 2000",
            "import random\nrandom.seed(0)\nrows = [random.random() for _ in range(n)]\n"
            "open('data.csv', 'w').write('\\n'.join(map(str, rows)))\nprint(len(rows), 'rows')",
        )
    )
    (folder / "train.ipynb").write_text(
        notebook_text(
            "lr = 0.1",
            "import json\nrows = [float(x) for x in open('data.csv')]\n"
            "accuracy = round(0.8 + lr * sum(rows) / len(rows) / 5, 3)\n"
            "json.dump({'lr': lr, 'accuracy': accuracy}, open(f'model-{lr}.json', 'w'))\n"
            "print('accuracy', accuracy)",
        )
    )
    (folder / "evaluate.ipynb").write_text(
        notebook_text(
            "target = 0.5",
            "import glob, json\nbest = max(json.load(open(p))['accuracy'] "
            "for p in glob.glob('model-*.json'))\n"
            "if best < target:\n"
            "    raise ValueError(f'best accuracy {best} is below the target {target}')\n"
            "print('best', best)",
        )
    )
    (folder / "pipeline.yaml").write_text(
        "name: forecast\n"
        "steps:\n"
        "  prepare:\n    notebook: prepare.ipynb\n    params: {n: 2000}\n"
        "    products: [data.csv]\n"
        "  train:\n    notebook: train.ipynb\n    after: [prepare]\n"
        "    grid: {lr: [0.1, 0.01]}\n    products: ['model-{lr}.json']\n"
        "  evaluate:\n    notebook: evaluate.ipynb\n    after: [train]\n    retries: 0\n"
        "    params: {target: 0.5}\n"
    )


def cluster_pictures(page, lab: Lab) -> list[Path]:
    from aiinfra_magics.clusters.manager import ClusterManager
    from aiinfra_magics.clusters.spec import ClusterSpec

    manager = ClusterManager()
    manager.start(
        ClusterSpec.from_options({"name": "demo", "backend": "local", "workers": 2, "threads": 1})
    )
    client = manager.connect("demo")
    try:
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
        hide_toasts(page)
        page.screenshot(path=str(DOCS / "lab.png"))
        _theme(page, "JupyterLab Dark")
        page.screenshot(path=str(DOCS / "lab-dark.png"))
        _theme(page, "JupyterLab Light")
    finally:
        client.close()
        manager.stop("demo")
    return [DOCS / "lab.png", DOCS / "lab-dark.png"]


def pipeline_pictures(page, lab: Lab) -> list[Path]:
    _demo_pipeline(lab.root / "forecast")
    body = {"pipeline": "forecast/pipeline.yaml"}
    for target in (0.5, 0.9):  # the second run misses its target: evaluate fails
        launch = lab.api(
            "aiinfra/api/pipelines/runs", "POST", {**body, "params": {"evaluate.target": target}}
        )

        def ended(launch=launch):
            view = lab.api(f"aiinfra/api/pipelines/runs/{launch['launch']}")
            return view if view["status"] != "running" else None

        ran = wait_for(ended, timeout=600, what="the demo run to end")
    page.goto(f"{lab.url}lab?token={LIVE_TOKEN}")
    page.wait_for_function("() => !!window.jupyterapp")
    # Once the layout is restored (the cluster panes of the first pictures): close them all.
    page.evaluate(
        """() => window.jupyterapp.restored.then(
                   () => window.jupyterapp.commands.execute('application:close-all'))"""
    )
    hide_toasts(page)
    open_run(page, ran["run_id"], "failed").locator(".aiinfra-cell-traceback").wait_for()
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")  # the run view's whole width
    page.mouse.move(0, 0)  # no hover highlight in the picture
    page.screenshot(path=str(DOCS / "pipeline-runs.png"))
    _theme(page, "JupyterLab Dark")
    page.screenshot(path=str(DOCS / "pipeline-runs-dark.png"))
    _theme(page, "JupyterLab Light")
    return [DOCS / "pipeline-runs.png", DOCS / "pipeline-runs-dark.png"]


def main(argv: list[str]) -> int:
    """``docs/screenshots.py [clusters|pipelines]``: both sets of pictures, or one."""
    from playwright.sync_api import sync_playwright

    wanted = set(argv) or {"clusters", "pipelines"}

    tmp = Path(tempfile.mkdtemp(prefix="aiinfra-screenshots-"))
    os.environ["AIINFRA_HOME"] = str(tmp / "home")
    lab = Lab(tmp, base_url="/", env={"AIINFRA_HOME": str(tmp / "home")})
    written: list[Path] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                if "clusters" in wanted:
                    page = browser.new_page(viewport={"width": 1600, "height": 900})
                    page.set_default_timeout(120_000)
                    written += cluster_pictures(page, lab)
                if "pipelines" in wanted:
                    page = browser.new_page(viewport={"width": 1400, "height": 860})
                    page.set_default_timeout(120_000)
                    written += pipeline_pictures(page, lab)
            finally:
                browser.close()
    finally:
        lab.stop()
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
