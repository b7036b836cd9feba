"""The one way the browser tests open Chromium: Debian's chromium, driven by playwright.

(The playwright package never downloads a browser here; ``make system-packages`` installs it.)
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags that work in a root container: no sandbox as root, no GPU, no calls home
# (this machine's closed network refuses them, many at a time).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
#: Playwright's wait for any one element or navigation: it only bounds a failure on a loaded
#: machine, so it is generous.
STEP_TIMEOUT_MS = 120_000


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 860) -> Iterator[Any]:
    """A page of a headless Chromium of its own, closed (with the browser) on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            yield page
        finally:
            browser.close()
