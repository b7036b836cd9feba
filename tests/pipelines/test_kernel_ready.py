"""``kernel_pool.wait_ready``: once it returns, a new client's IOPub misses nothing (real kernel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from jupyter_core.utils import run_sync

from aiinfra_magics.pipelines import kernel_pool


@pytest.fixture
def kernel(tmp_path):
    km = kernel_pool.start_kernel("python3", str(tmp_path))  # itself waits with wait_ready
    yield km
    kernel_pool.shutdown(km)


async def _first_output(kc, code: str) -> tuple[list[str], str]:
    """Execute ``code`` and collect, in order, what IOPub says about it until idle."""
    msg_id = kc.execute(code)
    seen: list[str] = []
    text = ""
    while True:
        msg = await kc.iopub_channel.get_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue  # the kernel_info requests' own status messages
        seen.append(msg["msg_type"])
        if msg["msg_type"] == "stream":
            text = msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return seen, text


def test_each_new_client_sees_a_steps_first_messages(kernel):
    # A new SUB socket that is not yet subscribed loses what the kernel publishes first:
    # the 'busy' status and the output of the first cell. After wait_ready, nothing is lost,
    # for every one of several clients in a row (as every step of a reused kernel connects).
    for i in range(5):
        kc = kernel.client()
        kc.start_channels()
        try:
            run_sync(kernel_pool.wait_ready)(kc, 60)
            seen, text = run_sync(_first_output)(kc, f"print('step {i}')")
        finally:
            kc.stop_channels()
        assert seen[0] == "status" and "execute_input" in seen and "stream" in seen, seen
        assert text == f"step {i}\n"


def test_a_dead_kernel_is_an_error_not_a_hang(kernel):
    kc = kernel.client()
    kc.start_channels()
    try:
        kernel_pool._kill(kernel)
        with pytest.raises(RuntimeError, match="died|respond"):
            run_sync(kernel_pool.wait_ready)(kc, 30)
    finally:
        kc.stop_channels()


def test_kernel_dirs_are_jupyter_clients_own_without_importing_ipython(tmp_path):
    """The runner's kernelspec search path equals jupyter_client's default (which finds
    IPython's folder through IPython.paths), and working it out imports no IPython."""
    code = (
        "import json, sys\n"
        "from aiinfra_magics.pipelines.kernel_pool import kernel_dirs\n"
        "ours = kernel_dirs()\n"
        "imported = 'IPython' in sys.modules\n"
        "from jupyter_client.kernelspec import KernelSpecManager\n"
        "print(json.dumps([ours == KernelSpecManager().kernel_dirs, imported, ours[-1]]))\n"
    )
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipy")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout) == [True, False, str(tmp_path / "ipy" / "kernels")]
