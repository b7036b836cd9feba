"""Issue 29 items 3, 4, 8, 9 and 10 in a real JupyterLab, through Chromium at 1400x900.

- The dashboard plots: collapsed until opened, grouped, filtered, whole titles, exactly
  what the cluster's scheduler serves (its ``individual-plots.json``) but the GPU plots of
  a cluster without GPUs, and bounded: the next card stays on screen.
- GPU chart buttons only where the server reports GPUs (the reason shown otherwise).
- The card at the sidebar's default width: every figure says what it is, the usage takes
  at most two lines, every action has a visible label (two rows at most).
- Every text of the sidebar keeps WCAG AA contrast, light and dark theme.
- The start form: declared defaults as placeholders, one font size, Max GPU-hours in view
  without scrolling, and the workers range each dialog says.

Screenshots go to tmp, or $AIINFRA_SCREENSHOTS.
"""

from __future__ import annotations

import json
import re
import urllib.request

from chromium import browser_page
from contrast import AA, contrast, page_text_colours
from labserver import NEEDS_LAB, screenshot

pytestmark = NEEDS_LAB

WIDTH, HEIGHT = 1400, 900
GPU_PLOT = re.compile(r"gpu|rmm")  # Dask's GPU plots (the rmm pool is GPU memory)


def _served_plots(lab, name: str) -> dict[str, str]:
    """The cluster's own individual-plots.json, straight from its scheduler (loopback)."""
    link = lab.api(f"aiinfra/api/clusters/{name}")["dashboard_link"]
    root = link.rsplit("/", 1)[0]
    with urllib.request.urlopen(f"{root}/individual-plots.json", timeout=60) as answer:
        return json.loads(answer.read())


def _dask_label(title: str) -> str:
    """Dask's title as the sidebar shows it: whole, without 'Individual ', acronyms as Dask's page."""
    label = title.removeprefix("Individual ")
    for word, acronym in (("Cpu", "CPU"), ("Gpu", "GPU"), ("Rmm", "RMM")):
        label = re.sub(rf"\b{word}\b", acronym, label)
    return label


def _rows(locator) -> int:
    return len(
        set(locator.evaluate_all("els => els.map(e => Math.round(e.getBoundingClientRect().top))"))
    )


def _clipped(locator) -> list[str]:
    """Texts whose element is too small for them (cut or hidden), by their own measure."""
    return locator.evaluate_all(
        """els => els.filter(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1
                     || getComputedStyle(e).display === 'none').map(e => e.textContent)"""
    )


def _assert_aa(page) -> None:
    """Every text in the sidebar (badges, notes, buttons, plot list) reaches WCAG AA."""
    texts = page_text_colours(page, ".aiinfra-panel")
    kinds = {name for t in texts for name in (t["cls"] or "").split()}
    assert {"aiinfra-status", "aiinfra-live", "aiinfra-pane-button"} <= kinds, kinds
    low = [(round(contrast(t["fg"], t["bg"]), 2), t) for t in texts]
    assert [x for x in low if x[0] < AA] == []


