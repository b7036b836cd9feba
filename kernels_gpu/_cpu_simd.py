"""float32 row loops written as explicit SIMD in LLVM vector IR: the row pass and exp
loops of softmax and logsumexp (``row_range``, ``exp_store``, ``exp_sum``) and the
segment max/min of ``segment_reduce`` (``segment_max``, ``segment_min``).

numba vectorises a scalar loop through LLVM's loop vectoriser, which left logsumexp at
about 55% of copy bandwidth on one thread. What it cannot do is done here by hand, as
numba intrinsics that emit loops over ``<16 x float>``:

- **A float max that ignores NaN.** Without fast-math "nnan" the vectoriser will not
  turn a float max into ``vmaxps`` (``_cpu_rows._row_max`` takes integer keys instead,
  five operations per 16 values). Here it is one compare-and-select per vector, and the
  row's min comes with it; NaN is caught later, because it reaches the exp sum (or, for
  segments, by one unordered compare per vector).
- **exp from a table held in a register.** 2**(k/16) for k mod 16 comes from a 16-entry
  table by one ``vpermd``; the rest, exp(y) for |y| <= ln2/32, needs a degree-3
  polynomial instead of degree 6: 6 FMAs per 16 values instead of 8, and the FMA units
  are what bound the exp pass. A second ``vpermd`` corrects the table's float32
  rounding, so that a term is as accurate as the polynomial path's (0.58 ulp near the
  max, measured; 1.7 without the correction). The vectoriser would emit gathers for the
  tables, slower than the polynomial they save. The tables need AVX-512's 16-lane
  permute; elsewhere the same loop runs the degree-6 polynomial of ``_cpu_bits``
  (``_has_table`` decides, at compile time).
- **No clamp where no value needs it.** Terms are clamped at exp(-87) so that 2**n
  stays a float32 exponent; a row whose min is within 86 of its max (the row pass finds
  the min alongside the max) takes a loop without the clamp, one operation fewer.

The loops also sum in float32 over blocks of 256 values and add each block's 16 lane
sums into float64 lanes (one horizontal sum per row, not per block), prefetch a later
row one cache line per vector, and take a row's last partial vectors by masked loads.
The generic vector IR is legal on every LLVM target; narrower machines split it.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._cpu_bits import _EXP_C2, _EXP_C3, _EXP_C4, _EXP_C5, _EXP_C6, _LN2, _LOG2E, _ROUND_F
from ._simd_ir import (
    _F32,
    _I32,
    _LANES,
    _STEP,
    _UNROLL,
    _VB,
    _VD,
    _VF,
    _VI,
    _broadcast,
    _counted_loop,
    _horizontal,
    _is_f32_row,
    _max,
    _min,
    _Row,
    _splat,
    _tail_masks,
    _unless_empty,
)

# Steps per float32 block: each lane sums 4 terms per accumulator before the block's lane
# sums are added into float64 (the same rounding as the scalar kernels' 256-value blocks).
_BLOCK_STEPS = 4
# Terms are clamped at exp(-87) = 1.6e-38 instead of 0 (one max, no compare and select):
# against a sum >= 1 they add nothing. ln 2 is one float32 constant: its 1.9e-9 error
# times n gives a term 2**-n a relative error n * 1.9e-9, too small to move the sum.
_EXP_FLOOR = -87.0
_LN2_F = np.float32(_LN2)

# exp(d) = 2**(k/16) * exp(y), k = round(d * 16/ln2), y = d - k * ln2/16, |y| <= ln2/32.
# The rounding sum t = d * 16/ln2 + 1.5 * 2**23 holds k in its low bits, so t's bits << 19
# are ((k >> 4) << 23) + ((k & 15) << 19): 2**(k >> 4) in the exponent field plus a
# per-entry offset that the table takes off in advance (one AND fewer per 16 values).
_TABLE_BITS = [int(np.float32(2.0 ** (j / 16)).view(np.int32)) - (j << 19) for j in range(16)]
_TBL_SCALE = float(np.float32(16 * _LOG2E))
_TBL_LN2 = float(_LN2_F) / 16  # exact: a power-of-two division of the float32 ln 2
# Near-minimax exp(y) = 1 + y + c2 y**2 + c3 y**3 on |y| <= ln2/32: relative error 1.6e-9.
_TBL_C2 = float(np.float32(0.50001617))
_TBL_C3 = float(np.float32(0.16666786))
_TBL_SHIFT = 19
# float32(2**(j/16)) = 2**(j/16) / (1 + delta_j), |delta_j| <= 0.8 * 2**-24: a second table
# puts delta_j back, so that the table's rounding does not reach the terms.
_TABLE_DELTA_BITS = [
    int(np.float32(2.0 ** (j / 16) / float(np.float32(2.0 ** (j / 16))) - 1.0).view(np.int32))
    for j in range(16)
]


def _extremes_codegen(want_max: bool, want_min: bool, nan_wins: bool):
    """The loop of ``row_range`` and ``segment_max``/``segment_min``: the extremes of a
    float32 row, NaN ignored, or with ``nan_wins`` NaN if the row holds one."""

    def codegen(context, builder, sig, args):
        xs = _Row(context, builder, sig.args[0], args[0])
        ops = ([_max] if want_max else []) + ([_min] if want_min else [])
        starts = ([-math.inf] if want_max else []) + ([math.inf] if want_min else [])
        no_nan = ir.Constant(_VB, [0] * _LANES)

        def step(at, accs, masks=None):
            out = list(accs)
            for u in range(_UNROLL):
                off = builder.add(at, ir.Constant(at.type, u * _LANES))
                # NaN past the end: the compares ignore it (and the NaN watch is masked).
                v = xs.load(off) if masks is None else xs.masked_load(off, masks[u], math.nan)
                for i, op in enumerate(ops):
                    out[i * _UNROLL + u] = op(builder, v, accs[i * _UNROLL + u])
                if nan_wins:
                    nan = builder.fcmp_unordered("uno", v, v)
                    if masks is not None:
                        nan = builder.and_(nan, masks[u])
                    out[-1] = builder.or_(out[-1], nan)
            return out

        const = lambda v: ir.Constant(xs.size.type, v)  # noqa: E731
        inits = [_splat(_VF, s0) for s0 in starts for _ in range(_UNROLL)]
        inits += [no_nan] if nan_wins else []
        steps = builder.sdiv(xs.size, const(_STEP))
        accs = _counted_loop(
            builder, steps, inits, lambda i, a: step(builder.mul(i, const(_STEP)), a)
        )
        start = builder.mul(steps, const(_STEP))
        left = builder.sub(xs.size, start)
        accs = _unless_empty(
            builder, left, accs, lambda a: step(start, a, _tail_masks(builder, left))
        )
        out = []
        for i, op in enumerate(ops):
            part = accs[i * _UNROLL : (i + 1) * _UNROLL]
            v = op(builder, op(builder, part[0], part[1]), op(builder, part[2], part[3]))
            out.append(_horizontal(builder, v, lambda a, b, op=op: op(builder, a, b)))
        if nan_wins:
            seen = _horizontal(builder, accs[-1], builder.or_)
            out = [builder.select(seen, ir.Constant(_F32, math.nan), v) for v in out]
        if len(out) == 1:
            return out[0]
        return context.make_tuple(builder, sig.return_type, out)

    return codegen


@intrinsic
def row_range(typingctx, row):
    """(largest, smallest) value of a 1-D float32 array, NaN ignored ((-inf, inf) if
    there is none). The min is nearly free: the pass waits on memory, not on its compares."""
    if not _is_f32_row(row):
        return None
    return types.UniTuple(types.float32, 2)(row), _extremes_codegen(True, True, False)


@intrinsic
def segment_max(typingctx, row):
    """The largest value of a 1-D float32 array; NaN if it holds NaN; -inf if empty.

    One compare-and-select and one NaN compare per 16 values, where the integer keys of
    ``_cpu_segments.segment_minmax`` take five operations."""
    if not _is_f32_row(row):
        return None
    return types.float32(row), _extremes_codegen(True, False, True)


@intrinsic
def segment_min(typingctx, row):
    """The smallest value of a 1-D float32 array; NaN if it holds NaN; inf if empty."""
    if not _is_f32_row(row):
        return None
    return types.float32(row), _extremes_codegen(False, True, True)


class _ExpTerms:
    """exp(v - m) of vectors, m the row's max: for a sum whose largest term is 1
    (logsumexp: ln 2 in one constant, terms clamped at exp(-87) with ``clamp``) or, with
    ``exact``, as values of their own (softmax: ln 2 in two constants, exp(d) = 0 for
    d < -87 with ``clamp``). Without ``clamp`` every v must be >= m - 86."""

    def __init__(self, builder: ir.IRBuilder, m, table: bool, clamp: bool, exact: bool) -> None:
        self.b = builder
        self.m = _broadcast(builder, m, _VF)
        self.table = table
        self.clamp = clamp
        self.exact = exact
        fnty = ir.FunctionType(_VF, [_VF, _VF, _VF])
        self._fma = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.v16f32")
        if table:
            fnty = ir.FunctionType(_VI, [_VI, _VI])
            name = "llvm.x86.avx512.permvar.si.512"
            self._perm = cgutils.get_or_insert_function(builder.module, fnty, name)

    def fma(self, a, b, c):
        return self.b.call(self._fma, [a, b, c])

    def _reduce(self, k, d, ln2):
        """d - k * ln2: one FMA, or two with ``exact`` (ln 2 as hi + lo; the FMA keeps
        k * hi exact, so hi needs no trailing zeros)."""
        hi = float(np.float32(ln2))
        y = self.fma(k, _splat(_VF, -hi), d)
        if self.exact:
            y = self.fma(k, _splat(_VF, -float(np.float32(ln2 - hi))), y)
        return y

    def exp(self, v):
        b = self.b
        floor = _splat(_VF, _EXP_FLOOR)
        d = b.fsub(v, self.m)
        if self.clamp and not self.exact:
            # max(floor, d), not max(d, floor): a NaN d stays NaN, so NaN reaches the sum.
            d = _max(b, floor, d)
        rnd = _splat(_VF, float(_ROUND_F))
        if self.table:
            t = self.fma(d, _splat(_VF, _TBL_SCALE), rnd)
            y = self._reduce(b.fsub(t, rnd), d, _LN2 / 16 if self.exact else _TBL_LN2)
            q = self.fma(y, _splat(_VF, _TBL_C3), _splat(_VF, _TBL_C2))
            q = self.fma(y, q, _splat(_VF, 1.0))  # exp(y) = 1 + y q
            tb = b.bitcast(t, _VI)
            # vpermd reads the low 4 bits of each index: the entries of k mod 16.
            frac = b.call(self._perm, [ir.Constant(_VI, _TABLE_BITS), tb])
            delta = b.call(self._perm, [ir.Constant(_VI, _TABLE_DELTA_BITS), tb])
            w = self.fma(y, q, b.bitcast(delta, _VF))
            scale = b.bitcast(b.add(frac, b.shl(tb, _splat(_VI, _TBL_SHIFT))), _VF)
            # scale * (1 + delta + y q) as scale + scale * w: nothing near 1 is rounded.
            e = self.fma(scale, w, scale)
        else:
            # The portable path: 2**n * exp(y), |y| <= ln2/2, by _cpu_bits's degree-6
            # polynomial, 2**n added to the exponent bits.
            t = self.fma(d, _splat(_VF, float(np.float32(_LOG2E))), rnd)
            y = self._reduce(b.fsub(t, rnd), d, _LN2 if self.exact else float(_LN2_F))
            p = _splat(_VF, float(_EXP_C6))
            for c in (_EXP_C5, _EXP_C4, _EXP_C3, _EXP_C2, 1.0, 1.0):
                p = self.fma(p, y, _splat(_VF, float(c)))
            exp2n = b.shl(b.bitcast(t, _VI), _splat(_VI, 23))
            e = b.bitcast(b.add(b.bitcast(p, _VI), exp2n), _VF)
        if self.clamp and self.exact:
            # An ordered compare: NaN is not below the floor, so it stays.
            e = b.select(b.fcmp_ordered("<", d, floor), _splat(_VF, 0.0), e)
        return e

    def add_to(self, acc, v, mask=None):
        """acc + exp(v - m), lane by lane; lanes off in ``mask`` add 0."""
        e = self.exp(v)
        return self.b.fadd(acc, e if mask is None else self.b.select(mask, e, _splat(_VF, 0.0)))


def _exp_sum_codegen(table: bool, clamp: bool, store: bool):
    """The loops of the exp sums: the second row is prefetched, or with ``store`` it is
    the output, written exp(row - m) (softmax before its scaling)."""

    def codegen(context, builder, sig, args):
        xs = _Row(context, builder, sig.args[0], args[0])
        other = _Row(context, builder, sig.args[1], args[1])
        term = _ExpTerms(builder, args[2], table, clamp, exact=store)
        zero = _splat(_VF, 0.0)
        lo = ir.Constant(ir.VectorType(_I32, 8), list(range(8)))
        hi = ir.Constant(ir.VectorType(_I32, 8), list(range(8, 16)))
        const = lambda v: ir.Constant(xs.size.type, v)  # noqa: E731

        def add_step(at, accs, masks=None):
            out = []
            for u, acc in enumerate(accs):
                off = builder.add(at, const(u * _LANES))
                if store:
                    if masks is None:
                        e = term.exp(xs.load(off))
                        other.store(off, e)
                    else:
                        # -inf past the end: exp of it is finite (or 0) whatever m is.
                        e = term.exp(xs.masked_load(off, masks[u], -math.inf))
                        other.masked_store(off, e, masks[u])
                        e = builder.select(masks[u], e, zero)
                    out.append(builder.fadd(acc, e))
                elif masks is None:
                    other.prefetch(off)
                    out.append(term.add_to(acc, xs.load(off)))
                else:
                    # The tail's lines too (a prefetch past the row's end never faults):
                    # without them rows of 1000 values ran 1.6x slower than rows of 1024.
                    other.prefetch(off)
                    v = xs.masked_load(off, masks[u], -math.inf)
                    out.append(term.add_to(acc, v, masks[u]))
            return out

        def flush(accs, wide):
            s = builder.fadd(builder.fadd(accs[0], accs[1]), builder.fadd(accs[2], accs[3]))
            return [
                builder.fadd(wide[0], builder.fpext(builder.shuffle_vector(s, s, lo), _VD)),
                builder.fadd(wide[1], builder.fpext(builder.shuffle_vector(s, s, hi), _VD)),
            ]

        # Blocks of _BLOCK_STEPS steps; the count of steps in a block is computed, not a
        # constant, so that LLVM does not unroll it into 16 interleaved exps that spill.
        steps = builder.sdiv(xs.size, const(_STEP))
        blocks = builder.sdiv(builder.add(steps, const(_BLOCK_STEPS - 1)), const(_BLOCK_STEPS))

        def block(i, wide):
            first = builder.mul(i, const(_BLOCK_STEPS))
            n = builder.sub(steps, first)
            n = builder.select(
                builder.icmp_signed("<", n, const(_BLOCK_STEPS)), n, const(_BLOCK_STEPS)
            )
            at = builder.mul(first, const(_STEP))
            accs = _counted_loop(
                builder,
                n,
                [zero] * _UNROLL,
                lambda j, a: add_step(builder.add(at, builder.mul(j, const(_STEP))), a),
            )
            return flush(accs, wide)

        zd = _splat(_VD, 0.0)
        wide = _counted_loop(builder, blocks, [zd, zd], block)
        start = builder.mul(steps, const(_STEP))
        left = builder.sub(xs.size, start)
        total = _unless_empty(
            builder,
            left,
            wide,
            lambda w: flush(add_step(start, [zero] * _UNROLL, _tail_masks(builder, left)), w),
        )
        return _horizontal(builder, builder.fadd(total[0], total[1]), builder.fadd)

    return codegen


def _has_table(context) -> bool:
    """Whether the code numba builds may use AVX-512's 16-lane vpermd: an x86-64 target
    with avx512f among the features numba compiles for (NUMBA_CPU_FEATURES or the host's)."""
    codegen = context.codegen()
    try:
        triple = codegen._tm.triple
        features = codegen._get_host_cpu_features()
    except AttributeError:  # another numba layout: take the path every target has
        return False
    return triple.startswith("x86_64") and "+avx512f" in features.split(",")


def _exp_sum_signature(row, ahead, m):
    if _is_f32_row(row) and _is_f32_row(ahead) and m == types.float32:
        return types.float64(row, ahead, m)
    return None


def _exp_sum(name: str, table: bool | None, clamp: bool, doc: str, store: bool = False):
    """An exp-sum intrinsic; ``table=None``: the table where ``_has_table``, else not."""

    def typer(typingctx, row, other, m):
        sig = _exp_sum_signature(row, other, m)
        if sig is None:
            return None

        def codegen(context, builder, sig, args):
            use = _has_table(context) if table is None else table
            return _exp_sum_codegen(use, clamp, store)(context, builder, sig, args)

        return sig, codegen

    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


exp_sum = _exp_sum(
    "exp_sum",
    None,
    True,
    """Sum of exp(row - m) in float64, for a float32 row whose largest value is the finite
    ``m``; NaN if the row holds NaN. Prefetches ``ahead`` (a later row of the same length).
    The table on AVX-512 machines, the degree-6 polynomial elsewhere.""",
)
exp_sum_near = _exp_sum(
    "exp_sum_near",
    None,
    False,
    """``exp_sum`` for a row with no value under m - 86: no clamp at the exp floor
    (one operation fewer per 16 values).""",
)
exp_sum_portable = _exp_sum(
    "exp_sum_portable", False, True, "``exp_sum`` by the degree-6 polynomial on any machine."
)
exp_sum_near_portable = _exp_sum(
    "exp_sum_near_portable", False, False, "``exp_sum_near`` by the degree-6 polynomial."
)
_STORE_DOC = """Writes out[i] = exp(row[i] - m) (0 for row[i] < m - 87; within 0.6 ulp) and returns
    their sum in float64, for a float32 row whose largest value is the finite ``m``; NaN
    (written and returned) if the row holds NaN. ``out``: a float32 row of the same length."""
exp_store = _exp_sum("exp_store", None, True, _STORE_DOC, store=True)
exp_store_near = _exp_sum(
    "exp_store_near", None, False, "``exp_store`` for a row with no value under m - 86.", True
)
exp_store_portable = _exp_sum(
    "exp_store_portable", False, True, "``exp_store`` by the degree-6 polynomial.", True
)
exp_store_near_portable = _exp_sum(
    "exp_store_near_portable", False, False, "``exp_store_near`` by the polynomial.", True
)
