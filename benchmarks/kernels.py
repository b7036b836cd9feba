"""Benchmark kernels_gpu against the best NumPy/SciPy (CPU) or CuPy (GPU) equivalent.

    python benchmarks/kernels.py                 # CPU twins vs NumPy/SciPy
    python benchmarks/kernels.py --device gpu    # CUDA kernels vs CuPy, + copy bandwidth
    python benchmarks/kernels.py --scale 0.25    # smaller inputs

Every row is measured in the same run as its peer, on the same inputs; the output is
also checked against the peer (max relative error, or "equal" for exact results).
Times are medians of repeated runs after a warm-up; the first call's time (JIT compile
included, or a cache load on the CPU when the numba cache is warm) is shown apart.
"GB/s" counts the fewest bytes the kernel must move (inputs read once, outputs written
once) and "% of copy" compares it with a copy measured in the same run: device-to-device
on the GPU; on the CPU a 256 MiB copy on one thread (np.copyto) or on all numba threads
(a prange copy), matching NUMBA_NUM_THREADS, timed in turns with the kernel (copy,
kernel, copy, kernel, ...) so that a shared machine's drift moves both alike. The
kernel is timed twice on the CPU: back to back ("ours ms", "% of copy": a 32 MiB input
partly stays in a 32 MiB L3) and right after the 256 MiB copy ("cold"), where its
input comes from memory as the copy's does.
softmax, logsumexp and layer_norm pass a reused ``out=`` (no first-touch page faults).
Both print the host overhead per call first (a tiny input, calls back to back).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import kernels_gpu as kg  # noqa: E402
from kernels_gpu.segments import minhash_params  # noqa: E402


class Timer:
    def __init__(self, gpu: bool) -> None:
        self.gpu = gpu
        if gpu:
            import cupy

            self.cp = cupy

    def sync(self) -> None:
        if self.gpu:
            self.cp.cuda.get_current_stream().synchronize()

    def once(self, fn, args) -> float:
        self.sync()
        t = time.perf_counter()
        fn(*args)
        self.sync()
        return time.perf_counter() - t

    def median(self, fn, args, repeat: int) -> float:
        fn(*args)
        if not self.gpu:
            return statistics.median(self.once(fn, args) for _ in range(repeat))
        cp = self.cp
        times = []
        for _ in range(repeat):
            a, b = cp.cuda.Event(), cp.cuda.Event()
            a.record()
            fn(*args)
            b.record()
            b.synchronize()
            times.append(cp.cuda.get_elapsed_time(a, b) / 1e3)
        return statistics.median(times)


def cases(xp, gpu: bool, scale: float):
    """(name, size label, make(rng) -> args, ours, peer, bytes moved, compare)."""
    if gpu:
        import cupyx
        from cupyx.scipy.signal import lfilter
    else:
        from scipy.signal import lfilter
        from scipy.special import logsumexp as sp_lse
        from scipy.special import softmax as sp_softmax

    def s(n: int) -> int:
        return max(1, int(n * scale))

    rows, cols = (s(32768), 4096) if gpu else (s(8192), 1024)
    bufs: dict = {}

    def reuse(fn, shape_of):
        """fn with an ``out=`` made once per input shape and reused (as a caller would)."""

        def call(x, *rest):
            key = (fn.__name__, x.shape)
            if key not in bufs:
                bufs[key] = xp.empty(shape_of(x), x.dtype)
            return fn(x, *rest, out=bufs[key])

        call.__name__ = fn.__name__
        return call

    def mat(rng, r=rows, c=cols, dt=np.float32):
        return (xp.asarray(rng.standard_normal((r, c), dtype=np.float32)).astype(dt),)

    def peer_softmax(x):
        if not gpu:
            return sp_softmax(x, axis=1)
        e = xp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def peer_lse(x):
        if not gpu:
            return sp_lse(x, axis=1)
        m = x.max(axis=1)
        return m + xp.log(xp.exp(x - m[:, None]).sum(axis=1))

    def make_ln(rng):
        (x,) = mat(rng)
        g = xp.asarray(rng.standard_normal(cols, dtype=np.float32))
        b = xp.asarray(rng.standard_normal(cols, dtype=np.float32))
        return x, g, b

    def peer_ln(x, g, b):
        mu = x.mean(axis=1, keepdims=True)
        var = x.var(axis=1, keepdims=True)
        return (x - mu) / xp.sqrt(var + 1e-5) * g + b

    nh = s(1 << 28) if gpu else s(1 << 24)

    def make_hist(rng):
        return (xp.asarray(rng.standard_normal(nh, dtype=np.float32)),)

    def ours_hist(x):
        return kg.histogram(x, 1024, range=(-4.0, 4.0))[0]

    def peer_hist(x):
        return xp.histogram(x, 1024, range=(-4.0, 4.0))[0]

    nseg, seglen = (s(1 << 20), 128) if gpu else (s(1 << 16), 128)

    def make_seg(rng):
        lens = rng.integers(0, 2 * seglen, nseg)
        off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        v = xp.asarray(rng.standard_normal(int(off[-1]), dtype=np.float32))
        ids = xp.asarray(np.repeat(np.arange(nseg), lens))
        return v, xp.asarray(off), ids

    def ours_seg(v, off, ids):
        return kg.segment_reduce(v, off, "max")

    def peer_seg(v, off, ids):
        if gpu:
            out = xp.full(nseg, -np.inf, np.float32)
            cupyx.scatter_max(out, ids, v)
            return xp.where(off[1:] > off[:-1], out, np.nan)
        nonempty = off[1:] > off[:-1]
        out = np.full(nseg, np.nan, np.float32)
        out[nonempty] = np.maximum.reduceat(v, off[:-1][nonempty])
        return out

    nser, serlen = (s(1 << 16), 2048) if gpu else (s(1 << 12), 2048)
    alpha = 0.1

    def make_ewma(rng):
        v = xp.asarray(rng.standard_normal(nser * serlen, dtype=np.float32))
        return v, xp.asarray(np.arange(nser + 1, dtype=np.int64) * serlen)

    def ours_ewma(v, off):
        return kg.ewma(v, off, alpha)

    def peer_ewma(v, off):
        x = v.reshape(nser, serlen)
        zi = (1 - alpha) * x[:, :1]  # so that y[0] = x[0]
        y, _ = lfilter(
            xp.asarray([alpha], np.float32),
            xp.asarray([1, alpha - 1], np.float32),
            x,
            axis=1,
            zi=zi,
        )
        return y.ravel()

    ndocs, doclen, nperm = (s(1 << 15), 256, 128) if gpu else (s(1 << 11), 256, 128)

    def make_mh(rng):
        t = xp.asarray(rng.integers(0, 1 << 40, ndocs * doclen, dtype=np.int64))
        return t, xp.asarray(np.arange(ndocs + 1, dtype=np.int64) * doclen)

    def ours_mh(t, off):
        return kg.minhash(t, off, nperm, 7)

    a_h, b_h = minhash_params(nperm, 7)
    a, b = xp.asarray(a_h), xp.asarray(b_h)

    def peer_mh(t, off):
        # The vectorised form: a (tokens, perms) hash matrix per chunk of documents.
        h = t.astype(np.uint64)
        for c1, c2 in ((33, 0xFF51AFD7ED558CCD), (33, 0xC4CEB9FE1A85EC53)):
            h = (h ^ (h >> np.uint64(c1))) * np.uint64(c2)
        h = h ^ (h >> np.uint64(33))
        out = xp.empty((ndocs, nperm), np.uint32)
        step = max(1, (1 << 22) // doclen)
        for d0 in range(0, ndocs, step):
            d1 = min(ndocs, d0 + step)
            hh = h[d0 * doclen : d1 * doclen, None] * a[None, :] + b[None, :]
            out[d0:d1] = (
                (hh >> np.uint64(32)).astype(np.uint32).reshape(d1 - d0, doclen, nperm).min(axis=1)
            )
        return out

    nq, nk, dim, k = (s(8192), s(1 << 16), 128, 16) if gpu else (s(1024), s(1 << 15), 64, 16)

    def make_topk(rng):
        q = xp.asarray(rng.standard_normal((nq, dim), dtype=np.float32))
        kk = xp.asarray(rng.standard_normal((nk, dim), dtype=np.float32))
        return q, kk

    def ours_topk(q, kk):
        return kg.pairwise_topk(q, kk, k, "l2")[0]

    def peer_topk(q, kk):
        d = (q * q).sum(1)[:, None] + (kk * kk).sum(1)[None, :] - 2 * (q @ kk.T)
        part = xp.argpartition(d, k, axis=1)[:, :k]
        vals = xp.take_along_axis(d, part, axis=1)
        return xp.sort(vals, axis=1)

    def ours_topk_single(q, kk):  # the one-query-per-block layout, for comparison
        from kernels_gpu import _cuda_topk

        _cuda_topk.MULTI = _cuda_topk.WARP = False
        try:
            return ours_topk(q, kk)
        finally:
            _cuda_topk.MULTI = _cuda_topk.WARP = True

    def ours_topk_multi(q, kk):  # the 8-queries-per-block thread layout, for comparison
        from kernels_gpu import _cuda_topk

        _cuda_topk.WARP = False
        try:
            return ours_topk(q, kk)
        finally:
            _cuda_topk.WARP = True

    f4 = 4
    extra = [
        ("topk 8 q/block", f"{nq}x{nk}x{dim} k={k} l2", make_topk, ours_topk_multi, peer_topk, (nq + nk) * dim * f4),
        ("topk 1 q/block", f"{nq}x{nk}x{dim} k={k} l2", make_topk, ours_topk_single, peer_topk, (nq + nk) * dim * f4),
    ]  # fmt: skip
    return [
        ("softmax", f"{rows}x{cols} f32", mat, reuse(kg.softmax, lambda x: x.shape), peer_softmax, 2 * rows * cols * f4),
        ("softmax (new out)", f"{rows}x{cols} f32", mat, kg.softmax, peer_softmax, 2 * rows * cols * f4),
        ("logsumexp", f"{rows}x{cols} f32", mat, reuse(kg.logsumexp, lambda x: x.shape[:1]), peer_lse, rows * cols * f4),
        ("layer_norm", f"{rows}x{cols} f32", make_ln, reuse(kg.layer_norm, lambda x: x.shape), peer_ln, 2 * rows * cols * f4),
        ("histogram", f"{nh} f32, 1024 bins", make_hist, ours_hist, peer_hist, nh * f4),
        ("segment_reduce", f"{nseg} segs ~{seglen} f32 max", make_seg, ours_seg, peer_seg, nseg * seglen * f4),
        ("pairwise_topk", f"{nq}x{nk}x{dim} k={k} l2", make_topk, ours_topk, peer_topk, (nq + nk) * dim * f4),
        ("ewma", f"{nser}x{serlen} f32", make_ewma, ours_ewma, peer_ewma, 2 * nser * serlen * f4),
        ("minhash", f"{ndocs} docs x {doclen} tok, {nperm} perm", make_mh, ours_mh, peer_mh, ndocs * (doclen * 8 + nperm * 4)),
    ] + (extra if gpu else [])  # fmt: skip


def rel_err(xp, ours, peer) -> str:
    o = np.asarray(ours.get() if hasattr(ours, "get") else ours, dtype=np.float64)
    p = np.asarray(peer.get() if hasattr(peer, "get") else peer, dtype=np.float64)
    if o.shape != p.shape:
        return f"shape {o.shape} vs {p.shape}"
    if np.array_equal(o, p, equal_nan=True):
        return "equal"
    fin = np.isfinite(p)
    if not np.array_equal(fin, np.isfinite(o)):
        return "NaN/inf differ"
    denom = np.linalg.norm(p[fin]) or 1.0
    return f"{np.linalg.norm(o[fin] - p[fin]) / denom:.1e}"


class CpuCopy:
    """A 256 MiB copy (read + write) on one thread (np.copyto) or on all numba threads (a
    prange copy): the CPU's "% of copy" reference."""

    def __init__(self) -> None:
        import numba

        @numba.njit(parallel=True)
        def pcopy(src, dst, nchunks):
            n = src.size
            step = (n + nchunks - 1) // nchunks
            for c in numba.prange(nchunks):
                dst[c * step : min(n, (c + 1) * step)] = src[c * step : min(n, (c + 1) * step)]

        self.src = np.random.default_rng(1).standard_normal(1 << 26, dtype=np.float32)
        self.dst = np.empty_like(self.src)
        self.threads = numba.get_num_threads()
        self._pcopy = pcopy

    def one(self) -> None:
        np.copyto(self.dst, self.src)

    def all(self) -> None:
        self._pcopy(self.src, self.dst, self.threads)

    def matching(self) -> None:
        """The copy matching NUMBA_NUM_THREADS: ``one`` on one thread, else ``all``."""
        (self.one if self.threads == 1 else self.all)()

    def gbs(self, seconds: float) -> float:
        return 2 * self.src.nbytes / seconds / 1e9


