"""``GET aiinfra/api/pipelines/launches/{launch}/log`` on a real jupyter server (issue 29 item 7).

A launch whose run never started has only its log to say why: the lab links to it
instead of printing a server path. Only a launch this server started is served, and
only its own log in the launches' private folder.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiinfra_magics.server.launchlog import MAX_LOG, read_tail


def _pipeline(folder: Path) -> None:
    import nbformat

    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, folder / "one.ipynb")
    (folder / "pipeline.yaml").write_text("name: one\nsteps:\n  one:\n    notebook: one.ipynb\n")


async def _launch_ended(api, launch: str, seconds: float = 240) -> dict:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        code, reply = await api("GET", "pipelines", "runs", launch)
        if code == 200 and reply["status"] != "running":
            return reply
        assert asyncio.get_running_loop().time() < deadline, reply
        await asyncio.sleep(0.25)


def test_a_failed_launch_serves_its_log_and_nothing_else(
    run, api, jp_fetch, jp_root_dir, aiinfra_home
):
    _pipeline(jp_root_dir / "p")

    async def go():
        # A cluster that is not registered: the launch starts, then fails before any run.
        code, launch = await api(
            "POST", "pipelines", "runs", body={"pipeline": "p/pipeline.yaml", "cluster": "nosuch"}
        )
        assert code == 202, launch
        ended = await _launch_ended(api, launch["launch"])
        assert ended["status"] == "failed", ended
        code, log = await api("GET", "pipelines", "launches", launch["launch"], "log")
        assert code == 200, log
        assert log["launch"] == launch["launch"] and log["truncated"] is False
        assert "nosuch" in log["text"]  # the reason, as the run's own words
        assert log["text"] == Path(ended["log"]).read_text()

        # Without credentials: refused like every aiinfra route.
        response = await jp_fetch(
            "aiinfra", "api", "pipelines", "launches", launch["launch"], "log",
            headers={"Authorization": ""}, raise_error=False,
        )  # fmt: skip
        assert response.code == 403
        # Launches this server did not start, and names that look like paths: not found.
        for other in ("launch-00000000", "..", "run.json"):
            code, reply = await api("GET", "pipelines", "launches", other, "log")
            assert (code, reply["field"]) == (404, "launch"), (other, reply)
        # A log swapped for a link (to any file) is not followed.
        path = Path(ended["log"])
        secret = jp_root_dir / "secret.txt"
        secret.write_text("not for the log view")
        path.unlink()
        os.symlink(secret, path)
        code, reply = await api("GET", "pipelines", "launches", launch["launch"], "log")
        assert code == 404, reply
        assert "not for the log view" not in reply["message"]

    run(go())


def test_a_long_log_is_served_from_its_end(tmp_path):
    log = tmp_path / "launch.log"
    log.write_bytes(b"early line\n" * (MAX_LOG // 11 + 10) + b"Traceback: the reason\n")
    text, truncated = read_tail(log)
    assert truncated and text.endswith("Traceback: the reason\n")
    assert len(text.encode()) == MAX_LOG
