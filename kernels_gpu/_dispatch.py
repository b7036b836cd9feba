"""Where does an array live, and how do we hand back a result of the same kind?

Host inputs (NumPy, lists, CPU torch tensors, CPU jax arrays) go to the numba CPU
twins. GPU inputs are viewed without copying as numba device arrays through
``__cuda_array_interface__`` (CuPy, Numba, PyTorch, JAX, cuDF via ``to_cupy``) or
DLPack (through CuPy), the CUDA kernel runs on the producer's current stream, and the
output is allocated by the input's own library so it comes back as that kind.

``numba.cuda`` is imported only here and only for GPU inputs, so importing the
package never needs a GPU or a CUDA toolkit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aiinfra_magics.errors import AiinfraError

_KDLCUDA = 2  # DLPack device type of CUDA memory


def numba_cuda() -> Any:
    """``numba.cuda``, imported on first use.

    numba-cuda 0.30.4 (the newest) registers an overload for ``np.row_stack`` at import,
    an alias NumPy 2.5 removed, so its import fails there (seen on the GPU machine's
    NumPy 2.5.2). Restoring the alias, only when missing, lets it import.
    """
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack
    from numba import cuda

    return cuda


def _root(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def device_kind(obj: Any) -> str | None:
    """Name of the GPU library holding ``obj``, or None when it lives on the host."""
    if type(obj) is np.ndarray:  # the common case first: the host path is microseconds
        return None
    if getattr(obj, "__cuda_ndarray__", False):  # numba device array, simulator's too
        return "numba"
    root = _root(obj)
    if root == "torch":
        return "torch" if getattr(obj, "is_cuda", False) else None
    if root in ("jax", "jaxlib"):
        try:
            platforms = {d.platform for d in obj.devices()}
        except AttributeError:  # a tracer inside jit: not ours to run
            raise AiinfraError(
                "x: got a traced JAX value; allowed: concrete arrays (call outside jax.jit)"
            ) from None
        return "jax" if platforms & {"gpu", "cuda"} else None
    if root == "cudf":
        return "cudf"
    if root == "cupy":
        return "cupy"
    if hasattr(obj, "__cuda_array_interface__"):
        return "cai"
    dev = getattr(obj, "__dlpack_device__", None)
    if dev is not None and dev()[0] == _KDLCUDA:
        return "dlpack"
    return None


def to_host(obj: Any, field: str) -> np.ndarray:
    """A NumPy view of a host array; a GPU array here is a mixed call, refused."""
    if type(obj) is np.ndarray:
        return obj
    if device_kind(obj) is not None:
        raise AiinfraError(
            f"{field}: got a GPU array while the main input is on the host; "
            "allowed: arrays on the same side"
        )
    if _root(obj) == "torch":
        obj = obj.detach().numpy()
    return np.asarray(obj)


def from_host(result: np.ndarray, like: Any) -> Any:
    """Return a host result as the kind of the host input (NumPy, torch or jax)."""
    root = _root(like)
    if root == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(result))
    if root in ("jax", "jaxlib"):
        import jax.numpy as jnp

        return jnp.asarray(result)
    return result


def _stream_ptr(stream: Any) -> int:
    for attr in ("handle", "ptr", "cuda_stream"):
        val = getattr(stream, attr, None)
        if val is not None:
            return int(getattr(val, "value", val) or 0)
    return int(stream)


# Host work per call was most of a whole GPU call's time on an H100 (0.29 ms for a
# softmax whose kernel takes 0.21 ms): what does not change between calls is kept here.
# Streams by pointer (numba's external_stream wraps a handle; it owns nothing), and
# configured launches by (kernel, grid, block, stream). Both stay small: a program has
# few streams and few call shapes; the launch cache is cleared when it grows past
# _MAX_LAUNCHERS.
_STREAMS: dict[int, Any] = {}
_LAUNCHERS: dict[tuple[int, Any, Any, int], tuple[Any, Any, Any]] = {}
_MAX_LAUNCHERS = 512
_STATS = {"hits": 0, "misses": 0}


def launch_cache_info() -> dict[str, int]:
    """Hits and misses of the configured-launch cache, and its size (for tests)."""
    return {**_STATS, "size": len(_LAUNCHERS)}


def _stream_for(cuda: Any, ptr: int) -> Any:
    got = _STREAMS.get(ptr)
    if got is None:
        if ptr:
            got = cuda.external_stream(ptr)
        elif hasattr(cuda, "default_stream"):
            got = cuda.default_stream()
        else:  # the CUDA simulator has no default_stream(); its streams are no-ops
            got = cuda.stream()
        _STREAMS[ptr] = got
    return got


def configured(kernel: Any, grid: Any, block: Any, stream: Any) -> Any:
    """``kernel[grid, block, stream]``, built once per call shape and stream."""
    key = (id(kernel), grid, block, id(stream))
    hit = _LAUNCHERS.get(key)
    if hit is not None:
        _STATS["hits"] += 1
        return hit[2]
    _STATS["misses"] += 1
    if len(_LAUNCHERS) >= _MAX_LAUNCHERS:
        _LAUNCHERS.clear()
    launcher = kernel[grid, block, stream]
    # kernel and stream are held so that their ids are not reused while cached
    _LAUNCHERS[key] = (kernel, stream, launcher)
    return launcher


class Device:
    """One GPU call: the input's kind, the launch stream, allocation and wrapping."""

    def __init__(self, like: Any, kind: str, stream: Any = None) -> None:
        cuda = numba_cuda()
        self.cuda = cuda
        self.like = like
        self.kind = kind
        if stream is None:
            if kind == "cupy":
                import cupy

                stream = cupy.cuda.get_current_stream().ptr
            elif kind == "torch":
                import torch

                stream = torch.cuda.current_stream(like.device).cuda_stream
            else:
                stream = 0
        if isinstance(stream, int) or not hasattr(stream, "synchronize"):
            stream = _stream_for(cuda, _stream_ptr(stream))
        self.stream = stream

    def view(self, obj: Any, field: str) -> Any:
        """Numba device view of a GPU array (no copy); host arrays are copied over."""
        cuda = self.cuda
        kind = device_kind(obj)
        if kind is None:
            host = np.ascontiguousarray(np.asarray(obj))
            return cuda.to_device(host, stream=self.stream)
        if kind == "numba":
            return obj
        if kind == "cudf":
            obj = obj.to_cupy()
        elif not hasattr(obj, "__cuda_array_interface__"):  # DLPack only (some JAX builds)
            import cupy

            obj = cupy.from_dlpack(obj)
        try:
            return cuda.as_cuda_array(obj, sync=False)  # we launch on its stream
        except TypeError:
            return cuda.as_cuda_array(obj)

    def empty(self, shape: tuple[int, ...], dtype: Any) -> tuple[Any, Any]:
        """(result object of the input's kind, numba view of it) for a new array."""
        dtype = np.dtype(dtype)
        if self.kind == "torch":
            import torch

            tdt = torch.from_numpy(np.empty(0, dtype)).dtype
            obj = torch.empty(shape, dtype=tdt, device=self.like.device)
            return obj, self.view(obj, "out")
        if self.kind in ("cupy", "jax", "cudf", "dlpack"):
            import cupy

            obj = cupy.empty(shape, dtype)
            return obj, self.view(obj, "out")
        dev = self.cuda.device_array(shape, dtype, stream=self.stream)
        return dev, dev

    def wrap(self, obj: Any) -> Any:
        """Turn an object made by ``empty`` into the caller's kind."""
        if self.kind == "jax":
            import jax.dlpack

            self.stream.synchronize()  # JAX cannot wait on our stream itself
            return jax.dlpack.from_dlpack(obj)
        if self.kind == "cudf":
            import cudf

            return cudf.Series(obj) if obj.ndim == 1 else cudf.DataFrame(obj)
        return obj

    def launch(self, kernel: Any, grid: Any, block: Any, *args: Any) -> None:
        configured(kernel, grid, block, self.stream)(*args)