def interleaved(timer: Timer, fn, args, other, repeat: int) -> tuple[float, float]:
    """Medians of ``other()`` and then ``fn(*args)``, timed in turns after a warm-up."""
    fn(*args)
    a, b = [], []
    for _ in range(repeat):
        b.append(timer.once(other, ()))
        a.append(timer.once(fn, args))
    return statistics.median(a), statistics.median(b)


def host_overhead(timer: Timer, xp) -> None:
    """Time per call on a tiny input (launch-bound on the GPU; on the CPU the twins' own
    work on 4x32 values is about 1 us): the host path, in microseconds."""
    x = xp.asarray(np.random.default_rng(2).standard_normal((4, 32), dtype=np.float32))
    g = xp.ones(32, xp.float32)
    out, lse_out = xp.empty_like(x), xp.empty(4, xp.float32)
    offsets = xp.asarray(np.arange(0, 129, 32, dtype=np.int64))
    calls = {
        "softmax": lambda: kg.softmax(x),
        "softmax out=": lambda: kg.softmax(x, out=out),
        "logsumexp out=": lambda: kg.logsumexp(x, out=lse_out),
        "layer_norm gamma, beta, out=": lambda: kg.layer_norm(x, g, g, out=out),
        "histogram range": lambda: kg.histogram(x, 16, range=(-4.0, 4.0)),
        "segment_reduce sum": lambda: kg.segment_reduce(x.reshape(-1), offsets, "sum"),
    }
    for name, fn in calls.items():
        fn()
        per = []
        for _ in range(5):
            timer.sync()
            t = time.perf_counter()
            for _ in range(200):
                fn()
            timer.sync()
            per.append((time.perf_counter() - t) / 200)
        print(f"host overhead {name}: {statistics.median(per) * 1e6:.0f} us per call")


