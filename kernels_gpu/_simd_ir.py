"""Building blocks for explicit SIMD loops in LLVM IR, for numba intrinsics: 16-lane
float32 vectors, counted loops with carried values, loads (whole, masked, prefetched)
and stores of a 1-D float32 array, the masks of a row's last partial step, horizontal
reductions. The loops themselves are in ``_cpu_simd``."""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils

_I1 = ir.IntType(1)
_I32 = ir.IntType(32)
_F32 = ir.FloatType()
_F64 = ir.DoubleType()
_LANES = 16
_VF = ir.VectorType(_F32, _LANES)
_VI = ir.VectorType(_I32, _LANES)
_VB = ir.VectorType(_I1, _LANES)
_VD = ir.VectorType(_F64, _LANES // 2)
# Vectors per loop step: four independent accumulators hide the add latency.
_UNROLL = 4
_STEP = _LANES * _UNROLL
# llvm.prefetch locality 1 (prefetcht2: toward L2, not L1): measured 5-10% faster than 3
# (prefetcht0) with the input coming from memory, alike from L3; 0 and 2 in between. A
# row two ahead is prefetched; 4, 8 and 16 ahead were slower.
_PREFETCH_LOCALITY = 1


def _splat(vty: ir.VectorType, value) -> ir.Constant:
    return ir.Constant(vty, [value] * vty.count)


def _broadcast(builder: ir.IRBuilder, value, vty: ir.VectorType):
    v = builder.insert_element(ir.Constant(vty, ir.Undefined), value, ir.Constant(_I32, 0))
    return builder.shuffle_vector(v, ir.Constant(vty, ir.Undefined), _splat(_VI, 0))


def _counted_loop(builder: ir.IRBuilder, count, inits, body):
    """for i in range(count): carried = body(i, carried); returns the final carried values."""
    pre = builder.block
    head = builder.append_basic_block("simd.head")
    loop = builder.append_basic_block("simd.body")
    done = builder.append_basic_block("simd.done")
    builder.branch(head)
    builder.position_at_end(head)
    i = builder.phi(count.type)
    i.add_incoming(ir.Constant(count.type, 0), pre)
    carried = []
    for v in inits:
        phi = builder.phi(v.type)
        phi.add_incoming(v, pre)
        carried.append(phi)
    builder.cbranch(builder.icmp_signed("<", i, count), loop, done)
    builder.position_at_end(loop)
    new = body(i, carried)
    tail = builder.block
    i.add_incoming(builder.add(i, ir.Constant(count.type, 1)), tail)
    for phi, v in zip(carried, new):
        phi.add_incoming(v, tail)
    builder.branch(head)
    builder.position_at_end(done)
    return carried


def _max(builder: ir.IRBuilder, a, b):
    """a > b ? a : b (``vmaxps a, b``): a NaN ``a`` gives ``b``, a NaN ``b`` stays."""
    return builder.select(builder.fcmp_ordered(">", a, b), a, b)


def _horizontal(builder: ir.IRBuilder, v, op):
    n = v.type.count
    while n > 1:
        half = n // 2
        lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_I32, half), list(range(half))))
        hi = builder.shuffle_vector(
            v, v, ir.Constant(ir.VectorType(_I32, half), list(range(half, n)))
        )
        v = op(lo, hi)
        n = half
    return builder.extract_element(v, ir.Constant(_I32, 0))


class _Row:
    """A 1-D C-contiguous float32 array as (data pointer, length), with vector loads."""

    def __init__(self, context, builder: ir.IRBuilder, aryty, value) -> None:
        ary = context.make_array(aryty)(context, builder, value)
        self.builder = builder
        self.data = ary.data
        self.size = cgutils.unpack_tuple(builder, ary.shape, 1)[0]

    def load(self, at):
        ptr = self.builder.gep(self.data, [at], source_etype=_F32)
        return self.builder.load(ptr, typ=_VF, align=4)

    def masked_load(self, at, mask, fill):
        b = self.builder
        fnty = ir.FunctionType(_VF, [self.data.type, _I32, _VB, _VF])
        fn = cgutils.get_or_insert_function(b.module, fnty, "llvm.masked.load.v16f32.p0")
        ptr = b.gep(self.data, [at], source_etype=_F32)
        return b.call(fn, [ptr, ir.Constant(_I32, 4), mask, _splat(_VF, fill)])

    def store(self, at, v):
        ptr = self.builder.gep(self.data, [at], source_etype=_F32)
        self.builder.store(v, self.builder.bitcast(ptr, _VF.as_pointer()), align=4)

    def masked_store(self, at, v, mask):
        b = self.builder
        fnty = ir.FunctionType(ir.VoidType(), [_VF, self.data.type, _I32, _VB])
        fn = cgutils.get_or_insert_function(b.module, fnty, "llvm.masked.store.v16f32.p0")
        ptr = b.gep(self.data, [at], source_etype=_F32)
        b.call(fn, [v, ptr, ir.Constant(_I32, 4), mask])

    def prefetch(self, at):
        b = self.builder
        fnty = ir.FunctionType(ir.VoidType(), [self.data.type, _I32, _I32, _I32])
        fn = cgutils.get_or_insert_function(b.module, fnty, "llvm.prefetch.p0")
        ptr = b.gep(self.data, [at], source_etype=_F32)
        # (address, read, locality, data)
        b.call(fn, [ptr, *(ir.Constant(_I32, f) for f in (0, _PREFETCH_LOCALITY, 1))])


def _tail_masks(builder: ir.IRBuilder, left):
    """Masks of the ``_UNROLL`` vectors that hold the ``left`` (< _STEP) last values."""
    lim = _broadcast(builder, builder.trunc(left, _I32), _VI)
    return [
        builder.icmp_signed("<", ir.Constant(_VI, [u * _LANES + j for j in range(_LANES)]), lim)
        for u in range(_UNROLL)
    ]


def _unless_empty(builder: ir.IRBuilder, left, carried, tail):
    """``tail(carried)`` when ``left`` > 0, else ``carried`` as they are."""
    pre = builder.block
    with builder.if_then(builder.icmp_signed(">", left, ir.Constant(left.type, 0)), likely=False):
        after = tail(carried)
        tail_block = builder.block
    out = []
    for before, new in zip(carried, after):
        phi = builder.phi(before.type)
        phi.add_incoming(before, pre)
        phi.add_incoming(new, tail_block)
        out.append(phi)
    return out


def _min(builder: ir.IRBuilder, a, b):
    """a < b ? a : b (``vminps a, b``): a NaN ``a`` gives ``b``."""
    return builder.select(builder.fcmp_ordered("<", a, b), a, b)


def _is_f32_row(ty) -> bool:
    return (
        isinstance(ty, types.Array)
        and ty.ndim == 1
        and ty.layout == "C"
        and ty.dtype == types.float32
    )
