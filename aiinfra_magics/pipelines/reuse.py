"""Kernel reuse (``kernel_reuse: true``): one warm kernel per run, worker and kernelspec.

A reused kernel never crosses a run: idle kernels are keyed by the run, and a run's
drain stops only its own. Within a run, between steps, the kernel is reset: IPython's
namespace and execution counter (``reset(new_session=True)``, so numbering starts at
1 as in a fresh kernel), ``builtins``, ``os.environ``, ``sys.path``, warnings filters,
modules imported from outside the installed packages (a step's own helpers),
matplotlib figures and the working directory.

The reset is then *verified*, and whatever it cannot prove clean retires the kernel
(the next step gets a fresh one, and the step records why). The pool, outside the
kernel, compares what the process shows in /proc (umask, caught and ignored signals,
OS threads, child processes) with what it showed when the kernel was new. Inside the
kernel a fingerprint is taken after the reset (builtins, attributes of every module
loaded at the start, ``atexit`` callbacks, audit hooks added, IPython event callbacks,
configuration, Python signal handlers, the C environment against ``os.environ``,
Python threads) and the pool compares it with the new kernel's, which it keeps.
The reset is started from a fresh namespace (nothing is looked up in the step's),
and its result must carry a one-time token the pool chose after the step ended: a
step that shadows or disables the reset gives no such result, so its kernel retires.
A step that timed out, crashed the kernel or failed outside its cells also retires it.
"""

from __future__ import annotations

import ast
import itertools
import json
import secrets
import signal
import threading
from pathlib import Path
from typing import Any

import psutil
from jupyter_client.manager import AsyncKernelManager

from . import kernel_pool

_lock = threading.Lock()
# Keyed by (run, worker, kernel name): a kernel never serves two runs.
_idle: dict[tuple[str, str, str], list[AsyncKernelManager]] = {}
_ids = itertools.count(1)