def copy_bandwidth(timer: Timer) -> float:
    cp = timer.cp
    src = cp.random.standard_normal(1 << 28, dtype=cp.float32)  # 1 GiB
    dst = cp.empty_like(src)
    t = timer.median(lambda: dst.__setitem__(Ellipsis, src), (), 20)
    return 2 * src.nbytes / t / 1e9


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--only", default="", help="comma-separated kernel names")
    a = p.parse_args(argv)
    gpu = a.device == "gpu"
    timer = Timer(gpu)
    if gpu:
        import cupy as xp

        dev = xp.cuda.runtime.getDeviceProperties(0)["name"].decode()
        copy_gbs = copy_bandwidth(timer)
        print(f"device: {dev}; device-to-device copy {copy_gbs:.0f} GB/s (read + write)")
        host_overhead(timer, xp)
    else:
        import os

        xp = np
        copy = CpuCopy()
        nt = copy.threads
        one = copy.gbs(timer.median(copy.one, (), 15))
        alln = copy.gbs(timer.median(copy.all, (), 15))
        print(
            f"cpu: {os.cpu_count()} cores, numba threads {nt}; copy (read + write) "
            f"1 thread {one:.1f} GB/s, {nt} threads {alln:.1f} GB/s; load {os.getloadavg()}"
        )
        host_overhead(timer, xp)
    rng = np.random.default_rng(0)
    only = set(filter(None, a.only.split(",")))
    cols = ["kernel", "size", "first call s", "ours ms", "peer ms", "speedup"]
    cols += ["GB/s", "% of copy"] + ([] if gpu else ["cold ms", "cold % of copy", "copy GB/s"])
    cols.append("check vs peer")
    table = []
    print(" | ".join(cols), flush=True)
    for name, size, make, ours, peer, nbytes in cases(xp, gpu, a.scale):
        if only and name not in only:
            continue
        try:
            args = make(rng)
            first = timer.once(ours, args)
            t_ours = timer.median(ours, args, a.repeat)
            if not gpu:  # the copy in turns with the kernel: this row's copy figure
                t_cold, t_copy = interleaved(timer, ours, args, copy.matching, a.repeat)
                copy_gbs = copy.gbs(t_copy)
            t_peer = timer.median(peer, args, max(3, a.repeat // 2))
            row = [name, size, f"{first:.2f}", f"{t_ours * 1e3:.2f}", f"{t_peer * 1e3:.2f}"]
            row.append(f"{t_peer / t_ours:.2f}x")
            gbs = nbytes / t_ours / 1e9
            row += [f"{gbs:.1f}", f"{100 * gbs / copy_gbs:.0f}%"]
            if not gpu:
                cold = nbytes / t_cold / 1e9
                row += [f"{t_cold * 1e3:.2f}", f"{100 * cold / copy_gbs:.0f}%", f"{copy_gbs:.1f}"]
            row.append(rel_err(xp, ours(*args), peer(*args)))
            del args
        except Exception as e:  # one failing kernel must not hide the others' numbers
            row = [name, size, f"FAILED {type(e).__name__}: {e}"[:300]]
        print(" | ".join(row), flush=True)
        table.append(row)
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for row in table:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
