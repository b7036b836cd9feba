"""The Schedules panel in a real JupyterLab, driven through Debian's Chromium (playwright).

Schedule a notebook from the "Schedule…" form (a bad cron keeps the form open with the
error under its field), see the panel list it with its next run in the browser's local
time, watch an interval schedule's last run reach ok, then pause, resume, run now and
delete from the panel; the REST API and the scheduler's store agree at each step.
"""

from __future__ import annotations

import pytest
from chromium import browser_page
from labserver import NEEDS_LAB, decline_news, field_error, screenshot
from nbfiles import write_notebook
from run_records import stop_scheduler

pytestmark = NEEDS_LAB


@pytest.fixture
def lab(live_lab, aiinfra_home):
    write_notebook(live_lab.root / "jobs" / "report.ipynb", "n = 1", "print(n * 2)")
    yield live_lab
    stop_scheduler(aiinfra_home)


def _schedule_form(page, path: str):
    page.evaluate(
        f"() => {{ window.jupyterapp.commands.execute('aiinfra:schedule-pipeline', {{path: '{path}'}}); }}"
    )
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".aiinfra-schedule-form").wait_for()
    return dialog


def test_schedules_panel(lab, tmp_path):
    with browser_page() as page:
        lab.open(page)
        page.locator(".jp-DirListing-item", has_text="jobs").first.wait_for()
        decline_news(page)

        # A cron schedule from the form; a bad cron stays in the form, under its field.
        dialog = _schedule_form(page, "jobs/report.ipynb")
        assert dialog.locator('input[name="tz"]').input_value()  # the browser's zone
        dialog.locator('input[name="name"]').fill("nightly")
        dialog.locator('input[name="cron"]').fill("61 * * * *")
        dialog.locator('input[name="tz"]').fill("Europe/Berlin")
        dialog.locator("button.jp-mod-accept").click()
        error = field_error(dialog, "cron")
        assert error.inner_text().startswith("cron:")
        assert dialog.locator('input[name="cron"]').input_value() == "61 * * * *"
        assert lab.api("aiinfra/api/schedules")["schedules"] == []  # refused, not stored
        dialog.locator('input[name="cron"]').fill("30 2 * * *")
        dialog.locator('textarea[name="params"]').fill("n=21")
        dialog.locator("button.jp-mod-accept").click()
        row = page.locator('.aiinfra-schedule[data-name="nightly"]')
        row.wait_for()
        assert page.locator(".jp-Dialog").count() == 0

        # Its next run in the browser's local time, the ISO time from the server beside it.
        [shown] = lab.api("aiinfra/api/schedules")["schedules"]
        assert shown["trigger"] == {"cron": "30 2 * * *", "tz": "Europe/Berlin"}
        next_cell = row.locator('[data-field="next"]')
        assert next_cell.get_attribute("data-iso") == shown["next_run"]
        local = page.evaluate(f"() => new Date('{shown['next_run']}').toLocaleString()")
        assert next_cell.inner_text() == local
        assert "30 2 * * *" in row.locator('[data-field="trigger"]').inner_text()

        # An interval schedule: its last run's status shows up and reaches ok.
        dialog = _schedule_form(page, "jobs/report.ipynb")
        dialog.locator('input[name="name"]').fill("often")
        dialog.locator('input[name="kind"][value="every"]').check()
        dialog.locator('input[name="every"]').fill("1h")
        dialog.locator("button.jp-mod-accept").click()
        often = page.locator('.aiinfra-schedule[data-name="often"]')
        often.wait_for()
        often.locator('button[data-action="run"]').click()
        page.wait_for_selector('.aiinfra-schedule[data-name="often"] [data-field="status"][data-status="ok"]',
                               timeout=240_000)  # fmt: skip
        runs = list((lab.root / "jobs" / "runs").glob("*/run.json"))
        assert len(runs) == 1
        screenshot(page, tmp_path, "schedules-panel.png")

        # Pause and resume from the panel.
        row.locator('button[data-action="pause"]').click()
        page.wait_for_selector('.aiinfra-schedule[data-name="nightly"][data-paused="true"]')
        assert next_cell.inner_text() == "paused"
        assert lab.api("aiinfra/api/schedules/nightly")["paused"] is True
        row.locator('button[data-action="resume"]').click()
        page.wait_for_selector('.aiinfra-schedule[data-name="nightly"][data-paused="false"]')
        assert lab.api("aiinfra/api/schedules/nightly")["paused"] is False

        # Delete asks first; then the row and the schedule are gone.
        for name in ("nightly", "often"):
            page.locator(
                f'.aiinfra-schedule[data-name="{name}"] button[data-action="delete"]'
            ).click()
            page.locator(".jp-Dialog button.jp-mod-accept").click()
            page.locator(f'.aiinfra-schedule[data-name="{name}"]').wait_for(state="detached")
        assert lab.api("aiinfra/api/schedules")["schedules"] == []