# The reset, run by ``builtins.exec`` in a namespace of its own (``_cell``). Its state
# lives on ``sys`` so the next reset finds it; a step that alters it changes the
# fingerprint, which the pool compares with the one it keeps, so that only retires.
RESET = r"""
import atexit, json, os, signal, sys, threading, warnings, zlib
B = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)
st = sys.__dict__.get("_aiinfra_state")
why = []
ip = sys.modules["IPython.core.interactiveshell"].InteractiveShell.instance()
if FIRST:
    if st is not None:
        why.append("reset state present before the first reset")
    audit = []
    def _hook(event, args, _seen=audit):
        # Audit hooks cannot be listed or removed: one added later only taints the kernel.
        if event == "sys.addaudithook":
            _seen.append(1)
    sys.addaudithook(_hook)
    st = sys._aiinfra_state = {
        "environ": dict(os.environ), "path": list(sys.path), "modules": set(sys.modules),
        "builtins": dict(B), "warnings": list(warnings.filters), "audit": audit,
        "threads": {t.ident for t in threading.enumerate()},
    }
elif st is None:
    why.append("reset state missing")
else:
    # builtins first: the rest of the reset uses them.
    for name in [n for n in B if n not in st["builtins"]]:
        del B[name]
    B.update(st["builtins"])
    extra = [t.name for t in threading.enumerate() if t.ident not in st["threads"] and t.is_alive()]
    if extra:
        why.append("threads left running: " + ", ".join(sorted(extra))[:200])
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    ip.reset(new_session=True)
    os.environ.clear()
    os.environ.update(st["environ"])
    sys.path[:] = st["path"]
    warnings.filters[:] = st["warnings"]
    warnings._filters_mutated()
    roots = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
    for name in set(sys.modules) - st["modules"]:
        where = getattr(sys.modules.get(name), "__file__", None) or ""
        if where and not where.startswith(roots):
            del sys.modules[name]
os.chdir(CWD)
ip.user_ns.pop("_aiinfra_b", None)  # the cell's one name, bound before this ran

def _h(value):
    return zlib.crc32(repr(value).encode("utf-8", "replace"))

# The fingerprint: what must look as it did in the new kernel. Module attributes by
# identity (a replaced function or constant), submodules aside (importing one sets it
# on its package). Aside too: what the kernel itself sets for every request
# (getpass.getpass, sys.excepthook), IPython's history, and our own state.
SKIP = {"__main__", "sys", "builtins", "IPython.core.history", "linecache"}
ATTR_SKIP = {"__warningregistry__", "_aiinfra_state", "_aiinfra_reset", "last_type",
             "last_value", "last_traceback", "last_exc", "excepthook"}
ModuleType = type(sys)

def _attrs(mod, name):
    return _h(sorted(
        (k, id(v)) for k, v in vars(mod).items()
        if k not in ATTR_SKIP and not isinstance(v, ModuleType)
        and (name, k) != ("getpass", "getpass")
    ))

mods = {}
for name in sorted(st["modules"] if st else ()):
    mod = sys.modules.get(name)
    if name in SKIP or mod is None:
        continue
    try:
        mods[name] = _attrs(mod, name)
    except TypeError:
        continue
import ctypes as ctx
envp = ctx.POINTER(ctx.c_char_p).in_dll(ctx.CDLL(None), "environ")
cenv, i = set(), 0
while envp[i] is not None:
    cenv.add(envp[i])
    i += 1
penv = {os.fsencode(k) + b"=" + os.fsencode(v) for k, v in os.environ.items()}
if cenv != penv:
    why.append("environment changed outside os.environ (putenv/unsetenv)")
print_ = {
    "builtins": _h(sorted((k, id(v)) for k, v in B.items())),
    "modules": mods,
    "sys": _attrs(sys, "sys"),
    "atexit": atexit._ncallbacks(),
    "audit": len(st["audit"]) if st else -1,
    "events": {e: [id(f) for f in cbs] for e, cbs in ip.events.callbacks.items()},
    "config": _h([(type(c).__name__, c.config) for c in ip.configurables]),
    "signals": _h([(int(s), id(signal.getsignal(s))) for s in sorted(signal.valid_signals())]),
    "warnings": _h(warnings.filters),
}
sys._aiinfra_reset = json.dumps({"token": TOKEN, "why": "; ".join(why), "print": print_})
"""


def _cell(cwd: str, token: str, first: bool) -> str:
    """The execute request: binds nothing of the step's namespace before ``exec``.

    ``import`` takes the real ``builtins`` module (a step's ``exec = ...`` or
    ``get_ipython = ...`` lives in its namespace, not there); whatever a step did to
    ``builtins.exec`` itself leaves no result with this call's token, which retires.
    """
    names = f"{{'CWD': {cwd!r}, 'TOKEN': {token!r}, 'FIRST': {first!r}}}"
    return f"import builtins as _aiinfra_b\n_aiinfra_b.exec({RESET!r}, {names})"


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
            return {"why": f"reset failed: {content.get('ename')}: {content.get('evalue')}"}
        value = content["user_expressions"]["r"]
        if value.get("status") != "ok":
            return {"why": "reset left no result"}
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))
    finally:
        kc.stop_channels()


def _outside(pid: int | None) -> dict[str, Any]:
    """What the pool reads of the kernel process itself, where a step cannot rewrite it."""
    if not pid:
        return {"gone": True}
    fields = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "Umask":
                fields[key] = value.strip()
            elif key in ("SigCgt", "SigIgn", "SigBlk"):
                # Masks of signals, SIGINT aside: ipykernel ignores it while idle and
                # catches it while a request runs, and this read races that switch
                # (the Python-level handler is in the fingerprint).
                fields[key] = int(value, 16) & ~(1 << (signal.SIGINT - 1))
        proc = psutil.Process(pid)
        fields["threads"] = proc.num_threads()
        children = [c for c in proc.children(recursive=True) if c.is_running()]
        fields["children"] = len([c for c in children if c.status() != psutil.STATUS_ZOMBIE])
    except (OSError, psutil.Error):
        return {"gone": True}
    return fields


