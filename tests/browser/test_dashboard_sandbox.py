"""Proxied dashboards run without the Jupyter user's authority, and the real one still works.

A real ``jupyter lab`` (for a page on the Jupyter origin with the user's login
cookie), Debian's Chromium through playwright, and an iframe with the lab's own
sandbox attributes (extension/src/index.ts). Two dashboards are proxied:

- a hostile page on 127.0.0.1, registered as a cluster's dashboard, that tries
  to write a file with ``PUT /api/contents`` the way the lab itself does (XSRF
  cookie -> header): no file may appear;
- the Dask dashboard of a real LocalCluster started over REST: its Bokeh
  WebSocket must connect through the proxy and keep pushing document patches.
"""

from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from chromium import CHROMIUM, browser_page

from aiinfra_magics.clusters.registry import Registry, this_process

# The lab's dashboard iframe (extension/src/index.ts).
LAB_IFRAME_SANDBOX = "allow-scripts allow-same-origin allow-forms allow-popups"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="chromium not installed (apt-get install chromium)"
)

# What a hostile scheduler's dashboard does with the user's session if it can.
HOSTILE_PAGE = """<!doctype html><html><body><pre id="out">running</pre><script>
(async () => {
  const out = [];
  const base = location.pathname.split('aiinfra/dashboard/')[0];
  let xsrf = '';
  try {
    const m = document.cookie.match(/_xsrf=([^;]+)/);
    xsrf = m ? decodeURIComponent(m[1]) : '';
    out.push('cookie-read');
  } catch (e) { out.push('cookie-blocked'); }
  try { parent.document.title; out.push('parent-read'); } catch (e) { out.push('parent-blocked'); }
  try {
    const r = await fetch(base + 'api/contents/pwned.txt', {
      method: 'PUT', credentials: 'include',
      headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf},
      body: JSON.stringify({type: 'file', format: 'text', content: 'owned'}),
    });
    out.push('put-' + r.status);
  } catch (e) { out.push('put-blocked'); }
  try {
    const r = await fetch(base + 'api/contents', {credentials: 'include'});
    out.push('list-' + r.status + '-' + (await r.text()).length);
  } catch (e) { out.push('list-blocked'); }
  document.getElementById('out').textContent = 'done ' + out.join(' ');
})();
</script></body></html>"""


class _Hostile(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = HOSTILE_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hostile():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _frame(page, url: str):
    """Open ``url`` in an iframe of the lab page, with the lab's sandbox attributes."""
    page.evaluate(
        """([url, sandbox]) => {
          document.querySelectorAll('iframe.aiinfra-test').forEach(f => f.remove());
          const f = document.createElement('iframe');
          f.className = 'aiinfra-test';
          f.setAttribute('sandbox', sandbox);
          f.style = 'position:fixed;top:0;left:0;width:1200px;height:800px;z-index:99999;background:white';
          f.src = url;
          document.body.appendChild(f);
        }""",
        [url, LAB_IFRAME_SANDBOX],
    )
    return page.frame_locator("iframe.aiinfra-test")


def test_a_proxied_page_cannot_act_as_the_user_but_the_dask_dashboard_works(live_lab, hostile):
    root = live_lab.root
    Registry().write(
        {
            "name": "hostile",
            "backend": "address",
            "status": "running",
            "owner": {**this_process(), "kind": "external"},
            "created": time.time(),
            "scheduler_address": f"tcp://127.0.0.1:{hostile}",
            "dashboard_link": f"http://127.0.0.1:{hostile}/status",
            "gpus": [],
        }
    )
    with browser_page(width=1300, height=900) as page:
        live_lab.open(page)  # the login cookie and _xsrf, as a user has
        page.locator("#jp-main-dock-panel").wait_for()
        assert any(c["name"] == "_xsrf" for c in page.context.cookies())

        # 1. The hostile page: runs, but as nobody.
        frame = _frame(page, f"{live_lab.base_url}aiinfra/dashboard/hostile/status")
        out = frame.locator("#out")
        out.filter(has_text="done").wait_for()
        result = out.text_content()
        assert "cookie-blocked" in result and "parent-blocked" in result, result
        assert "put-201" not in result and "list-200" not in result, result
        assert not (root / "pwned.txt").exists()
        assert [p.name for p in root.iterdir()] == []

        # 2. The real Dask dashboard, live through the proxy.
        live_lab.api("aiinfra/api/clusters", "POST", {"name": "live", "workers": 1, "threads": 1})
        sockets: list = []
        patches: list[int] = []

        def on_socket(ws) -> None:
            if "aiinfra/dashboard/live/" in ws.url:
                sockets.append(ws)
                ws.on(
                    "framereceived",
                    lambda payload: patches.append(1) if "PATCH-DOC" in str(payload) else None,
                )

        page.on("websocket", on_socket)
        frame = _frame(page, f"{live_lab.base_url}aiinfra/dashboard/live/workers")
        # The workers table lists the cluster's worker: drawn from the Bokeh
        # document the socket delivered, so the socket authenticated and connected.
        frame.locator("text=tcp://127.0.0.1").first.wait_for(timeout=120_000)
        assert sockets and "/ws" in sockets[0].url
        assert not sockets[0].is_closed()
        seen = len(patches)
        deadline = time.monotonic() + 120
        while len(patches) < seen + 3 and time.monotonic() < deadline:
            page.wait_for_timeout(250)  # polls the condition; updates arrive from the server
        assert len(patches) >= seen + 3, "the dashboard stopped updating"
        # The dashboard itself is sandboxed too: no Jupyter cookie for its scripts.
        probe = "() => { try { document.cookie; return 'read' } catch (e) { return 'blocked' } }"
        assert frame.locator("body").evaluate(probe) == "blocked"
