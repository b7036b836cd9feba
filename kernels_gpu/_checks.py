"""Input checks shared by the public functions: one-line errors that name the field."""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np
from numba import njit

from aiinfra_magics.errors import AiinfraError, field_error

from ._dispatch import Device, device_kind, to_host

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def split(x: Any, field: str, stream: Any) -> tuple[Device | None, Any]:
    """(None, NumPy array) for host input, (Device, numba view) for GPU input."""
    kind = device_kind(x)
    if kind is None:
        return None, to_host(x, field)
    dev = Device(x, kind, stream)
    return dev, dev.view(x, field)


def side(dev: Device | None, obj: Any, field: str) -> Any:
    """A secondary argument on the main input's side (host arrays are copied to the GPU)."""
    if obj is None:
        return None
    return to_host(obj, field) if dev is None else dev.view(obj, field)


def real_dtype(a: Any, field: str, gpu: bool) -> np.dtype:
    """float32/float64 kept; integers, bool and float16 computed in float64 on the host.

    The GPU path does not cast (that would need a copy made by some array library):
    it accepts float32 and float64 only.
    """
    dt = np.dtype(a.dtype)
    if dt in FLOATS:
        return dt
    if not gpu and (dt.kind in "biu" or dt == np.float16):
        return np.dtype(np.float64)
    allowed = "float32, float64" if gpu else "float32, float64 (integers and bool become float64)"
    raise field_error(field, str(dt), allowed)


def host_float(a: np.ndarray, field: str) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=real_dtype(a, field, gpu=False))


def integer(value: Any, field: str, lo: int, hi: int | None = None) -> int:
    """An int (not bool) within [lo, hi]."""
    allowed = f"an integer >= {lo}" if hi is None else f"an integer from {lo} to {hi}"
    if isinstance(value, bool):
        raise field_error(field, value, allowed)
    try:
        v = operator.index(value)
    except TypeError:
        raise field_error(field, value, allowed) from None
    if v < lo or (hi is not None and v > hi):
        raise field_error(field, v, allowed)
    return v


def choice(value: Any, field: str, options: tuple[str, ...]) -> int:
    if value not in options:
        raise field_error(field, value, ", ".join(options))
    return options.index(value)


def axis_of(axis: Any, ndim: int) -> int:
    if ndim == 0:
        raise field_error("x", "a 0-d array", "arrays with at least 1 dimension")
    a = integer(axis, "axis", -ndim, ndim - 1)
    return a % ndim


def rows_host(x: np.ndarray, axis: int) -> np.ndarray:
    """C-contiguous (rows, cols) with ``axis`` last; a copy only when needed."""
    moved = x if axis == x.ndim - 1 else np.moveaxis(x, axis, -1)
    moved = np.ascontiguousarray(moved)
    return moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1])


def rows_device(xv: Any, axis: int) -> Any:
    """A (rows, cols) numba view with ``axis`` last, without copying.

    1-D and 2-D arrays of any strides work (the kernels index with strides); more
    dimensions must be C-contiguous with axis -1, since a strided N-d view cannot be
    flattened without a copy.
    """
    if xv.ndim == 1:
        return xv.reshape(1, xv.shape[0]) if _contiguous(xv) else _refuse_strided()
    if xv.ndim == 2:
        return xv if axis == 1 else _transposed(xv)
    if axis != xv.ndim - 1 or not _contiguous(xv):
        raise AiinfraError(
            "x: got a strided or non-last-axis GPU array with more than 2 dimensions; "
            "allowed: C-contiguous with axis=-1 (make it so with the array library first)",
            field="x",
        )
    shape = tuple(xv.shape)
    return xv.reshape(int(np.prod(shape[:-1])), shape[-1])


def _transposed(xv: Any) -> Any:
    """The transpose of a 2-D numba device array as a view of the same memory.

    ``DeviceNDArray.T`` is no view on a real GPU: it runs a transpose kernel into a new
    array, so a kernel writing into ``out.T`` wrote into a temporary and the caller's
    output stayed unwritten (the simulator's ``.T`` is a NumPy view, which hid it).
    """
    gpu_data = getattr(xv, "gpu_data", None)
    if gpu_data is None:  # the simulator's array: its .T is a NumPy view already
        return xv.T
    return type(xv)(
        shape=tuple(xv.shape)[::-1],
        strides=tuple(xv.strides)[::-1],
        dtype=xv.dtype,
        stream=xv.stream,
        gpu_data=gpu_data,
    )


