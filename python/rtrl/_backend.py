"""Device selection: which compiled module and which array module (NumPy or CuPy) serve a device."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np

logger = logging.getLogger("rtrl")

DEVICES = ("auto", "cpu", "cuda")


@functools.lru_cache(maxsize=None)
def _load_cpu_module() -> ModuleType:
    """The CPU extension module: its build for the best instruction set this CPU runs (``rtrl._isa``)."""
    from . import _rtrl_cpu

    return _rtrl_cpu


def _parse_architecture(arch: str) -> tuple[str, int, str]:
    """``"sm_86"`` -> ``("sm", 86, "")``; ``"compute_90a"`` -> ``("compute", 90, "a")``."""
    kind, _, rest = arch.partition("_")
    suffix = rest[-1] if rest[-1:].isalpha() else ""
    number = rest[: len(rest) - len(suffix)]
    if kind not in ("sm", "compute") or not number.isdigit():
        raise ValueError(f"architecture: expected 'sm_XY' or 'compute_XY', got {arch!r}")
    return kind, int(number), suffix


def runs_on(capability: tuple[int, int], architectures: Sequence[str]) -> bool:
    """Whether code built for ``architectures`` (``"sm_XY"``: a cubin, ``"compute_XY"``: PTX) runs
    on a device of compute capability ``(major, minor)``.

    A cubin runs on its own major version with an equal or higher minor (``sm_86`` on 8.6 and 8.9);
    PTX is compiled by the driver for an equal or newer device (``compute_90`` on 9.0, 10.0, 12.0).
    Architecture-specific code (``sm_90a``) runs only on exactly its capability, family-specific
    code (``sm_100f``) on its major version with an equal or higher minor.
    """
    major, minor = capability
    cc = 10 * major + minor
    for arch in architectures:
        kind, number, suffix = _parse_architecture(arch)
        a_major, a_minor = divmod(number, 10)
        if suffix == "a":
            ok = cc == number
        elif kind == "sm" or suffix == "f":
            ok = major == a_major and minor >= a_minor
        else:
            ok = cc >= number
        if ok:
            return True
    return False


def _describe_build(architectures: Sequence[str]) -> str:
    cubins = [a for a in architectures if a.startswith("sm_")]
    ptx = [a for a in architectures if a.startswith("compute_")]
    parts = []
    if cubins:
        parts.append("cubins for " + ", ".join(cubins))
    if ptx:
        parts.append("PTX for " + ", ".join(ptx))
    return " and ".join(parts) or "no device code"


def device_problem(index: int, name: str, capability: tuple[int, int], architectures: Sequence[str]) -> str:
    """Why device ``index`` cannot run a build with ``architectures``; ``""`` when it can, or when
    the build did not name its architectures (``architectures`` empty)."""
    if not architectures or runs_on(capability, architectures):
        return ""
    major, minor = capability
    return (f"CUDA device {index} ({name}, compute capability {major}.{minor}) cannot run this build of rtrl, "
            f"which has {_describe_build(architectures)} (a cubin runs on its own major version with an equal "
            f"or higher minor, PTX on an equal or newer device); rebuild with "
            f"-Ccmake.define.CMAKE_CUDA_ARCHITECTURES={major}{minor} (see the README)")


def evaluate_cuda(module: Any, cupy_problem: Callable[[], str]) -> tuple[bool, bool, str]:
    """``(built, available, reason)`` for a loaded CUDA module: devices present, the current device
    able to run the architectures the module was built for, and CuPy usable (``cupy_problem()``
    says why not, or ``""``)."""
    count, reason = module.device_status()
    if count == 0:
        return True, False, reason
    devices = module.device_capabilities()
    current = module.current_device()
    name, major, minor = devices[current]
    problem = device_problem(current, name, (major, minor), module.architectures())
    if problem:
        return True, False, problem
    problem = cupy_problem()
    if problem:
        return True, False, problem
    return True, True, ""


def _cupy_problem() -> str:
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install cupy-cuda13x)"
    try:
        if not cupy.cuda.is_available():
            return "CuPy sees no CUDA device"
    except Exception as exc:  # CuPy raises its own runtime errors when the driver is unusable
        return f"CuPy cannot use the device: {exc}"
    return ""


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
    return evaluate_cuda(_rtrl_cuda, _cupy_problem)


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