def _differences(base: dict[str, Any], now: dict[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(base) | set(now)):
        if key == "modules":
            changed = sorted(
                n for n, h in base.get(key, {}).items() if now.get(key, {}).get(n) != h
            )
            if changed:
                out.append("module attributes changed: " + ", ".join(changed)[:200])
        elif base.get(key) != now.get(key):
            out.append(f"{key} changed")
    return out


def reset(km: AsyncKernelManager, cwd: str) -> dict[str, Any]:
    """Reset ``km`` for the next step in ``cwd``; ``clean`` says whether it may serve it.

    The first call (a new kernel) records the fingerprint and process state that every
    later reset must return to.
    """
    first = getattr(km, "aiinfra_base", None) is None
    token = secrets.token_hex(16)
    try:
        result = kernel_pool._run(lambda: _execute(km, _cell(cwd, token, first)))
    except Exception as exc:  # a dead or wedged kernel
        return {"clean": False, "why": f"reset failed: {type(exc).__name__}: {exc}"}
    if result.get("token") != token:  # not this reset's answer: it did not run
        return {"clean": False, "why": result.get("why") or "reset did not run"}
    why = [result["why"]] if result.get("why") else []
    outside = _outside(kernel_pool.kernel_pid(km))
    if outside.get("children"):
        why.append(f"{outside['children']} child process(es) left running")
    if first:
        km.aiinfra_base = (result["print"], outside)  # type: ignore[attr-defined]
    else:
        inner, process = km.aiinfra_base  # type: ignore[attr-defined]
        why += _differences(inner, result["print"])
        for key, name in (
            ("Umask", "umask"),
            ("SigCgt", "signal handlers"),
            ("SigIgn", "ignored signals"),
            ("SigBlk", "blocked signals"),
            ("threads", "OS threads"),
            ("gone", "process"),
        ):
            if process.get(key) != outside.get(key):
                why.append(f"{name} changed ({process.get(key)} -> {outside.get(key)})")
    return {"clean": not why, "why": "; ".join(why)}


def take(
    kernel_name: str, cwd: str, owner: str, also: str | None = None, run: str = ""
) -> tuple[AsyncKernelManager, bool]:
    """A kernel ready for a step of ``run`` in ``cwd``: an idle reused one of the same run
    (True) or a new one (False).

    A new one may be a warm kernel of ``owner`` or of ``also`` (``kernel_pool.acquire``):
    never used, so sharing it crosses nothing.
    """
    while True:
        with _lock:
            queue = _idle.get((run, owner, kernel_name)) or []
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
    km = kernel_pool.acquire(kernel_name, cwd, owner=owner, also=also, run=run)
    state = reset(km, cwd)  # the snapshot every later reset returns to
    if not state["clean"]:
        kernel_pool.shutdown(km)
        raise RuntimeError(state["why"])
    km.aiinfra_id = f"{owner or 'local'}#{next(_ids)}"  # type: ignore[attr-defined]
    km.aiinfra_uses = 1  # type: ignore[attr-defined]
    km.aiinfra_cwd = cwd  # type: ignore[attr-defined]
    return km, False


def give_back(
    km: AsyncKernelManager, kernel_name: str, cwd: str, owner: str, run: str = ""
) -> str | None:
    """After a step: reset and keep the kernel for ``run``, or retire it; returns why it
    was retired."""
    state = reset(km, cwd)
    if not state["clean"]:
        kernel_pool.shutdown(km)
        return state["why"]
    km.aiinfra_cwd = cwd  # type: ignore[attr-defined]
    with _lock:
        _idle.setdefault((run, owner, kernel_name), []).append(km)
    return None


def drain(run: str | None = None) -> int:
    """Shut down the idle reused kernels of ``run`` (every run's: None) in this process."""
    with _lock:
        keys = [k for k in _idle if run is None or k[0] == run]
        kms = [km for k in keys for km in _idle.pop(k)]
    for km in kms:
        kernel_pool.shutdown(km)
    return len(kms)
