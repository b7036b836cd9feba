"""A/B of the CPU twins: another checkout's ``kernels_gpu`` against this one's, in one process.

    git worktree add /tmp/old 6584571        # or: git archive REV | tar -x -C /tmp/old
    python benchmarks/kernels_ab.py --old /tmp/old
    NUMBA_NUM_THREADS=1 python benchmarks/kernels_ab.py --old /tmp/old --only logsumexp

On a shared machine two processes run at different speeds, so ``kernels.py`` run twice cannot
tell a 10% change from drift. Here both versions run in the same process, round by round:
old and new alternate which goes first, "warm" times a kernel's second call in a row, "cold"
a call right after a 256 MiB copy (its input then comes from memory, as the copy's does), and
"% of copy" is against that copy, timed in the same rounds (np.copyto on one thread, a prange
copy on more). Medians over ``--rounds``. The old package is imported under another name from
a temporary copy, so its numba cache is its own.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels import CpuCopy  # noqa: E402  (benchmarks/ is this script's folder)

import kernels_gpu as new  # noqa: E402


def import_old(checkout: Path, into: Path):
    """The ``kernels_gpu`` package of ``checkout``, imported as ``kernels_gpu_old``."""
    src = checkout / "kernels_gpu"
    if not (src / "__init__.py").is_file():
        raise SystemExit(f"--old: no kernels_gpu package in {checkout}")
    shutil.copytree(src, into / "kernels_gpu_old", ignore=shutil.ignore_patterns("__pycache__"))
    sys.path.insert(0, str(into))
    return importlib.import_module("kernels_gpu_old")


def cases(rng):
    """(name, call(kg), bytes the kernel must move or None, reference() or None)."""
    x = rng.standard_normal((8192, 1024), dtype=np.float32)
    g = rng.standard_normal(1024, dtype=np.float32)
    out, lse = np.empty_like(x), np.empty(8192, np.float32)
    shapes = [(8192, 1000), (65536, 128)]
    xs = {s: rng.standard_normal(s, dtype=np.float32) for s in shapes}
    outs = {s: np.empty(s[0], np.float32) for s in shapes}
    lens = rng.integers(64, 192, 65536)
    off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    v = rng.standard_normal(int(off[-1]), dtype=np.float32)
    yield "softmax 8192x1024", lambda kg: kg.softmax(x, out=out), 2 * x.nbytes, None
    yield "logsumexp 8192x1024", lambda kg: kg.logsumexp(x, out=lse), x.nbytes, None
    yield "layer_norm 8192x1024", lambda kg: kg.layer_norm(x, g, g, out=out), 2 * x.nbytes, None
    for s in shapes:
        label = f"logsumexp {s[0]}x{s[1]}"
        yield label, lambda kg, s=s: kg.logsumexp(xs[s], out=outs[s]), xs[s].nbytes, None
    yield (
        "segment_reduce max 65536 segs",
        lambda kg: kg.segment_reduce(v, off, "max"),
        None,
        lambda: np.maximum.reduceat(v, off[:-1]),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", type=Path, required=True, help="a checkout holding kernels_gpu/")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--only", default="", help="kernel names (first word of a row)")
    a = p.parse_args(argv)
    import numba

    only = set(filter(None, a.only.split(",")))
    with tempfile.TemporaryDirectory() as tmp:
        old = import_old(a.old.resolve(), Path(tmp))
        reference = CpuCopy()
        copy = reference.matching
        copy()
        print(f"numba threads {numba.get_num_threads()}; old: {a.old}; rounds {a.rounds}")
        cols = ["kernel", "old warm ms", "new warm ms", "old cold ms", "new cold ms"]
        cols += ["new/old warm", "old % of copy", "new % of copy", "copy GB/s"]
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols), flush=True)
        for name, call, nbytes, ref in cases(np.random.default_rng(0)):
            if only and name.split()[0] not in only:
                continue
            versions = {"old": old, "new": new}
            for kg in versions.values():
                call(kg)
            t = {(k, w): [] for k in versions for w in ("warm", "cold")}
            copies = []
            for r in range(a.rounds):
                for k in list(versions)[:: 1 if r % 2 == 0 else -1]:
                    call(versions[k])
                    t0 = time.perf_counter()
                    call(versions[k])
                    t[(k, "warm")].append(time.perf_counter() - t0)
                    copy()
                    t0 = time.perf_counter()
                    call(versions[k])
                    t[(k, "cold")].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                copy()
                copies.append(time.perf_counter() - t0)
            med = {key: statistics.median(v) for key, v in t.items()}
            copy_gbs = reference.gbs(statistics.median(copies))
            row = [name] + [f"{med[key] * 1e3:.3f}" for key in sorted(med, key=_order)]
            row.append(f"{med[('new', 'warm')] / med[('old', 'warm')]:.2f}")
            for k in versions:
                if nbytes is not None:
                    row.append(f"{100 * nbytes / med[(k, 'warm')] / 1e9 / copy_gbs:.0f}%")
                else:  # no byte count: the speedup over the NumPy peer instead
                    peer = statistics.median(_times(ref, a.rounds))
                    row.append(f"{peer / med[(k, 'warm')]:.2f}x peer")
            row.append(f"{copy_gbs:.1f}")
            print("| " + " | ".join(row) + " |", flush=True)
    return 0


def _order(key: tuple[str, str]) -> tuple[int, int]:
    version, when = key
    return (when == "cold", version == "new")


def _times(fn, n: int) -> list[float]:
    fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
