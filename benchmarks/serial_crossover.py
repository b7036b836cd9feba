"""Where each CPU twin's serial loop and its parallel region cross, on this machine.

    python benchmarks/serial_crossover.py                 # numba's default thread count
    NUMBA_NUM_THREADS=2 setsid -w benchmarks/hiprio.sh python benchmarks/serial_crossover.py

For each kernel and size it times the serial twin and the parallel twin of
``kernels_gpu._cpu_rows``/``_cpu_segments`` directly (median of 7 batches, in us per
call) and prints parallel / serial: above 1 the serial twin is faster. "takes" is the
twin that the kernel's dispatch (``_cpu_threads.serial`` over the kernel's work count)
picks at that size; "ok" when it is the faster one or within 10% of it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernels_gpu import _cpu_rows as R  # noqa: E402
from kernels_gpu import _cpu_segments as S  # noqa: E402
from kernels_gpu import segments as kg_segments  # noqa: E402


def per_call(kernel, args: tuple, values: int) -> float:
    kernel(*args)
    reps = max(5, int(3e5 // (values + 3000)))
    batches = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            kernel(*args)
        batches.append((time.perf_counter() - t0) / reps)
    return float(np.median(batches))


def report(name: str, size: str, serial: tuple, parallel: tuple, takes_serial: bool) -> None:
    """``serial``/``parallel``: (kernel, args); timed on the size of args[0]."""
    values = serial[1][0].size
    ts, tp = per_call(*serial, values), per_call(*parallel, values)
    faster = "serial" if ts <= tp else "parallel"
    took = "serial" if takes_serial else "parallel"
    ok = "ok" if (ts if takes_serial else tp) <= 1.1 * min(ts, tp) else "MISSED"
    line = f"{name:14s} {size:>14s} {ts * 1e6:9.1f} {tp * 1e6:9.1f} {tp / ts:6.2f}"
    print(f"{line}  {faster:8s} {took:8s} {ok}", flush=True)


def rows(rng) -> None:
    for cols in (32, 256, 1024, 4096):
        for nrows in (1, 4, 16, 64, 256, 1024):
            if nrows * cols > 1 << 20:
                continue
            x = rng.standard_normal((nrows, cols), dtype=np.float32)
            out, out1, g = np.empty_like(x), np.empty(nrows, np.float32), np.ones(cols, np.float32)
            size, takes = f"{nrows}x{cols}", R._serial(x)
            sm, lse, ln = (x, out), (x, out1), (x, g, g, 1e-5, out)
            takes_sm = R._serial(x, R._SOFTMAX_ROW)
            report("softmax", size, (R._softmax_serial, sm), (R._softmax_parallel, sm), takes_sm)
            report(
                "logsumexp", size, (R._logsumexp_serial, lse), (R._logsumexp_parallel, lse), takes
            )
            report(
                "layer_norm", size, (R._layer_norm_serial, ln), (R._layer_norm_parallel, ln), takes
            )


def segments(rng) -> None:
    for seglen in (4, 32, 256):
        for n in (256, 1024, 4096, 16384, 65536, 262144):
            nseg = max(1, n // seglen)
            v = rng.standard_normal(n).astype(np.float32)
            o = np.linspace(0, n, nseg + 1).astype(np.int64)
            out, oe = np.empty(nseg, np.float32), np.empty(n, np.float32)
            size = f"{n}/{seglen}"
            red, mm, ew = (v, o, 0, out), (v, o, True, out), (v, o, 0.3, oe)
            mmb = (v, o, True, min(nseg, 256), out)  # the parallel twin's blocks too
            twins = (
                ("segment sum", S._segment_reduce_serial, red, S._segment_reduce_parallel, red),
                ("segment max", S._segment_minmax_serial, mm, S._segment_minmax_parallel, mmb),
                ("ewma", S._ewma_serial, ew, S._ewma_parallel, ew),
            )
            takes = [
                f(v, o) for f in (S.segment_reduce_serial, S.segment_minmax_serial, S.ewma_serial)
            ]
            for (name, ser, ser_args, par, par_args), serial in zip(twins, takes):
                report(name, size, (ser, ser_args), (par, par_args), serial)
    chunks = 4 * kg_segments._CPUS  # as kernels_gpu.histogram splits its values
    for n in (256, 1024, 4096, 16384, 65536, 262144, 1 << 20):
        v = rng.standard_normal(n).astype(np.float32)
        e, c, w = np.linspace(-3, 3, 65), np.zeros(64, np.int64), np.empty(0)
        ser, par = (v, w, e, -3.0, 3.0, c), (v, w, e, -3.0, 3.0, min(n, chunks), c)
        takes = S.histogram_serial(v, c)
        report(
            "histogram 64", str(n), (S._histogram_serial, ser), (S._histogram_parallel, par), takes
        )
        report(
            "minmax",
            str(n),
            (S._minmax_serial, (v,)),
            (S._minmax_parallel, (v,)),
            S.minmax_serial(v),
        )


def main() -> None:
    print(f"numba threads {numba.get_num_threads()}")
    head = f"{'kernel':14s} {'size':>14s} {'serial us':>9s} {'par. us':>9s} {'par/s':>6s}"
    print(f"{head}  faster   takes")
    rng = np.random.default_rng(0)
    rows(rng)
    segments(rng)


if __name__ == "__main__":
    main()