def test_plots_card_charts_and_contrast(live_lab, tmp_path):
    for name, workers in (("first", 2), ("second", 1)):
        live_lab.api(
            "aiinfra/api/clusters", "POST", {"name": name, "workers": workers, "threads": 1}
        )
    served = _served_plots(live_lab, "first")
    with browser_page(WIDTH, HEIGHT) as page:
        panel = live_lab.open_sidebar(page)
        news = page.locator(".jp-toast-button", has_text="No")  # JupyterLab's news prompt
        card = panel.locator('.aiinfra-cluster[data-name="first"]')
        second = panel.locator('.aiinfra-cluster[data-name="second"]')
        second.wait_for()
        page.wait_for_function(
            """() => document.querySelector('.aiinfra-cluster[data-name="first"]')
                       .textContent.includes('2 workers')"""
        )
        if news.count():
            news.first.click()

        # Item 4: GPU charts offered only with GPUs; without, the one reason and the host chart.
        gpus = live_lab.api("aiinfra/api/metrics/gpu")["gpus"]
        charts = panel.locator(".aiinfra-chart-button").evaluate_all(
            "els => els.map(e => e.dataset.chart)"
        )
        if gpus:
            assert charts == ["gpu-utilization", "gpu-memory", "gpu-pcie", "gpu-nvlink", "machine"]
        else:
            assert charts == ["machine"]
            assert panel.locator(".aiinfra-no-gpu").inner_text().startswith("No GPU")

        # Item 10: the card at the default width. Every figure says what it is ...
        summary = card.locator(".aiinfra-summary-part").all_inner_texts()
        assert [re.sub(r"[\d.]+", "N", s.strip(" ·")) for s in summary] == [
            "N workers",
            "N threads",
            "N GiB memory",
        ], summary
        card.locator(".aiinfra-cost").wait_for()
        used = [p.strip(" ·") for p in card.locator(".aiinfra-cost-part").all_inner_texts()]
        assert [re.sub(r"[\d.]+", "N", p) for p in used] == [
            "N worker-h",
            "N core-h",
            "N GB-h memory",  # no GPU-h line on a cluster without GPUs
        ], used
        # ... the usage takes at most two lines, every action is labelled and whole.
        assert _rows(card.locator(".aiinfra-cost-label, .aiinfra-cost-part")) <= 2
        actions = card.locator(".aiinfra-actions button")
        labels = card.locator(".aiinfra-action-label")
        assert labels.all_inner_texts() == ["Dashboard", "Connect", "Scale", "Adapt", "Stop"]
        assert _clipped(labels) == []
        assert _rows(actions) == 2
        names = actions.evaluate_all("els => els.map(e => e.textContent)")  # accessible names
        assert names == ["Dashboard", "Connect", "Scale", "Adapt", "Stop"]
        screenshot(page, tmp_path, "card.png")

        # Item 3: the plots, collapsed until opened.
        details = card.locator("details.aiinfra-panes")
        assert details.evaluate("d => d.open") is False
        assert card.locator(".aiinfra-pane-button").count() == 0
        details.locator("summary").click()
        card.locator(".aiinfra-plot-group").first.wait_for()
        buttons = card.locator(".aiinfra-pane-button")
        shown = dict(
            zip(
                buttons.evaluate_all("els => els.map(e => e.dataset.plot)"),
                buttons.all_inner_texts(),
            )
        )
        # Exactly what the scheduler serves, by its whole titles, less its GPU plots here.
        wanted = {
            path.lstrip("/"): _dask_label(title)
            for title, path in served.items()
            if gpus or not GPU_PLOT.search(path)
        }
        assert shown == wanted
        hidden = len(served) - len(wanted)
        if hidden:
            note = card.locator(".aiinfra-plots-hidden").inner_text()
            assert note == f"{hidden} GPU plots not offered: no worker of first reports a GPU."
        assert "Workers Memory Timeseries" in shown.values()  # not cut to "Workers Memory"
        assert "Aggregate Time Per Action" in shown.values()
        assert _clipped(buttons) == []  # whole titles: wrapped, never cut
        # Grouped, in a fixed order, each plot where a reader looks for it.
        groups = card.locator(".aiinfra-plot-group").evaluate_all(
            "els => els.map(e => e.dataset.group)"
        )
        order = ["tasks", "workers", "memory", "network", "gpu", "other"]
        assert groups == [g for g in order if g != "gpu" or gpus]
        group_of = dict(
            card.locator(".aiinfra-pane-button").evaluate_all(
                "els => els.map(e => [e.dataset.plot, e.closest('[data-group]').dataset.group])"
            )
        )
        assert group_of["individual-task-stream"] == "tasks"
        assert group_of["individual-workers-memory-timeseries"] == "memory"
        assert group_of["individual-bandwidth-workers"] == "network"
        assert group_of["individual-workers-cpu-timeseries"] == "workers"
        assert card.locator(".aiinfra-plot-group-title").first.inner_text() == "TASKS"
        # Bounded: the list scrolls inside the card and the next card stays on screen.
        box = card.locator(".aiinfra-plot-groups")
        assert box.evaluate("e => e.scrollHeight > e.clientHeight")
        name = second.locator(".aiinfra-cluster-name").bounding_box()
        assert name["y"] + name["height"] < HEIGHT, name
        screenshot(page, tmp_path, "plots.png")

        # The filter: every word, any case; nothing found says so.
        filter_box = card.locator("input.aiinfra-plot-filter")
        filter_box.fill("memory TIME")
        page.wait_for_function(
            "() => document.querySelectorAll('.aiinfra-cluster[data-name=\"first\"] .aiinfra-pane-button').length === 1"
        )
        assert buttons.all_inner_texts() == ["Workers Memory Timeseries"]
        screenshot(page, tmp_path, "plots-filtered.png")
        filter_box.fill("no such plot")
        assert card.locator(".aiinfra-plots-none").inner_text() == "No plot matches “no such plot”."
        filter_box.fill("network")  # a group's name finds its plots
        card.locator('[data-group="network"]').wait_for()
        assert set(
            group_of[p] for p in buttons.evaluate_all("els => els.map(e => e.dataset.plot)")
        ) == {"network"}
        # One opens as its own panel, titled by its whole name.
        card.locator('.aiinfra-pane-button[data-plot="individual-workers-network"]').click()
        page.locator('.aiinfra-dashboard-tab[data-plot="individual-workers-network"]').wait_for()
        assert page.locator(".lm-TabBar-tabLabel", has_text="Workers Network · first").count() == 1
        filter_box.fill("")

        # Item 8: every text of the sidebar keeps AA contrast, light theme then dark.
        _assert_aa(page)
        page.evaluate(
            "() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
        )
        page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
        page.evaluate("() => window.jupyterapp.shell.activateById('aiinfra-sidebar')")
        page.wait_for_function(
            """() => getComputedStyle(document.querySelector('.aiinfra-sidebar')).backgroundColor
                       !== 'rgb(255, 255, 255)'"""
        )
        card.locator(".aiinfra-plot-group").first.wait_for()
        _assert_aa(page)
        screenshot(page, tmp_path, "sidebar-dark.png")


