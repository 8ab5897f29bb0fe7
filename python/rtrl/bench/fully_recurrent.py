"""Speed of exact RTRL on the CPU for the fully recurrent network, against the BLAS and NumPy.

For every size (n units, m = 8 inputs, B streams, float32, real-time SGD updates) it measures

* ``us/step``   -- microseconds per step of ``RTRL.run`` (the minimum over repeats of runs of T steps,
                   T chosen so that one run takes at least ``min_time`` seconds);
* ``GFLOP/s``   -- achieved rate for ``2 n^2 N B`` flops per step, N = n (m + 1 + n) weights (the
                   sensitivity GEMM W_U @ P, which dominates);
* ``sgemm``     -- the rate of ONE OpenBLAS sgemm of the same shape (M = n, N = N B, K = n) on the same
                   number of threads, measured interleaved with ours (A, B, A, B, ...), and the ratio
                   ours / sgemm (1.0 = as fast as a single GEMM of the sensitivity update);
* ``NumPy``     -- microseconds per step of the straightforward vectorised NumPy RTRL
                   (``rtrl.bench.numpy_rtrl.NumpyRTRL``, float32, same initial weights), and the
                   speed-up of rtrl over it.

The machine is assumed noisy: every quantity is the minimum over interleaved repeats, with a short pause
between measurements so that the spinning worker threads of one BLAS do not steal the cores of the next
measurement. Timings are printed, never asserted.

``run(quick) -> list[dict]``, ``header() -> str`` (the machine), ``format_table(rows) -> str`` and
``LEGEND``; ``rtrl bench --only rtrl`` and ``benchmarks/bench_fully_recurrent.py`` print them.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable, Optional

from .machine import header, measure_interleaved, table_lines
from .numpy_rtrl import NumpyRTRL

__all__ = ["LEGEND", "format_table", "header", "measure_case", "run"]

N_INPUTS = 8
LR = 1e-3
SIZES = (8, 16, 32, 64, 128)
BATCHES = (1, 16)
QUICK_SIZES = (8, 32, 128)

# (repeats, min_time seconds per measurement, settle seconds between measurements)
FULL_SETTINGS = (7, 0.2, 0.15)
QUICK_SETTINGS = (3, 0.08, 0.1)


def flops_per_step(n: int, m: int, batch: int) -> int:
    """2 n^2 N B: the sensitivity update W_U (n x n) @ P (n x N B), N = n (m + 1 + n)."""
    return 2 * n * n * n * (m + 1 + n) * batch


class _Data:
    """Inputs (T, B, m) uniform in [-1, 1] and targets (T, B, 1) uniform in [0, 1], float32; the
    arrays of the largest T asked for are generated once and sliced."""

    def __init__(self, batch: int, seed: int = 0) -> None:
        import numpy as np

        self._np, self._batch, self._rng = np, batch, np.random.default_rng(seed)
        self._X = self._D = None

    def get(self, steps: int):
        np = self._np
        if self._X is None or self._X.shape[0] < steps:
            self._X = self._rng.uniform(-1, 1, (steps, self._batch, N_INPUTS)).astype(np.float32)
            self._D = self._rng.uniform(0, 1, (steps, self._batch, 1)).astype(np.float32)
        return self._X[:steps], self._D[:steps]


def measure_case(n: int, batch: int, *, repeats: int, min_time: float, settle: float,
                 numpy_baseline: bool = True) -> dict[str, Any]:
    """Measures one size; returns one row of the table (see ``format_table``)."""
    import numpy as np

    import rtrl
    from rtrl import _rtrl_cpu

    threads = int(rtrl.info()["cpu"]["threads"])
    m = N_INPUTS
    n_weights = n * (m + 1 + n)
    flops = flops_per_step(n, m, batch)
    data = _Data(batch)

    net = rtrl.FullyRecurrent(n, m, n_outputs=1, seed=0, device="cpu")
    W0 = np.array(net.weight, dtype=np.float32, copy=True)
    learner = rtrl.RTRL(net, lr=LR, batch_size=batch)

    def time_ours(steps: int) -> float:
        X, D = data.get(steps)
        start = time.perf_counter()
        learner.run(X, D)
        return time.perf_counter() - start

    gemm_shape = (n, n_weights * batch, n)  # M, N, K

    def time_sgemm(calls: int) -> float:
        return calls * _rtrl_cpu._time_sgemm(*gemm_shape, calls, threads)

    measurements: dict[str, Callable[[int], float]] = {"ours": time_ours, "sgemm": time_sgemm}

    if numpy_baseline:
        baseline = NumpyRTRL(W0.copy(), n_outputs=1, activation="logistic", bias=True, batch=batch,
                             lr=LR)

        def time_numpy(steps: int) -> float:
            X, D = data.get(steps)
            step = baseline.step
            start = time.perf_counter()
            for t in range(steps):
                step(X[t], D[t])
            return time.perf_counter() - start

        measurements["numpy"] = time_numpy

    m = measure_interleaved(measurements, repeats=repeats, min_time=min_time, settle=settle)
    ours, sgemm = m["ours"]["best"], m["sgemm"]["best"]
    numpy_step = m["numpy"]["best"] if "numpy" in m else None
    row: dict[str, Any] = {
        "n": n, "m": m, "batch": batch, "n_weights": n_weights, "threads": threads,
        "dtype": "float32", "flops_per_step": flops, "repeats": repeats,
        "steps_per_run": m["ours"]["count"],
        "us_per_step": ours * 1e6,
        "gflops": flops / ours / 1e9,
        "ours_median_over_min": m["ours"]["med_over_min"],
        "sgemm_shape": list(gemm_shape),
        "sgemm_calls_per_sample": m["sgemm"]["count"],
        "sgemm_us": sgemm * 1e6,
        "sgemm_gflops": flops / sgemm / 1e9,
        "ratio_to_sgemm": sgemm / ours,
        "numpy_steps_per_run": m["numpy"]["count"] if numpy_step else None,
        "numpy_us_per_step": numpy_step * 1e6 if numpy_step else None,
        "speedup_vs_numpy": numpy_step / ours if numpy_step else None,
        "other_cpu_share": m["other_cpu_share"],
        "samples_s": {k: m[k]["samples"] for k in measurements},
    }
    del learner, net, measurements
    gc.collect()
    return row


def run(quick: bool = False, *, sizes=None, batches=None, repeats: Optional[int] = None,
        min_time: Optional[float] = None, settle: Optional[float] = None,
        numpy_baseline: bool = True,
        progress: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Measures every (n, B); ``quick`` uses fewer sizes and repeats (under a minute)."""
    d_repeats, d_min_time, d_settle = QUICK_SETTINGS if quick else FULL_SETTINGS
    sizes = tuple(sizes or (QUICK_SIZES if quick else SIZES))
    batches = tuple(batches or BATCHES)
    rows = []
    for batch in batches:
        for n in sizes:
            if progress:
                progress(f"measuring n={n} B={batch} ...")
            rows.append(measure_case(n, batch, repeats=repeats or d_repeats,
                                     min_time=min_time or d_min_time,
                                     settle=d_settle if settle is None else settle,
                                     numpy_baseline=numpy_baseline))
    return rows


