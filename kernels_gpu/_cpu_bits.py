"""Bit-level helpers that the CPU twins inline: exp for d <= 0, and order-preserving keys.

``math.exp`` is a scalar libm call in numba; ``_exp_neg`` (float64 or float32, picked by
type) builds 2**n * 2**f from bits so the loops that call it vectorise. ``_key`` maps a
float to a signed integer with the float's order (NaN beyond +-inf), so a max or min over
keys is an integer reduction that vectorises and still propagates NaN.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# Let LLVM reorder sums so reductions vectorise; never "nnan"/"ninf": the NaN and inf
# rules are part of each kernel's contract.
_FM = {"contract", "reassoc"}


@intrinsic
def _f64_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_ROUND = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer in the low bits


@njit(inline="always", fastmath={"contract"}, cache=True)
def _exp_le0(d):
    """exp(d) for d <= 0 (or -inf) in float64, within ~1e-14 relative.

    ``math.exp`` compiles to a scalar libm call (no SVML in PyPI's llvmlite), which
    made the twin slower than NumPy's SIMD exp. Written as 2**n * 2**f with n from the
    rounding trick, 2**f by its Taylor series on |f| <= 1/2 and 2**n built from bits,
    the loop vectorises. Results under 2**-1022 (d < -708) are flushed to 0.
    """
    t = d * _LOG2E
    r = t + _ROUND
    y = (t - (r - _ROUND)) * _LN2
    p = 1.0 / 6227020800.0
    p = p * y + 1.0 / 479001600.0
    p = p * y + 1.0 / 39916800.0
    p = p * y + 1.0 / 3628800.0
    p = p * y + 1.0 / 362880.0
    p = p * y + 1.0 / 40320.0
    p = p * y + 1.0 / 5040.0
    p = p * y + 1.0 / 720.0
    p = p * y + 1.0 / 120.0
    p = p * y + 1.0 / 24.0
    p = p * y + 1.0 / 6.0
    p = p * y + 0.5
    p = p * y + 1.0
    p = p * y + 1.0
    scale = _bits_f64((_f64_bits(r) + 1023) << 52)
    # 0 below the floor (and for NaN) by a mask: see _exp_le0_f32.
    keep = -np.int64(t >= -1022.0)
    return _bits_f64(_f64_bits(p * scale) & keep)


_SQRT2 = 1.4142135623730951
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000


@njit(inline="always", fastmath={"contract"}, cache=True)
def _log_pos(s):
    """log(s) for a positive normal finite float64 ``s`` (NaN stays NaN), within ~1e-15.

    ``math.log`` is a libm call per value (about 15 ns: 7% of a float32 logsumexp row of
    1024); this one vectorises over a batch of rows. s = 2**e * f with f in
    (sqrt(1/2), sqrt(2)], then log f = 2 atanh(z), z = (f - 1)/(f + 1), |z| <= 0.172, by
    its series to z**17.
    """
    b = _f64_bits(s)
    e = (b >> 52) - 1023
    f = _bits_f64((b & _MANTISSA) | _ONE_BITS)
    high = f > _SQRT2
    f = f * 0.5 if high else f
    e = e + 1 if high else e
    # np.true_divide: no ZeroDivisionError check (f + 1 >= 1.7), which kept "/" scalar
    z = np.true_divide(f - 1.0, f + 1.0)
    z2 = z * z
    p = 1.0 / 17.0
    p = p * z2 + 1.0 / 15.0
    p = p * z2 + 1.0 / 13.0
    p = p * z2 + 1.0 / 11.0
    p = p * z2 + 1.0 / 9.0
    p = p * z2 + 1.0 / 7.0
    p = p * z2 + 1.0 / 5.0
    p = p * z2 + 1.0 / 3.0
    p = p * z2 + 1.0
    r = e * _LN2 + 2.0 * z * p
    return r if s == s else s


_LOG2E_F = np.float32(_LOG2E)
_LN2_HI_F = np.float32(0.693145751953125)  # ln 2 split so n * _LN2_HI_F is exact
_LN2_LO_F = np.float32(1.428606765330187e-06)
_ROUND_F = np.float32(12582912.0)  # 1.5 * 2**23


@intrinsic
def _f32_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


# Near-minimax coefficients of exp(y) = 1 + y + y**2 * q(y) on |y| <= ln2/2 (relative
# error 3.1e-9, under the 5.2e-9 of the degree-7 Taylor series they replace, one FMA fewer).
_EXP_C2 = np.float32(0.49999993451625846)
_EXP_C3 = np.float32(0.16666520688656894)
_EXP_C4 = np.float32(0.04166838737390884)
_EXP_C5 = np.float32(0.008368709961330016)
_EXP_C6 = np.float32(0.0013814613092826597)


@njit(inline="always", fastmath={"contract"}, cache=True)
def _exp_poly_f32(y):
    """exp(y) for float32 |y| <= ln2/2: the polynomial above, by Horner's rule."""
    p = _EXP_C6
    p = p * y + _EXP_C5
    p = p * y + _EXP_C4
    p = p * y + _EXP_C3
    p = p * y + _EXP_C2
    p = p * y + np.float32(1.0)
    return p * y + np.float32(1.0)


@njit(inline="always", fastmath={"contract"}, cache=True)
def _exp_le0_f32(d):
    """exp(d) for float32 d <= 0 (or -inf) in float32 arithmetic, within 0.9 ulp.

    Twice the SIMD lanes of the float64 version, which made softmax and logsumexp of
    float32 input compute-bound. Cody-Waite reduction (ln 2 in two parts) keeps the
    reduced argument exact; a degree-6 polynomial on |y| <= ln2/2; 2**n is added to
    the result's exponent bits (an integer add, not a multiply: the FMA units are the
    bottleneck). Results under about 2**-125.5 (d < -86.99) are flushed to 0.
    Measured over 17M arguments in [-88, 0]: max 0.87 ulp, mean 0.26 ulp (the Taylor
    version: 0.93 / 0.26).
    """
    r = d * _LOG2E_F + _ROUND_F
    n = r - _ROUND_F
    y = d - n * _LN2_HI_F
    y = y - n * _LN2_LO_F
    p = _exp_poly_f32(y)
    # p lies in [0.70, 1.42], so for n >= -125 the sum of exponents stays normal.
    e = _f32_bits(p) + (_f32_bits(r) << np.int32(23))
    # 0 below the floor (and for NaN) by a mask, not a conditional expression: inlined
    # into the row loops, the conditional's phi node made numba warn at every compile
    # ("NumbaIRAssumptionWarning: variable ... is not in scope").
    keep = -np.int32(n >= np.float32(-125.0))
    return _bits_f32(e & keep)


def _exp_in_precision(f32):
    """A function exp(d) for d <= 0 that takes ``f32`` on float32 (float32 stays float32)
    and the float64 exp on anything else."""

    def exp(d):
        pass

    @overload(exp, inline="always")
    def _impl(d):
        if d == types.float32:
            return lambda d: f32(d)
        return lambda d: _exp_le0(np.float64(d))

    return exp


_exp_neg = _exp_in_precision(_exp_le0_f32)


def _elem(x, v):
    """``v`` converted to the element type of the array ``x``."""


@overload(_elem, inline="always")
def _elem_impl(x, v):
    dt = x.dtype
    return lambda x, v: dt(v)


def _key(v):
    """A signed integer (int32 for float32, else int64) whose order is the float order of
    ``v`` (NaN: beyond +-inf)."""


@intrinsic
def _key32(typingctx, x):
    # In LLVM's i32 directly: numba widens int32 arithmetic (>>, &, ^) to int64, which
    # halved the lanes of every loop that takes keys of float32 values.
    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        b = builder.bitcast(args[0], i32) if isinstance(args[0].type, ir.FloatType) else args[0]
        sign = builder.ashr(b, ir.Constant(i32, 31))
        return builder.xor(b, builder.and_(sign, ir.Constant(i32, 0x7FFFFFFF)))

    if x == types.float32 or x == types.int32:
        return types.int32(x), codegen
    return None


@overload(_key, inline="always")
def _key_impl(v):
    if v == types.float32:
        # int32 keys for float32: 16 lanes per AVX-512 register instead of 8.
        return lambda v: _key32(v)

    def k64(v):
        b = _f64_bits(np.float64(v))
        return b ^ ((b >> 63) & 0x7FFFFFFFFFFFFFFF)

    return k64


def _unkey(k, like):
    """The float64 value of a key made by ``_key`` from a value of ``like``'s type."""


@overload(_unkey, inline="always")
def _unkey_impl(k, like):
    if like == types.float32:
        # The key map is its own inverse on the bits.
        def u32(k, like):
            return np.float64(_bits_f32(_key32(np.int32(k))))

        return u32
    return lambda k, like: _bits_f64(k ^ ((k >> 63) & 0x7FFFFFFFFFFFFFFF))


@njit(inline="always", cache=True)
def _key_extremes(row):
    """(max, min, saw_nan) of a non-empty 1-D array, by integer max/min of ``_key``s.

    A float max with NaN rules is a select chain LLVM cannot vectorise; integer max and
    min are. A NaN key lies above +inf's (positive NaN) or below -inf's (negative NaN),
    so the two extremes reveal it. max and min are float64 (``_unkey``).
    """
    hi = lo = _key(row[0])
    for c in range(row.size):
        k = _key(row[c])
        hi = max(hi, k)
        lo = min(lo, k)
    bad = hi > _key(_elem(row, np.inf)) or lo < _key(_elem(row, -np.inf))
    return _unkey(hi, row[0]), _unkey(lo, row[0]), bad


# llvm.prefetch locality: 3 keeps the line in every cache level (prefetcht0).
_PREFETCH_LOCALITY = 3


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Ask for the cache line of ``arr[idx]`` (1-D; an index past the end is harmless).

    The row kernels read a row from memory in their max pass and then compute on it from
    the cache; prefetching a later row during this row's compute-bound exp pass lets the
    memory and the FMA units work at the same time instead of taking turns.
    """

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(
            context, builder, aryty, ary, [args[1]], wraparound=False, boundscheck=False
        )
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        # (address, read, locality, data cache)
        flags = (0, _PREFETCH_LOCALITY, 1)
        builder.call(fn, [ptr, *(ir.Constant(i32, f) for f in flags)])
        return context.get_dummy_value()

    if isinstance(arr, types.Array) and arr.ndim == 1 and isinstance(idx, types.Integer):
        return types.none(arr, idx), codegen
    return None
