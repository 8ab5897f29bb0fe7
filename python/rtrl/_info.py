"""What this build of rtrl is and what it can use."""

from __future__ import annotations

from typing import Any

from ._backend import _load_cpu_module, cuda_status


def cuda_available() -> bool:
    """True when the CUDA module is built, CuPy imports and a CUDA device is present."""
    return cuda_status()[1]


def info() -> dict[str, Any]:
    """A description of the build and the machine.

    Returns
    -------
    dict
        ``"version"``; ``"cpu"``: ``"blas"``, ``"blas_core"``, ``"threads"`` (OpenMP threads),
        ``"simd"`` (compiled instruction set), ``"arch"``; ``"cuda"``: ``"built"``, ``"available"``
        and ``"reason"`` (why not available) or, when available, ``"devices"``.
    """
    from . import __version__

    cpu = dict(_load_cpu_module().info())
    built, available, reason = cuda_status()
    cuda: dict[str, Any] = {"built": built, "available": available}
    if available:
        from . import _rtrl_cuda

        cuda["devices"] = _rtrl_cuda.device_names()
    else:
        cuda["reason"] = reason
    return {"version": __version__, "cpu": {k: v for k, v in cpu.items() if k != "version"}, "cuda": cuda}
