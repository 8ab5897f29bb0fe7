"""The device the library's side of a benchmark runs on (``rtrl bench --device``).

``resolve(name)`` turns "auto" | "cpu" | "cuda" into "cpu" or "cuda" (a RuntimeError that says why when
CUDA is asked for and unavailable); ``to_device`` puts a benchmark's input array where the learner
lives, once, outside the timed region; ``synchronize`` waits for queued GPU work, so that a timed region
ends when the work does. The references (sgemm, NumPy, torch, JAX) always run on the CPU.
"""

from __future__ import annotations

import time
from typing import Any, Callable

__all__ = ["DEVICES", "resolve", "synchronize", "to_device", "to_host"]

DEVICES = ("auto", "cpu", "cuda")


def resolve(name: str = "auto") -> str:
    """"cpu" or "cuda" for ``name``; raises ValueError for an unknown name and RuntimeError (with the
    reason from ``rtrl.info()``) for "cuda" where no usable CUDA device is present."""
    import rtrl

    if name not in DEVICES:
        raise ValueError(f"device: expected one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cpu":
        return "cpu"
    if rtrl.cuda_available():
        return "cuda"
    if name == "auto":
        return "cpu"
    reason = rtrl.info()["cuda"].get("reason") or "CUDA unavailable"
    raise RuntimeError(f"--device cuda: no usable CUDA device ({reason}); use --device cpu or auto")


def to_device(array: Any, device: str) -> Any:
    """``array`` as the learner on ``device`` takes it without a copy per call (CuPy on "cuda")."""
    if device == "cuda":
        import cupy

        return cupy.asarray(array)
    return array


def synchronize(device: str) -> None:
    """Waits for the work queued on the current CUDA stream (nothing on the CPU)."""
    if device == "cuda":
        import cupy

        cupy.cuda.get_current_stream().synchronize()


def run_timer(learner: Any, make_data: Callable[[int], tuple], device: str) -> Callable[[int], float]:
    """A timer of ``learner.run(X, D)`` over ``steps`` steps, ``(X, D) = make_data(steps)`` placed on
    ``device`` once per length, outside the timing."""
    placed: dict[int, tuple] = {}

    def timed(steps: int) -> float:
        if steps not in placed:
            placed.clear()
            placed[steps] = tuple(to_device(a, device) for a in make_data(steps))
        X, D = placed[steps]
        synchronize(device)
        start = time.perf_counter()
        learner.run(X, D)
        synchronize(device)
        return time.perf_counter() - start
    return timed


def to_host(array: Any) -> Any:
    """A NumPy view or copy of a NumPy or CuPy array."""
    import numpy as np

    if hasattr(array, "get") and not isinstance(array, np.ndarray):
        return array.get()
    return np.asarray(array)
