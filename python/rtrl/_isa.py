"""Which CPU module to load: rtrl's CPU backend is built once per instruction set (``RTRL_CPU_ISAS`` at
build time; a wheel carries x86-64-v2, x86-64-v3 and x86-64-v4 on x86-64), and the best one this CPU
runs is loaded, as NumPy dispatches its kernels. ``RTRL_CPU_ISA=<isa>`` in the environment forces a
lower one (read when rtrl is first imported), to compare levels or to test a lower level's code path.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

ENVIRONMENT = "RTRL_CPU_ISA"

# Lowest first. "native" (built for the building machine, RTRL_CPU_ISAS=native) is taken before the
# levels: whoever built it chose it for this machine.
LEVELS = ("baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4", "native")


def module_name(isa: str) -> str:
    """``"x86-64-v3"`` -> ``"_rtrl_cpu_x86_64_v3"`` (CMake's ``string(MAKE_C_IDENTIFIER)``)."""
    return "_rtrl_cpu_" + "".join(c if c.isalnum() else "_" for c in isa)


def built() -> list[str]:
    """The instruction sets this installation carries a CPU module for, lowest first."""
    return [isa for isa in LEVELS if importlib.util.find_spec(f"{__package__}.{module_name(isa)}") is not None]


def runnable() -> list[str]:
    """The instruction sets this CPU and operating system run, lowest first."""
    from . import _rtrl_isa

    return ["baseline", *_rtrl_isa.x86_levels(), "native"]


def choose(built: list[str], runnable: list[str], forced: str | None) -> str:
    """The instruction set to load: ``forced`` (the environment variable's value) when given, else the
    best of ``built`` that this CPU runs. Raises ImportError, saying why, when there is none."""
    usable = [isa for isa in built if isa in runnable]
    if forced is not None:
        forced = forced.strip()
        if forced not in built:
            raise ImportError(f"{ENVIRONMENT}={forced!r}: this rtrl carries CPU modules for "
                              f"{', '.join(built) or 'none'}; set it to one of them or unset it")
        if forced not in runnable:
            raise ImportError(f"{ENVIRONMENT}={forced!r}: this CPU does not run {forced} (it runs "
                              f"{', '.join(usable) or 'none of the built ones'}); it can force a lower "
                              "level only")
        return forced
    if not usable:
        raise ImportError(f"rtrl carries CPU modules for {', '.join(built) or 'no instruction set'}, none of "
                          f"which this CPU runs ({', '.join(runnable)}); build rtrl from source on this "
                          "machine (pip install --no-binary rtrl rtrl)")
    return usable[-1]


def load_cpu_module() -> ModuleType:
    """Imports the chosen CPU module. Its OpenBLAS (from scipy-openblas32) is used single-threaded
    under rtrl's own OpenMP threads, so it is loaded without a thread pool of its own."""
    isa = choose(built(), runnable(), os.environ.get(ENVIRONMENT) or None)
    previous = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import scipy_openblas32  # noqa: F401  (loads the OpenBLAS the extension links against)

        return importlib.import_module(f"{__package__}.{module_name(isa)}")
    finally:
        if previous is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = previous