def test_start_form_defaults_fonts_fold_and_workers_range(live_lab, tmp_path):
    backends = live_lab.api("aiinfra/api/backends")
    auto = {b["name"]: b for b in backends["backends"]}[backends["auto"]]
    with browser_page(WIDTH, HEIGHT) as page:
        panel = live_lab.open_sidebar(page)
        panel.locator("button.aiinfra-start").click()
        dialog = page.locator(".jp-Dialog")
        select = dialog.locator('select[name="backend"]')
        select.wait_for()
        assert select.input_value() == "auto"
        # The defaults auto's backend declares, as placeholders.
        for field in ("workers", "threads"):
            placeholder = dialog.locator(f'input[name="{field}"]').get_attribute("placeholder")
            assert placeholder == f"default: {auto['defaults'][field]}", (field, placeholder)
        assert (
            f"{backends['auto']} here"
            in dialog.locator(".aiinfra-backend-description").inner_text()
        )
        # One font size for the labels, the backend dropdown and the inputs; one height.
        font = (
            "e => getComputedStyle(e).fontSize + ' ' + Math.round(e.getBoundingClientRect().height)"
        )
        sizes = {
            "label": dialog.locator(".aiinfra-field-label").first.evaluate(
                "e => getComputedStyle(e).fontSize"
            ),
            "select": select.evaluate(font),
            "input": dialog.locator('input[name="workers"]').evaluate(font),
        }
        assert sizes["select"] == sizes["input"], sizes
        assert sizes["select"].split()[0] == sizes["label"], sizes
        # Max GPU-hours in view at 1400x900, nothing scrolled.
        body = dialog.locator(".jp-Dialog-body")
        assert body.evaluate("e => e.scrollTop") == 0
        last = dialog.locator('input[name="max_gpu_hours"]').bounding_box()
        shown = body.bounding_box()
        assert last["y"] + last["height"] <= min(shown["y"] + shown["height"], HEIGHT), (
            last,
            shown,
        )
        # Workers: 1 or more to start, and the hint says why 0 is only for later.
        assert "At least 1 to start" in dialog.locator('[data-option="workers"]').inner_text()
        screenshot(page, tmp_path, "start-form.png")
        dialog.locator("button.jp-mod-reject").click()
        dialog.wait_for(state="detached")

        live_lab.api("aiinfra/api/clusters", "POST", {"name": "ranged", "workers": 1, "threads": 1})
        card = panel.locator('.aiinfra-cluster[data-name="ranged"]')
        card.wait_for()
        card.locator("button.aiinfra-scale").click()
        assert "0 or more" in dialog.locator(".aiinfra-form-help").inner_text()
        dialog.locator('input[name="workers"]').fill("0")  # the same rule the hint says
        dialog.locator("button.jp-mod-accept").click()
        dialog.wait_for(state="detached")
        card.get_by_text("0 workers").wait_for()
        card.locator("button.aiinfra-adapt").click()
        assert "0 or more" in dialog.locator(".aiinfra-form-help").inner_text()
        screenshot(page, tmp_path, "adapt-form.png")
        dialog.locator("button.jp-mod-reject").click()
