"""The machine a benchmark ran on, and how busy the rest of the machine was meanwhile.

``machine_info()`` describes the CPU, rtrl's build (BLAS core, OpenMP threads, SIMD), NumPy's BLAS
and the versions involved; ``format_header(info)`` (or ``header()``) prints it. ``CpuUse`` measures
the share of the CPUs used by other processes (or VM steal) between ``start()`` and ``stop()``: the
noise indicator printed next to every timed row. NumPy, rtrl and torch are imported lazily, so that a
caller can still set ``OMP_NUM_THREADS`` after importing this module.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from typing import Any, Callable, Optional

__all__ = ["CpuUse", "calibrate", "format_header", "header", "load_average", "machine_info",
           "torch_version"]

MAX_COUNT = 1 << 22  # cap on the repetitions of one measurement


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _numpy_blas() -> dict[str, Any]:
    """Best effort: which BLAS NumPy uses and with how many threads (the NumPy baseline's BLAS)."""
    import numpy as np

    out: dict[str, Any] = {}
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["name"] = f'{cfg.get("name", "?")} {cfg.get("version", "")}'.strip()
    except Exception:
        pass
    try:  # the thread count of NumPy's bundled OpenBLAS, found among the loaded libraries
        import ctypes

        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line and "numpy" in line}
        for path in paths:
            lib = ctypes.CDLL(path)
            for sym in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                        "openblas_get_num_threads"):
                if hasattr(lib, sym):
                    out["threads"] = int(getattr(lib, sym)())
                    break
    except Exception:
        pass
    return out


def torch_version() -> Optional[str]:
    """The installed torch's version without importing it (None when torch is not installed)."""
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover
        return None
    try:
        return version("torch")
    except PackageNotFoundError:
        return None


def load_average() -> Optional[float]:
    """The 1-minute load average (other work competing for the cores), None where unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


class CpuUse:
    """Share of the machine's CPU time used by OTHER processes (and VM steal) between ``start()``
    and ``stop()``: busy time of all CPUs from /proc/stat minus this process's own CPU time.
    None where /proc/stat is unavailable. A row measured while this is high is unreliable."""

    @staticmethod
    def _snapshot() -> Optional[tuple[float, float, float]]:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                vals = [int(v) for v in f.readline().split()[1:9]]
            busy = (sum(vals) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        except (OSError, ValueError, IndexError, AttributeError):
            return None
        own = os.times()  # this process and its finished children (the memory table's processes)
        return busy, own.user + own.system + own.children_user + own.children_system, time.perf_counter()

    def start(self) -> "CpuUse":
        self._start = self._snapshot()
        return self

    def stop(self) -> Optional[float]:
        end = self._snapshot()
        if self._start is None or end is None or end[2] <= self._start[2]:
            return None
        other = (end[0] - self._start[0]) - (end[1] - self._start[1])
        return max(0.0, other / ((end[2] - self._start[2]) * (os.cpu_count() or 1)))


def calibrate(timed: Callable[[int], float], min_time: float) -> int:
    """The smallest count (steps, calls) found for which ``timed(count)`` takes >= min_time seconds.
    The first call also serves as the warm-up."""
    import math

    count = 1
    while True:
        elapsed = timed(count)
        if elapsed >= min_time or count >= MAX_COUNT:
            return count
        grow = math.ceil(count * 1.2 * min_time / max(elapsed, 1e-9))
        count = min(MAX_COUNT, max(2 * count, grow))


def machine_info() -> dict[str, Any]:
    """CPU model, rtrl's build (BLAS core, OpenMP threads, SIMD) and the versions involved."""
    import numpy as np

    import rtrl

    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": _numpy_blas(),
        "torch": torch_version(),
        "rtrl": rtrl.__version__,
        "rtrl_info": rtrl.info()["cpu"],
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "load_average_start": load_average(),
    }


def format_header(info: dict[str, Any]) -> str:
    cpu = info["rtrl_info"]
    nb = info.get("numpy_blas", {})
    lines = [
        f'CPU      : {info["cpu_model"]} ({info["logical_cpus"]} logical CPUs), {info["platform"]}',
        f'rtrl     : {info["rtrl"]}  BLAS core {cpu.get("blas_core")}, {cpu.get("threads")} OpenMP threads, '
        f'SIMD {cpu.get("simd")}, {cpu.get("isa")} build',
        f'           {cpu.get("blas")}',
        f'numpy    : {info["numpy"]}  BLAS {nb.get("name", "?")}, {nb.get("threads", "?")} threads;'
        f'  python {info["python"]}',
        f'torch    : {info.get("torch") or "not installed"}',
        f'load     : 1-min load average {info.get("load_average_start")} before the run',
    ]
    if info.get("omp_num_threads_env") is not None:
        lines[-1] += f'; OMP_NUM_THREADS={info["omp_num_threads_env"]}'
    return "\n".join(lines)


def header() -> str:
    """``format_header(machine_info())``."""
    return format_header(machine_info())


def measure_interleaved(measurements: dict[str, Callable[[int], float]], *, repeats: int, min_time: float,
             settle: float) -> dict[str, Any]:
    """Calibrates each timed function, then times them interleaved ``repeats`` times; returns the
    per-call minimum (s), median/min, count and samples of each, and the other processes' CPU share."""
    gc.collect()
    cpu_use = CpuUse().start()
    state = {}
    for key, timed in measurements.items():  # warm-up and choice of the count per measurement
        time.sleep(settle)
        state[key] = {"timed": timed, "count": calibrate(timed, min_time), "samples": []}
    for _ in range(repeats):  # interleaved: a, b, c, a, b, c, ...
        for s in state.values():
            time.sleep(settle)
            s["samples"].append(s["timed"](s["count"]) / s["count"])
    other = cpu_use.stop()
    out: dict[str, Any] = {"other_cpu_share": other}
    for key, s in state.items():
        best = min(s["samples"])
        out[key] = {"best": best, "med_over_min": statistics.median(s["samples"]) / best,
                    "count": s["count"], "samples": s["samples"]}
    return out


def sgemm_timer(M: int, N: int, K: int, threads: int) -> Callable[[int], float]:
    """A timer of ``calls`` row-major OpenBLAS sgemm calls of shape (M, N, K) on ``threads`` threads."""
    from rtrl import _rtrl_cpu

    return lambda calls: calls * _rtrl_cpu._time_sgemm(M, N, K, calls, threads)


def per_call_timer(fn: Callable[[], Any]) -> Callable[[int], float]:
    def timed(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            fn()
        return time.perf_counter() - start
    return timed


def table_lines(columns, rows: list[dict]) -> list[str]:
    """A fixed-width table: ``columns`` are (header, width, row -> text)."""
    head = "  ".join(h.rjust(w) for h, w, _ in columns)
    return [head, "-" * len(head)] + ["  ".join(fmt(r).rjust(w) for _, w, fmt in columns) for r in rows]
