"""Bringing user arrays onto a model's device and dtype, and the unbatched convention."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._backend import Backend

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def resolve_dtype(dtype: Any) -> np.dtype:
    """``"float32" | "float64"`` (or the NumPy types) as a NumPy dtype of the machine's byte order:
    a non-native spelling such as ``">f4"`` is normalised to the native ``float32``."""
    dt = None
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            dt = None
    if dt is None or dt.name not in DTYPES:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return DTYPES[dt.name]


def as_device_array(value: Any, name: str, dtype: np.dtype, be: Backend) -> Any:
    """``value`` as a C-contiguous, aligned array of ``dtype`` (native byte order) on ``be``'s
    device (NumPy input is copied to the GPU; a GPU array given to a CPU model is refused). Any
    array that speaks the array interfaces or DLPack is taken (torch, JAX, CuPy, NumPy), without a
    copy where its memory already fits; a torch tensor that requires grad is refused.
    Big-endian, unaligned, strided or other-dtype input is copied; the number of dimensions is kept
    (a 0-d array or a Python scalar stays 0-d, and is refused wherever an axis is expected).
    Non-real input raises ``TypeError``."""
    # the common case first, kept short (a cell step is a few microseconds); NumPy's built-in
    # dtypes are singletons, so ``is`` compares them
    if (type(value) is np.ndarray and value.dtype is dtype and value.flags.c_contiguous
            and value.flags.aligned and be.device == "cpu"):
        return value
    if value is None:
        raise TypeError(f"{name}: expected an array, got None")
    if getattr(value, "requires_grad", False) is True:
        raise TypeError(f"{name}: a torch tensor that requires grad; rtrl's learners and rtrl.nn take no "
                        "part in torch autograd: inside a torch model use rtrl.torch's modules "
                        "(rtrl.torch.LSTM, ...), else pass tensor.detach()")
    if be.device == "cpu" and hasattr(value, "__cuda_array_interface__"):
        raise TypeError(
            f"{name}: got a CUDA device array for a model on the CPU; copy it to the host first "
            "(array.get()) or move the model with .to('cuda')"
        )
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected an array of real numbers, got {type(value).__name__}")
    try:
        if hasattr(value, "__dlpack__") and not hasattr(value, "__array__") and be.device == "cpu":
            value = np.from_dlpack(value)  # any DLPack array on the host, without a copy
        arr = be.xp.asarray(value)
    except (TypeError, ValueError, RuntimeError, BufferError) as exc:
        raise TypeError(f"{name}: expected an array of real numbers ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected an array of real numbers, got dtype {arr.dtype}")
    if arr.dtype == dtype and arr.flags.c_contiguous and getattr(arr.flags, "aligned", True):
        return arr
    with np.errstate(over="ignore"):  # values beyond float32's range become inf: reported as non-finite
        return be.xp.array(arr, dtype=dtype, order="C")  # a fresh copy: aligned, native, same ndim


def array_library(value: Any) -> str:
    """The library whose arrays rtrl hands back for input ``value``: ``"torch"``, ``"jax"``, or
    ``"native"`` (NumPy on the CPU, CuPy on a GPU, and anything else array-like)."""
    root = type(value).__module__.partition(".")[0]
    if root == "torch":
        return "torch"
    return "jax" if root in ("jax", "jaxlib") else "native"


def like_input(arr: Any, library: str) -> Any:
    """``arr`` (NumPy or CuPy, or None) as an array of ``library`` (see :func:`array_library`),
    sharing its memory where the library can (torch, through DLPack); JAX copies."""
    if arr is None or library == "native":
        return arr
    if library == "torch":
        import torch

        return torch.from_numpy(arr) if isinstance(arr, np.ndarray) else torch.from_dlpack(arr)
    import jax.numpy as jnp

    return jnp.asarray(arr)


def unaliased(arr: Any, destinations: Any, xp: Any) -> Any:
    """``arr``, copied when it may share memory with any array of ``destinations`` (so that a
    source is never overwritten before it is read)."""
    for dest in destinations:
        if xp.may_share_memory(arr, dest):
            return arr.copy()
    return arr


def zeros_touched(xp: Any, shape: Any, dtype: Any) -> Any:
    """Zeros whose memory is already mapped: on the host, written once here, serially, rather than
    first touched by the native loop's threads (page faults taken inside a parallel region cost
    several times more, and were a fresh learner's first run). Large host arrays are allocated
    uninitialised, where NumPy asks for huge pages, then filled."""
    if xp is not np:
        return xp.zeros(shape, dtype=dtype)
    a = np.empty(shape, dtype=dtype)
    a.fill(0)
    return a


def as_flag(value: Any, name: str) -> bool:
    """``value`` as a bool; anything but a bool (or NumPy bool) raises ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def add_batch_axis(arr: Any, name: str, batched_ndim: int, batch_size: int, axes: str) -> tuple[Any, bool]:
    """Accepts ``arr`` with ``batched_ndim`` dimensions, or one fewer (no stream axis, which needs
    ``batch_size == 1``); returns the batched array and whether the input was unbatched. The stream
    axis is the second-to-last one. ``axes`` names the batched axes for error messages."""
    if arr.ndim == batched_ndim:
        return arr, False
    if arr.ndim == batched_ndim - 1:
        if batch_size != 1:
            raise ValueError(
                f"{name}: expected shape {axes} with streams={batch_size}, got an unbatched array of "
                f"shape {tuple(arr.shape)}; unbatched input needs batch_size=1"
            )
        return arr[..., None, :], True
    hint = " (a scalar has no axes: pass a 1-d array such as [value])" if arr.ndim == 0 else ""
    raise ValueError(f"{name}: expected shape {axes} (or without the streams axis when batch_size=1), "
                     f"got shape {tuple(arr.shape)}{hint}")
