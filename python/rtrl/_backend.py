"""Device selection: which compiled module and which array module (NumPy or CuPy) serve a device."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

logger = logging.getLogger("rtrl")

DEVICES = ("auto", "cpu", "cuda")


@functools.lru_cache(maxsize=None)
def _load_cpu_module() -> ModuleType:
    """Imports the CPU extension. Its OpenBLAS (from scipy-openblas32) is used single-threaded under
    rtrl's own OpenMP threads, so it is loaded without a thread pool of its own."""
    previous = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import scipy_openblas32  # noqa: F401  (loads the OpenBLAS the extension links against)

        from . import _rtrl_cpu
    finally:
        if previous is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = previous
    return _rtrl_cpu


@functools.lru_cache(maxsize=None)
def cuda_status() -> tuple[bool, bool, str]:
    """``(built, available, reason)`` for the CUDA backend; ``reason`` is empty when available."""
    try:
        from . import _rtrl_cuda
    except ImportError as exc:
        if "_rtrl_cuda" in str(exc) and "cannot import name" in str(exc):
            return False, False, (
                "rtrl was built without its CUDA module (rebuild with RTRL_CUDA=ON, see the README)"
            )
        return True, False, f"the CUDA module failed to load: {exc}"
    count, reason = _rtrl_cuda.device_status()
    if count == 0:
        return True, False, reason
    try:
        import cupy
    except ImportError:
        return True, False, "CuPy is not installed (pip install cupy-cuda13x)"
    try:
        if not cupy.cuda.is_available():
            return True, False, "CuPy sees no CUDA device"
    except Exception as exc:  # CuPy raises its own runtime errors when the driver is unusable
        return True, False, f"CuPy cannot use the device: {exc}"
    return True, True, ""


@dataclass(frozen=True)
class Backend:
    """The compiled module and array module of one device."""

    device: str
    core: ModuleType
    xp: ModuleType

    def stream(self) -> int:
        """The CUDA stream to launch on (CuPy's current stream), 0 on the CPU."""
        if self.device == "cpu":
            return 0
        return int(self.xp.cuda.get_current_stream().ptr)

    def to_host(self, array: Any) -> np.ndarray:
        return array if self.device == "cpu" else self.xp.asnumpy(array)


@functools.lru_cache(maxsize=None)
def _backend_for(device: str) -> Backend:
    if device == "cpu":
        return Backend("cpu", _load_cpu_module(), np)
    import cupy

    from . import _rtrl_cuda

    return Backend("cuda", _rtrl_cuda, cupy)


_auto_reported = False


def resolve_device(device: str) -> str:
    """Turns ``"auto" | "cpu" | "cuda"`` into ``"cpu"`` or ``"cuda"``, or raises why not."""
    global _auto_reported
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device: expected one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    _, available, reason = cuda_status()
    if device == "cuda":
        if not available:
            raise RuntimeError(
                f"device='cuda' is not available: {reason}. Use device='cpu' (or 'auto') to run on the CPU."
            )
        return "cuda"
    if available:
        return "cuda"
    if not _auto_reported:
        logger.info("rtrl: device='auto' runs on the CPU: %s", reason)
        _auto_reported = True
    return "cpu"


def backend(device: str) -> Backend:
    return _backend_for(resolve_device(device))
