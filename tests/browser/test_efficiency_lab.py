"""Issue 28 in a real JupyterLab and Chromium: efficiency you can see.

- A cluster whose held GPU idles (the fake NVML device at 3 %: no GPU can exist here) past a
  short configured waste window shows the backend's waste warning on its card, and its
  efficiency beside what it held, each figure labelled; AA contrast in both themes.
- The sidebar's charts switch from this machine to that cluster: its hosts open as a
  dockable panel (one card per host, each GPU a tile) that a reload restores.
- The run view shows each step's efficiency and peak memory against its limit, and the
  run's right-sizing suggestion, as run.json records them.

Screenshots go to tmp, or $AIINFRA_SCREENSHOTS.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from chromium import browser_page
from contrast import low_contrast
from labserver import NEEDS_LAB, hide_toasts, open_run, screenshot
from nbfiles import notebook_text
from nvml_fake import load_feed
from waiting import wait_for

pytestmark = NEEDS_LAB

TESTS = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "aiinfra_magics"]


def _gpu_env(lab, tmp_path: Path) -> dict[str, str]:
    """The lab's environment, whose cluster workers read the fake NVML device at 3 % and
    hold one GPU each (as tests/metrics/test_waste.py starts them)."""
    feed = load_feed()
    feed["ticks"] = [dict(feed["ticks"][0], util=[3, 0])] * 3
    (tmp_path / "feed.json").write_text(json.dumps(feed))
    return {
        **lab.env,
        "PYTHONPATH": os.pathsep.join(
            [str(TESTS / "metrics" / "fakenvml"), os.environ.get("PYTHONPATH", "")]
        ),
        "AIINFRA_TEST_NVML_FEED": str(tmp_path / "feed.json"),
        "DASK_DISTRIBUTED__DIAGNOSTICS__NVML": "False",
        "DASK_DISTRIBUTED__WORKER__RESOURCES__GPU": "1",
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=180)


def _dark(page) -> None:
    page.evaluate(
        "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    page.wait_for_function(
        """() => getComputedStyle(document.querySelector('.aiinfra-sidebar')).backgroundColor
                   !== 'rgb(255, 255, 255)'"""
    )


def test_card_warns_of_idle_gpus_and_charts_switch_to_the_clusters_hosts(live_lab, tmp_path):
    env = _gpu_env(live_lab, tmp_path)
    started = _cli(
        env, "cluster", "start", "idle", "--backend", "local", "--workers", "1",
        "--threads", "1", "--waste-window", "2s",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        # The backend's own waste path: the listing the card reads carries the warning.
        [listed] = wait_for(
            lambda: [
                c for c in live_lab.api("aiinfra/api/clusters")["clusters"]
                if c["name"] == "idle" and c["warnings"]
            ],
            what="the waste warning in the listing",
        )  # fmt: skip
        warning = listed["warnings"][0]
        assert warning.startswith("wasteful: 1 GPU(s) held under 10% utilisation for ")
        with browser_page(1400, 900) as page:
            panel = live_lab.open_sidebar(page)
            hide_toasts(page)
            card = panel.locator('.aiinfra-cluster[data-name="idle"]')
            shown = card.locator(".aiinfra-warning").first
            shown.wait_for()
            assert shown.inner_text().startswith("warning: wasteful: 1 GPU(s) held under 10%")
            # Efficiency beside what was held, each figure labelled and whole.
            card.locator(".aiinfra-efficiency").wait_for()
            parts = [
                re.sub(r"[\d.]+", "N", p.strip(" ·"))
                for p in card.locator(".aiinfra-efficiency-part").all_inner_texts()
            ]
            assert parts[:2] == ["CPU N% of N core-h", "GPU N% of N GPU-h"], parts
            assert all(
                p.startswith("peak memory N GiB of N GiB") or p.startswith("peak memory N MiB")
                for p in parts[2:]
            ), parts
            # The usage line above it keeps its own figures.
            used = [p.strip(" ·") for p in card.locator(".aiinfra-cost-part").all_inner_texts()]
            assert [re.sub(r"[\d.]+", "N", p) for p in used] == [
                "N worker-h", "N core-h", "N GPU-h", "N GB-h memory",
            ], used  # fmt: skip
            clipped = card.locator(".aiinfra-efficiency-part").evaluate_all(
                "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"
            )
            assert clipped == []
            assert low_contrast(page, '.aiinfra-cluster[data-name="idle"]') == []
            screenshot(page, tmp_path, "card-waste-warning.png")

            # The charts: this machine by default, then the cluster's hosts.
            source = panel.locator(".aiinfra-chart-source select")
            assert source.input_value() == ""
            assert panel.locator('.aiinfra-chart-button[data-chart="machine"]').count() == 1
            source.select_option("idle")
            panel.locator('.aiinfra-chart-button[data-chart="hosts"]').click()
            hosts = page.locator('.aiinfra-cluster-charts[data-cluster="idle"]')
            tile = hosts.locator('.aiinfra-host-card .aiinfra-gpu-tile[data-gpu="0"]')
            tile.get_by_text("GPU 0: 3%").wait_for()
            hosts.locator('.aiinfra-host-card .aiinfra-spark[data-title="CPU"]').first.wait_for()
            assert "wasteful" in hosts.locator(".aiinfra-warning").first.inner_text()
            screenshot(page, tmp_path, "cluster-hosts.png")
            tile.click()
            hosts.locator('.aiinfra-gpu-enlarged[data-gpu="0"]').get_by_text(
                "Utilisation: 3%"
            ).wait_for()
            screenshot(page, tmp_path, "cluster-gpu-enlarged.png")

            # Dark theme: the card's warning and figures and the hosts panel keep AA.
            _dark(page)
            assert low_contrast(page, '.aiinfra-cluster[data-name="idle"]') == []
            assert low_contrast(page, '.aiinfra-cluster-charts[data-cluster="idle"]') == []
            screenshot(page, tmp_path, "cluster-hosts-dark.png")

            # Restored after a reload, like this machine's charts, once the layout is saved.
            wait_for(
                lambda: (
                    "aiinfra-chart:hosts:idle"
                    in json.dumps(live_lab.api("lab/api/workspaces/default"))
                ),
                what="the hosts panel in the saved layout",
            )
            page.reload()
            page.locator(
                '.aiinfra-cluster-charts[data-cluster="idle"] .aiinfra-host-card'
            ).wait_for()
    finally:
        _cli(env, "cluster", "stop", "idle")


def test_run_view_shows_each_steps_efficiency_and_the_right_sizing(live_lab, tmp_path):
    folder = live_lab.root / "sized"
    folder.mkdir()
    (folder / "burn.ipynb").write_text(notebook_text("n = 1", "x = sum(range(2 * 10**6))"))
    (folder / "pipeline.yaml").write_text(
        "name: sized\nsteps:\n  burn:\n    notebook: burn.ipynb\n"
    )
    launch = live_lab.api("aiinfra/api/pipelines/runs", "POST", {"pipeline": "sized/pipeline.yaml"})
    with browser_page(1400, 900) as page:
        live_lab.open(page)
        page.locator(".jp-LabShell").wait_for()
        hide_toasts(page)
        detail = open_run(page, launch["launch"], "ok")
        run_id = detail.get_attribute("data-run-id")
        record = json.loads((folder / "runs" / run_id / "run.json").read_text())
        cost = record["steps"]["burn"]["cost"]
        row = detail.locator('.aiinfra-step-row[data-step="burn"]')
        # The step's CPU efficiency as run.json has it, and its peak memory against its limit.
        efficiency = row.locator(".aiinfra-step-efficiency")
        assert efficiency.inner_text() == f"CPU {round(cost['cpu_efficiency'] * 100)}%"
        assert efficiency.get_attribute("title").startswith("CPU ")
        assert re.fullmatch(
            r"[\d.]+ [KMG]iB of [\d.]+ GiB", row.locator(".aiinfra-step-peak").inner_text()
        )
        headers = detail.locator(".aiinfra-steps th").all_inner_texts()
        assert "efficiency" in [h.strip().lower() for h in headers]
        # The run's right-sizing, as the run recorded it.
        [suggestion] = record["suggestions"]
        shown = detail.locator('.aiinfra-suggestion[data-step="burn"]')
        assert shown.inner_text() == suggestion["text"]
        assert detail.locator(".aiinfra-run-efficiency").inner_text().startswith("CPU ")
        screenshot(page, tmp_path, "run-view-efficiency.png")
        colour = "() => getComputedStyle(document.querySelector('.aiinfra-run-detail')).color"
        for theme in ("light", "dark"):
            if theme == "dark":
                light = page.evaluate(colour)
                page.evaluate(
                    "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
                )
                page.wait_for_function(f"() => ({colour})() !== {json.dumps(light)}")
            for part in (".aiinfra-steps", ".aiinfra-run-sizing"):
                assert low_contrast(page, f".aiinfra-run-detail {part}") == [], (theme, part)
        screenshot(page, tmp_path, "run-view-efficiency-dark.png")
