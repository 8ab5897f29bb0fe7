"""What this build of rtrl is and what it can use."""

from __future__ import annotations

from typing import Any

from . import _isa
from ._backend import _load_cpu_module, cuda_status


def cuda_available() -> bool:
    """True when the CUDA module is built, CuPy imports and the current CUDA device can run the
    architectures the module was built for."""
    return cuda_status()[1]


def info() -> dict[str, Any]:
    """A description of the build and the machine.

    Returns
    -------
    dict
        ``"version"``; ``"cpu"``: ``"blas"``, ``"blas_core"``, ``"threads"`` (OpenMP threads),
        ``"simd"`` (the widest vector instructions of the loaded module), ``"isa"`` (the instruction
        set it was built for: ``"x86-64-v4"``, ``"x86-64-v3"``, ``"x86-64-v2"``, ``"baseline"`` or
        ``"native"``), ``"isas"`` (those this installation carries and this CPU runs: ``RTRL_CPU_ISA``
        may name any of them), ``"sanitizers"`` (``"address,undefined"``
        in a sanitizer build, else empty); ``"cuda"``: ``"built"``, ``"available"``
        and ``"reason"`` (why not available) or, when available, ``"devices"``; when the CUDA module
        is built, ``"architectures"`` (``"sm_XY"``: a cubin, ``"compute_XY"``: PTX; empty when the
        build named them symbolically) and ``"sync_check"`` (``RTRL_CUDA_SYNC_CHECK=1`` is on).
    """
    from . import __version__

    cpu = dict(_load_cpu_module().info())
    runnable = _isa.runnable()
    cpu["isas"] = [isa for isa in _isa.built() if isa in runnable]
    built, available, reason = cuda_status()
    cuda: dict[str, Any] = {"built": built, "available": available}
    if not available:
        cuda["reason"] = reason
    if built:
        try:
            from . import _rtrl_cuda
        except ImportError:  # built but not loadable: the reason says why
            pass
        else:
            cuda["architectures"] = list(_rtrl_cuda.architectures())
            cuda["sync_check"] = bool(_rtrl_cuda.sync_check())
            if available:
                cuda["devices"] = _rtrl_cuda.device_names()
    return {"version": __version__, "cpu": {k: v for k, v in cpu.items() if k != "version"}, "cuda": cuda}
