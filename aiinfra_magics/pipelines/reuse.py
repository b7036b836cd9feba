"""Kernel reuse (``kernel_reuse: true``): one warm kernel per worker and kernelspec.

Between steps the kernel is reset as far as a Python kernel can be: IPython's
namespace and execution counter (``reset(new_session=True)``, so numbering starts
at 1 as in a fresh kernel), environment variables, ``sys.path``, modules imported
from outside the installed packages (a step's own helpers), matplotlib figures and
the working directory. What cannot be reset (threads or child processes left
running, changed signal handlers) retires the kernel: the next step gets a fresh one.
A step that timed out, crashed the kernel or failed outside its cells also retires it.
"""

from __future__ import annotations

import ast
import itertools
import json
import threading
from typing import Any

import psutil
from jupyter_client.manager import AsyncKernelManager

from . import kernel_pool

_lock = threading.Lock()
_idle: dict[tuple[str, str], list[AsyncKernelManager]] = {}
_ids = itertools.count(1)

# Runs inside the kernel, in a namespace of its own (never the user's), via exec.
RESET = r"""
import json, os, signal, sys, threading
snap = getattr(sys, "_aiinfra_snapshot", None)
why = []
if snap is None:
    sys._aiinfra_snapshot = {
        "environ": dict(os.environ), "path": list(sys.path), "modules": set(sys.modules),
        "threads": {t.ident for t in threading.enumerate()},
        "signals": {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)},
    }
else:
    extra = [t.name for t in threading.enumerate() if t.ident not in snap["threads"] and t.is_alive()]
    if extra:
        why.append("threads left running: " + ", ".join(sorted(extra))[:200])
    changed = [signal.Signals(s).name for s, h in snap["signals"].items() if signal.getsignal(s) is not h]
    if changed:
        why.append("signal handlers changed: " + ", ".join(changed))
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    get_ipython().reset(new_session=True)
    os.environ.clear()
    os.environ.update(snap["environ"])
    sys.path[:] = snap["path"]
    roots = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    for name in set(sys.modules) - snap["modules"]:
        where = getattr(sys.modules.get(name), "__file__", None) or ""
        if where and not where.startswith(roots):
            del sys.modules[name]
os.chdir(CWD)
sys._aiinfra_reset = json.dumps({"clean": not why, "why": "; ".join(why)})
"""


async def _execute(km: AsyncKernelManager, code: str, timeout: float = 60) -> dict[str, Any]:
    kc = km.client()
    kc.start_channels(iopub=False, stdin=False, hb=False, control=False)
    try:  # the shell socket queues the request until it connects: no kernel_info round trip
        msg_id = kc.execute(
            code,
            silent=True,
            store_history=False,
            user_expressions={"r": "__import__('sys')._aiinfra_reset"},
        )
        while True:
            reply = await kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        if content.get("status") != "ok":
            return {"clean": False, "why": f"reset failed: {content.get('ename')}"}
        value = content["user_expressions"]["r"]
        if value.get("status") != "ok":
            return {"clean": False, "why": "reset left no result"}
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))
    finally:
        kc.stop_channels()


def reset(km: AsyncKernelManager, cwd: str) -> dict[str, Any]:
    """Reset ``km`` for the next step in ``cwd`` (the first call takes the snapshot)."""
    code = f"exec({RESET!r}, {{'get_ipython': get_ipython, 'CWD': {cwd!r}}})"
    try:
        result = kernel_pool._run(lambda: _execute(km, code))
    except Exception as exc:  # a dead or wedged kernel
        return {"clean": False, "why": f"reset failed: {type(exc).__name__}: {exc}"}
    pid = kernel_pool.kernel_pid(km)
    try:
        children = [c for c in psutil.Process(pid).children(recursive=True) if c.is_running()]
        children = [c for c in children if c.status() != psutil.STATUS_ZOMBIE]
    except (psutil.Error, TypeError, ValueError):
        children = []
    if children:
        result = {"clean": False, "why": f"{len(children)} child process(es) left running"}
    return result


def take(
    kernel_name: str, cwd: str, owner: str, also: str | None = None
) -> tuple[AsyncKernelManager, bool]:
    """A kernel ready for a step in ``cwd``: an idle reused one (True) or a new one (False).

    A new one may be a warm kernel of ``owner`` or of ``also`` (``kernel_pool.acquire``):
    never used, so sharing it crosses nothing.
    """
    while True:
        with _lock:
            queue = _idle.get((owner, kernel_name)) or []
            km = queue.pop() if queue else None
        if km is None:
            break
        # Reset when it was handed back; only a step in another folder needs a call here.
        state = {"clean": True} if km.aiinfra_cwd == cwd else reset(km, cwd)  # type: ignore[attr-defined]
        if state["clean"]:
            km.aiinfra_cwd = cwd  # type: ignore[attr-defined]
            km.aiinfra_uses += 1  # type: ignore[attr-defined]
            return km, True
        kernel_pool.shutdown(km)
    km = kernel_pool.acquire(kernel_name, cwd, owner=owner, also=also)
    state = reset(km, cwd)  # the snapshot every later reset returns to
    if not state["clean"]:
        kernel_pool.shutdown(km)
        raise RuntimeError(state["why"])
    km.aiinfra_id = f"{owner or 'local'}#{next(_ids)}"  # type: ignore[attr-defined]
    km.aiinfra_uses = 1  # type: ignore[attr-defined]
    km.aiinfra_cwd = cwd  # type: ignore[attr-defined]
    return km, False


def give_back(km: AsyncKernelManager, kernel_name: str, cwd: str, owner: str) -> str | None:
    """After a step: reset and keep the kernel, or retire it; returns why it was retired."""
    state = reset(km, cwd)
    if not state["clean"]:
        kernel_pool.shutdown(km)
        return state["why"]
    km.aiinfra_cwd = cwd  # type: ignore[attr-defined]
    with _lock:
        _idle.setdefault((owner, kernel_name), []).append(km)
    return None


def drain() -> int:
    """Shut down every idle reused kernel of this process."""
    with _lock:
        kms = [km for queue in _idle.values() for km in queue]
        _idle.clear()
    for km in kms:
        kernel_pool.shutdown(km)
    return len(kms)
