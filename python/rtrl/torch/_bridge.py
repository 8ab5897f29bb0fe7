"""Between torch tensors and the arrays rtrl's native calls read: which backend serves a tensor's
device, and views (no copies) of tensors as NumPy / CuPy arrays and back.

CPU tensors share their memory with NumPy (``Tensor.numpy()``, ``torch.from_numpy``); CUDA tensors
with CuPy through DLPack. A CUDA call runs with the tensor's device current and CuPy's current stream
set to torch's current stream, so rtrl's kernels, its allocations and torch's work are ordered on one
stream.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from .._backend import Backend, backend


@contextlib.contextmanager
def on_device(device: torch.device) -> Iterator[Backend]:
    """The backend of ``device`` (CPU or CUDA), with that device and torch's stream current."""
    if device.type == "cpu":
        yield backend("cpu")
        return
    if device.type != "cuda":
        raise TypeError(f"input: rtrl.torch runs CPU and CUDA tensors, got a tensor on {device}")
    be = backend("cuda")  # raises, saying why, when rtrl's CUDA backend is unavailable
    import cupy

    index = device.index if device.index is not None else torch.cuda.current_device()
    with torch.cuda.device(index), cupy.cuda.Device(index):
        pointer = torch.cuda.current_stream(index).cuda_stream
        stream = cupy.cuda.ExternalStream(pointer) if pointer else cupy.cuda.Stream.null
        with stream:
            yield be


def as_array(tensor: torch.Tensor | None, be: Backend) -> Any:
    """A view of a C-contiguous tensor as ``be``'s array (None stays None)."""
    if tensor is None:
        return None
    tensor = tensor.detach()
    if be.device == "cpu":
        return tensor.numpy()
    return be.xp.from_dlpack(tensor)


def as_tensor(array: Any, be: Backend) -> torch.Tensor | None:
    """A tensor sharing the memory of ``be``'s array (None stays None)."""
    if array is None:
        return None
    if be.device == "cpu":
        return torch.from_numpy(array)
    return torch.from_dlpack(array)