def _contiguous(xv: Any) -> bool:
    fn = getattr(xv, "is_c_contiguous", None)
    return bool(fn()) if fn is not None else True


def _refuse_strided() -> Any:
    raise AiinfraError(
        "x: got a strided 1-D GPU array; allowed: contiguous (copy it first)", field="x"
    )


def offsets_host(offsets: np.ndarray, n: int, field: str = "offsets") -> np.ndarray:
    """CSR offsets: 1-D integers, at least one, starting >= 0, non-decreasing, <= n."""
    o = np.asarray(offsets)
    if o.ndim != 1 or o.size == 0 or (o.dtype.kind not in "iu"):
        raise field_error(
            field,
            f"shape {o.shape} dtype {o.dtype}",
            "a 1-D integer array of length >= 1 (n segments need n + 1 offsets)",
        )
    o = np.ascontiguousarray(o, dtype=np.int64)
    if o[0] < 0 or o[-1] > n or _decreases(o):
        raise field_error(
            field,
            f"[{o[0]} .. {o[-1]}] (non-monotone or out of range)",
            f"non-decreasing values from 0 to the data length {n}",
        )
    return o


@njit(cache=True)
def _decreases(o):
    """Whether any offset is below the one before it: one vectorised pass with no
    temporary and no early exit (an exit per value stops LLVM's vectoriser). ``np.diff``
    and ``np.any`` took 7-11 us on 33-2049 offsets, up to half a small segment_reduce's
    host path; this takes under 1 us, and 0.24 ms against 0.9 on 2**20 offsets."""
    bad = False
    for i in range(1, o.size):
        bad |= o[i] < o[i - 1]
    return bad


def offsets_device(dev: Device, offsets: Any, n: int) -> Any:
    """Host offsets are checked then copied; device offsets are clamped in the kernel."""
    if device_kind(offsets) is None:
        return dev.view(offsets_host(to_host(offsets, "offsets"), n), "offsets")
    ov = dev.view(offsets, "offsets")
    if ov.ndim != 1 or ov.shape[0] == 0 or np.dtype(ov.dtype).kind not in "iu":
        raise field_error(
            "offsets", f"shape {ov.shape} dtype {ov.dtype}", "a 1-D integer array, length >= 1"
        )
    return ov


def host_out(out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """The caller's ``out=`` for a host result: a writeable NumPy array of the result's
    shape and dtype (reusing it saves the page faults of a fresh output each call)."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray) or not out.flags.writeable:
        raise field_error("out", type(out).__name__, _host_out_wanted(shape, dtype))
    if out.shape != tuple(shape) or out.dtype != dtype:
        got = f"shape {out.shape} dtype {out.dtype}"
        raise field_error("out", got, _host_out_wanted(shape, dtype))
    return out


def _host_out_wanted(shape: tuple[int, ...], dtype: np.dtype) -> str:
    return f"a writeable NumPy array of shape {tuple(shape)} and dtype {np.dtype(dtype)}"


def device_out(dev: Device, out: Any, shape: tuple[int, ...], dtype: np.dtype) -> tuple[Any, Any]:
    """(object to return, numba view) of the caller's GPU ``out=``, or a new array."""
    if out is None:
        return dev.empty(shape, dtype)
    want = f"a GPU array of shape {tuple(shape)} and dtype {np.dtype(dtype)}"
    if device_kind(out) is None:
        raise field_error("out", "a host array", want)
    ov = dev.view(out, "out")
    if tuple(ov.shape) != tuple(shape) or np.dtype(ov.dtype) != np.dtype(dtype):
        raise field_error("out", f"shape {tuple(ov.shape)} dtype {ov.dtype}", want)
    return out, ov


def one_dim(a: Any, field: str) -> None:
    if a.ndim != 1:
        raise field_error(field, f"shape {tuple(a.shape)}", "a 1-D array")
