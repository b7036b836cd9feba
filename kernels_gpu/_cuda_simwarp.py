"""Warp intrinsics for Numba's CUDA simulator, so the simulator runs the shuffle code.

Numba's simulator runs each GPU thread of a block as a Python thread and implements
``syncthreads`` and atomics, but none of the warp intrinsics (``shfl_*_sync``,
``syncwarp``, the votes). Without them the kernels needed a second, shared-memory
reduction for the simulator, and CI tested code the GPU never ran. ``install`` adds
them to the simulator only (on a real device it does nothing), so one kernel source
serves both.

A warp intrinsic is a rendezvous of the lanes named in ``mask``: each lane posts its
operand, the last lane to arrive computes every lane's result, and all of them go on.
The rules follow the CUDA programming guide and PTX ``shfl.sync``:

* the calling lane must be in ``mask``; lanes of ``mask`` that have exited (or that do
  not exist, past the end of a partial last warp) are not waited for;
* a source lane outside the range (``shfl_up`` below lane 0, ``shfl_down`` or
  ``shfl_xor`` past lane 31) yields the caller's own value; ``shfl_sync`` takes its
  source lane modulo 32;
* reading a lane that did not take part (not in ``mask``, exited, or absent) is
  undefined on a GPU: here it yields a poison value (NaN for floats, 0x7EADBEEF
  wrapped to the integer type), so a result that depends on it shows up in a test;
* lanes that would hang on a GPU raise instead: a lane of ``mask`` waiting at
  ``syncthreads``, two lanes each waiting for the other in different intrinsics
  (mismatched masks), or lanes of one round calling different intrinsics.

Rounds are matched per lane by (mask, how many intrinsics with this mask the lane has
called), which is how converged code lines the lanes up.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

FULL = 0xFFFFFFFF
WARP = 32
_POISON_INT = 0x7EADBEEF
_POLL_S = 0.05  # how often a waiting lane looks for a deadlock or an abort
_STRIKES = 10  # polls in a row a lane must sit at syncthreads to count as a deadlock
_HANG_S = 600.0  # a round this old with lanes still missing is a hang nobody detected

_install_lock = threading.Lock()
_count_lock = threading.Lock()
_installed = False
_calls: dict[str, int] = {}  # intrinsic -> lane calls, for tests that probe the path


def counts() -> dict[str, int]:
    """Lane calls per intrinsic since the process started (a copy)."""
    with _count_lock:
        return dict(_calls)


class _Round:
    __slots__ = ("kind", "mask", "args", "results", "done", "pending", "born")

    def __init__(self, kind: str, mask: int) -> None:
        self.kind = kind
        self.mask = mask
        self.args: dict[int, tuple[Any, Any]] = {}
        self.results: dict[int, Any] = {}
        self.done = False
        self.pending = 0  # lanes that have not yet picked up their result
        self.born = time.monotonic()


class _Warp:
    """The lanes of one warp of the block being simulated."""

    def __init__(self, size: int) -> None:
        self.present = (1 << size) - 1  # lanes that exist: fewer in a partial last warp
        self.exited = 0
        self.cond = threading.Condition()
        self.threads: dict[int, Any] = {}
        self.rounds: dict[tuple[int, int], _Round] = {}
        self.waiting: dict[int, _Round] = {}

    def finish_if_complete(self, rnd: _Round) -> None:
        arrived = 0
        for lane in rnd.args:
            arrived |= 1 << lane
        if rnd.mask & self.present & ~self.exited & ~arrived:
            return
        rnd.results = _results(rnd.kind, rnd.args)
        rnd.done = True
        rnd.pending = arrived
        self.cond.notify_all()

    def exit(self, lane: int) -> None:
        with self.cond:
            self.exited |= 1 << lane
            self.waiting.pop(lane, None)
            for rnd in list(self.rounds.values()):
                if not rnd.done:
                    self.finish_if_complete(rnd)

    def check_stuck(self, me: Any, lane: int, rnd: _Round, strikes: dict[int, int]) -> None:
        if getattr(me, "abort", False):  # another thread failed: stop, as syncthreads does
            raise RuntimeError(f"abort flag set while waiting in {rnd.kind}")
        arrived = 0
        for other in rnd.args:
            arrived |= 1 << other
        missing = rnd.mask & self.present & ~self.exited & ~arrived
        for other in range(WARP):
            if not missing >> other & 1:
                continue
            th = self.threads.get(other)
            # The flag can be stale for an instant while the block manager releases a
            # barrier thread by thread, so it must persist over several polls.
            if th is not None and getattr(th, "syncthreads_blocked", False):
                strikes[other] = strikes.get(other, 0) + 1
            else:
                strikes.pop(other, None)
            if strikes.get(other, 0) >= _STRIKES:
                raise RuntimeError(
                    f"lane {lane} waits in {rnd.kind} (mask {rnd.mask:#x}) for lane {other}, "
                    "which waits at syncthreads: this hangs on a GPU"
                )
            theirs = self.waiting.get(other)
            # Only a round that is still open and still lacks this lane waits for it (a
            # lane whose round has just completed may not have woken up to leave it).
            if (
                theirs is not None
                and not theirs.done
                and theirs.mask >> lane & 1
                and lane not in theirs.args
            ):
                raise RuntimeError(
                    f"lane {lane} waits in {rnd.kind} (mask {rnd.mask:#x}) for lane {other}, "
                    f"which waits for it in {theirs.kind} (mask {theirs.mask:#x}): "
                    "this hangs on a GPU"
                )
        if time.monotonic() - rnd.born > _HANG_S:
            raise RuntimeError(f"{rnd.kind} (mask {rnd.mask:#x}): lanes {missing:#x} never came")


def _poison(v: Any) -> Any:
    dt = np.asarray(v).dtype
    if dt.kind in "fc":
        return dt.type(np.nan)
    if dt.kind == "b":
        return dt.type(True)
    return np.array(_POISON_INT, np.int64).astype(dt)[()]


def _results(kind: str, args: dict[int, tuple[Any, Any]]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    if kind in ("ballot", "all", "any", "eq"):
        ballot = 0
        for lane, (pred, _) in args.items():
            if pred:
                ballot |= 1 << lane
        arrived = sum(1 << lane for lane in args)
        val = {
            "ballot": np.uint32(ballot),
            "all": ballot == arrived,
            "any": ballot != 0,
            "eq": ballot in (0, arrived),
        }[kind]
        return dict.fromkeys(args, val)
    for lane, (v, b) in args.items():
        if kind == "sync":
            out[lane] = None
            continue
        b = int(b)
        if kind == "idx":
            src = b & (WARP - 1)
        elif kind == "up":
            src = lane - b
        elif kind == "down":
            src = lane + b
        else:  # xor
            src = lane ^ b
        if not 0 <= src < WARP:
            out[lane] = v  # out of range: PTX hands back the caller's own value
        elif src in args:
            out[lane] = args[src][0]
        else:
            out[lane] = _poison(v)
    return out


def _warp_of(t: Any) -> tuple[_Warp, int]:
    manager = getattr(t, "_manager", None)
    if manager is None:
        raise RuntimeError("warp intrinsics run only inside a simulated kernel")
    warps = manager.__dict__.get("_aiinfra_warps")
    if warps is None:
        with _install_lock:
            warps = manager.__dict__.setdefault("_aiinfra_warps", {})
    w, lane = divmod(t.thread_id, WARP)
    warp = warps.get(w)
    if warp is None:
        with _install_lock:
            warp = warps.get(w)
            if warp is None:
                nthreads = int(np.prod(manager._block_dim))
                warp = warps[w] = _Warp(min(WARP, nthreads - w * WARP))
    return warp, lane


def _exchange(kind: str, mask: Any, value: Any, b: Any) -> Any:
    me = threading.current_thread()
    warp, lane = _warp_of(me)
    mask = int(mask) & FULL
    if not mask >> lane & 1:
        raise RuntimeError(f"lane {lane} calls {kind} with mask {mask:#x}, which lacks its bit")
    with _count_lock:
        _calls[kind] = _calls.get(kind, 0) + 1
    seqs = me.__dict__.setdefault("_aiinfra_seq", {})
    seq = seqs.get(mask, 0)
    seqs[mask] = seq + 1
    key = (mask, seq)
    with warp.cond:
        rnd = warp.rounds.get(key)
        if rnd is None:
            rnd = warp.rounds[key] = _Round(kind, mask)
        elif rnd.kind != kind:
            raise RuntimeError(
                f"lane {lane} calls {kind} where other lanes of mask {mask:#x} call {rnd.kind}"
            )
        rnd.args[lane] = (value, b)
        warp.finish_if_complete(rnd)
        strikes: dict[int, int] = {}
        while not rnd.done:
            warp.waiting[lane] = rnd
            warp.cond.wait(_POLL_S)
            if not rnd.done:
                warp.check_stuck(me, lane, rnd, strikes)
        warp.waiting.pop(lane, None)
        rnd.pending &= ~(1 << lane)
        if not rnd.pending:
            del warp.rounds[key]
        return rnd.results[lane]


def shfl_sync(mask, value, src_lane):
    return _exchange("idx", mask, value, src_lane)


def shfl_up_sync(mask, value, delta):
    return _exchange("up", mask, value, delta)


def shfl_down_sync(mask, value, delta):
    return _exchange("down", mask, value, delta)


def shfl_xor_sync(mask, value, lane_mask):
    return _exchange("xor", mask, value, lane_mask)


def syncwarp(mask=FULL):
    _exchange("sync", mask, None, 0)


def ballot_sync(mask, predicate):
    return _exchange("ballot", mask, bool(predicate), 0)


def all_sync(mask, predicate):
    return _exchange("all", mask, bool(predicate), 0)


def any_sync(mask, predicate):
    return _exchange("any", mask, bool(predicate), 0)


def eq_sync(mask, predicate):
    return _exchange("eq", mask, bool(predicate), 0)


_INTRINSICS = {
    f.__name__: f
    for f in (
        shfl_sync,
        shfl_up_sync,
        shfl_down_sync,
        shfl_xor_sync,
        syncwarp,
        ballot_sync,
        all_sync,
        any_sync,
        eq_sync,
    )
}


def install(cuda: Any) -> bool:
    """Give the simulator the warp intrinsics; True when ``cuda`` is the simulator.

    They go on the simulator's in-kernel ``cuda`` (FakeCUDAModule) and on the module
    itself: a device function from another module can see either, because the simulator
    swaps a module's ``cuda`` global in and out around each call from any thread. Lanes
    are registered as their threads start and marked as they exit, so a round never
    waits for a lane that has gone. On a real GPU this returns False and touches nothing.
    """
    global _installed
    if "simulator" not in cuda.jit.__module__:
        return False
    with _install_lock:
        if _installed:
            return True
        from numba.cuda.simulator import kernel, kernelapi

        for name, fn in _INTRINSICS.items():
            setattr(kernelapi.FakeCUDAModule, name, staticmethod(fn))
            setattr(cuda, name, fn)
        orig_run = kernel.BlockThread.run

        def run(self: Any) -> None:
            warp, lane = _warp_of(self)
            with warp.cond:
                warp.threads[lane] = self
            try:
                orig_run(self)
            finally:
                warp.exit(lane)

        kernel.BlockThread.run = run
        _installed = True
    return True