_COLUMNS = (  # header, width, format of the row's value (None -> "-")
    ("n", 4, lambda r: f'{r["n"]}'),
    ("B", 3, lambda r: f'{r["batch"]}'),
    ("N", 6, lambda r: f'{r["n_weights"]}'),
    ("T/run", 7, lambda r: f'{r["steps_per_run"]}'),
    ("us/step", 10, lambda r: f'{r["us_per_step"]:.2f}'),
    ("med/min", 7, lambda r: f'{r["ours_median_over_min"]:.2f}'),
    ("GFLOP/s", 8, lambda r: f'{r["gflops"]:.2f}'),
    ("sgemm GF/s", 10, lambda r: f'{r["sgemm_gflops"]:.2f}'),
    ("ours/sgemm", 10, lambda r: f'{r["ratio_to_sgemm"]:.2f}'),
    ("NumPy us/step", 13, lambda r: "-" if r["numpy_us_per_step"] is None
     else f'{r["numpy_us_per_step"]:.2f}'),
    ("speed-up", 8, lambda r: "-" if r["speedup_vs_numpy"] is None
     else f'{r["speedup_vs_numpy"]:.1f}x'),
    ("other%", 6, lambda r: "-" if r.get("other_cpu_share") is None
     else f'{100 * r["other_cpu_share"]:.0f}'),
)


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of ``run()``'s rows."""
    return "\n".join(table_lines(_COLUMNS, rows))


LEGEND = """\
us/step: min over repeats of one RTRL.run of T/run steps / T (float32, m=8, 1 output, SGD lr=1e-3 each step).
med/min: median/min of those repeats (noise).  GFLOP/s: 2 n^2 N B flops per step, N = n (m+1+n).
sgemm GF/s: one OpenBLAS sgemm M=n, N=N*B, K=n on the same threads, interleaved with ours, min.
ours/sgemm: sgemm time / our step time.  NumPy: rtrl.bench.numpy_rtrl.NumpyRTRL (float32), speed-up = NumPy/ours.
other%: share of all CPUs used by other processes (or VM steal) while the row was measured; rows
measured with other% well above 0 are unreliable (rtrl's OpenMP threads wait on descheduled peers)."""
