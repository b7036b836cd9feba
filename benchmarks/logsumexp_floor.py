"""Where float32 logsumexp's time goes on the CPU: its two passes apart, from memory and
from L1, against the whole kernel and a copy timed in the same rounds.

    NUMBA_NUM_THREADS=1 python benchmarks/logsumexp_floor.py
    NUMBA_NUM_THREADS=1 setsid -w benchmarks/hiprio.sh python benchmarks/logsumexp_floor.py

Each part runs the SIMD loops of ``kernels_gpu._cpu_simd`` over 8192 rows of 1024 values,
serially: "memory" reads the 32 MiB input row after row, "L1" reads 4 rows over and over
(the same count of rows). The row pass is the max and min; the exp pass the clamp-free exp
sum. If "both passes, memory" is as fast as "both passes, L1", the memory time is hidden
and the kernel is bound by its arithmetic: its "% of copy" cannot pass the L1 figure's.
"the kernel's row loop, serial" is ``_cpu_rows._logsumexp_serial``, which one numba thread
takes: the kernel without its prange. The copy is
``kernels.py``'s (256 MiB, np.copyto on one thread, a prange copy on more: read + write).
Minimum over ``--rounds`` (the parts alternate in each round), in ms per 8192 rows.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels import CpuCopy  # noqa: E402  (benchmarks/ is this script's folder)

import kernels_gpu as kg  # noqa: E402
from kernels_gpu import _cpu_rows, _cpu_simd  # noqa: E402

ROWS, COLS = 8192, 1024


@numba.njit
def row_pass(x, n):
    s = 0.0
    for r in range(n):
        m, low = _cpu_simd.row_range(x[r % x.shape[0]])
        s += m + low
    return s


@numba.njit
def exp_pass(x, n):
    s = 0.0
    for r in range(n):
        # m = 5 is within 86 of every standard-normal value: the clamp-free loop.
        s += _cpu_simd.exp_sum_near(x[r % x.shape[0]], x[(r + 2) % x.shape[0]], np.float32(5))
    return s


@numba.njit
def both_passes(x, n):
    s = 0.0
    for r in range(n):
        xr = x[r % x.shape[0]]
        m, low = _cpu_simd.row_range(xr)
        s += _cpu_simd.exp_sum_near(xr, x[(r + 2) % x.shape[0]], m)
    return s


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20)
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)
    big = rng.standard_normal((ROWS, COLS), dtype=np.float32)
    small = np.ascontiguousarray(big[:4])
    out = np.empty(ROWS, np.float32)
    copy = CpuCopy()
    parts = {
        "row pass, memory": lambda: row_pass(big, ROWS),
        "row pass, L1": lambda: row_pass(small, ROWS),
        "exp pass, L1": lambda: exp_pass(small, ROWS),
        "both passes, memory": lambda: both_passes(big, ROWS),
        "both passes, L1": lambda: both_passes(small, ROWS),
        "the kernel's row loop, serial": lambda: _cpu_rows._logsumexp_serial(big, out),
        "kg.logsumexp (out=)": lambda: kg.logsumexp(big, out=out),
        "copy": copy.matching,
    }
    best = dict.fromkeys(parts, float("inf"))
    for fn in parts.values():
        fn()
    for _ in range(a.rounds):
        for name, fn in parts.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    copy_gbs = copy.gbs(best.pop("copy"))
    print(f"numba threads {numba.get_num_threads()}; rounds {a.rounds}; copy {copy_gbs:.1f} GB/s")
    print("| part | ms per 8192 rows | % of copy (32 MiB read) |\n|---|---|---|")
    for name, sec in best.items():
        print(f"| {name} | {sec * 1e3:.3f} | {100 * big.nbytes / sec / 1e9 / copy_gbs:.0f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
