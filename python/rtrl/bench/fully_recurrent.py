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
                   speed-up of rtrl over it;
* ``torch``, ``JAX`` -- the same for the same algorithm written with torch ops
                   (``rtrl.bench.torch_rtrl.TorchRTRL``, CPU) and as a jit-compiled ``lax.scan``
                   (``rtrl.bench.jax_rtrl.JaxRTRL``, CPU), when those libraries are installed
                   ("absent" otherwise).

The machine is assumed noisy: every quantity is the minimum over interleaved repeats, with a short pause
between measurements so that the spinning worker threads of one BLAS do not steal the cores of the next
measurement. Timings are printed, never asserted.

``run(quick) -> list[dict]``, ``header() -> str`` (the machine), ``format_table(rows) -> str`` and
``LEGEND``; ``rtrl bench --only rtrl`` and ``benchmarks/bench.py --only rtrl`` print them. rtrl runs
on ``device`` ("cpu" or "cuda"); the references always run on the CPU.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable, Optional

from .device import run_timer
from .jax_rtrl import JaxRTRL, jax_or_none
from .layers import torch_or_none
from .machine import header, measure_interleaved, sgemm_timer, table_lines
from .numpy_rtrl import NumpyRTRL
from .torch_rtrl import TorchRTRL

__all__ = ["LEGEND", "format_table", "header", "measure_case", "run"]

N_INPUTS = 8
LR = 1e-3
SIZES = (8, 16, 32, 64, 128)
BATCHES = (1, 16)
QUICK_SIZES = (8, 32, 128)
REFERENCES = ("numpy", "torch", "jax")  # the RTRL implementations timed next to ours (row keys)

# (repeats, min_time seconds per measurement, settle seconds between measurements)
FULL_SETTINGS = (7, 0.2, 0.15)
QUICK_SETTINGS = (3, 0.05, 0.1)


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


def _reference_timers(W0, batch: int, data: _Data, threads: int, *, numpy_baseline: bool,
                      torch_baseline: bool, jax_baseline: bool) -> tuple[dict, dict]:
    """Timed functions (steps -> seconds) of the CPU references, and the versions of torch/JAX used
    (None: not installed or not asked for)."""
    import numpy as np

    timers: dict[str, Callable[[int], float]] = {}
    versions: dict[str, Optional[str]] = {"torch": None, "jax": None}
    if numpy_baseline:
        baseline = NumpyRTRL(W0.copy(), n_outputs=1, activation="logistic", bias=True, batch=batch, lr=LR)

        def time_numpy(steps: int) -> float:
            X, D = data.get(steps)
            step = baseline.step
            start = time.perf_counter()
            for t in range(steps):
                step(X[t], D[t])
            return time.perf_counter() - start

        timers["numpy"] = time_numpy
    torch = torch_or_none() if torch_baseline else None
    if torch is not None:
        versions["torch"] = torch.__version__
        torch_ref = TorchRTRL(W0, n_outputs=1, batch=batch, lr=LR, dtype="float32", torch=torch)

        def time_torch(steps: int) -> float:
            X, D = (torch.from_numpy(a) for a in data.get(steps))
            step = torch_ref.step
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                start = time.perf_counter()
                for t in range(steps):
                    step(X[t], D[t])
                return time.perf_counter() - start
            finally:
                torch.set_num_threads(previous)

        timers["torch"] = time_torch
    jax = jax_or_none() if jax_baseline else None
    if jax is not None:
        versions["jax"] = jax.__version__
        jax_ref = JaxRTRL(W0, n_outputs=1, batch=batch, lr=LR, dtype="float32")
        on_device: dict[int, Any] = {}

        def time_jax(steps: int) -> float:
            if steps not in on_device:  # transfer and compile for this length outside the timing
                on_device[steps] = tuple(jax.device_put(np.asarray(a)) for a in data.get(steps))
                jax_ref.run(*on_device[steps])
            start = time.perf_counter()
            jax_ref.run(*on_device[steps])
            return time.perf_counter() - start

        timers["jax"] = time_jax
    return timers, versions


def measure_case(n: int, batch: int, *, repeats: int, min_time: float, settle: float,
                 numpy_baseline: bool = True, torch_baseline: bool = True, jax_baseline: bool = True,
                 device: str = "cpu") -> dict[str, Any]:
    """Measures one size on ``device`` ("cpu" or "cuda"; the references always run on the CPU);
    returns one row of the table (see ``format_table``)."""
    import numpy as np

    import rtrl

    threads = int(rtrl.info()["cpu"]["threads"])
    m = N_INPUTS
    n_weights = n * (m + 1 + n)
    flops = flops_per_step(n, m, batch)
    data = _Data(batch)

    net = rtrl.FullyRecurrent(n, m, n_outputs=1, seed=0, device=device)
    W0 = np.array(net.weight.get() if device == "cuda" else net.weight, dtype=np.float32, copy=True)
    learner = rtrl.RTRL(net, lr=LR, batch_size=batch)
    gemm_shape = (n, n_weights * batch, n)  # M, N, K
    time_ours, time_sgemm = run_timer(learner, data.get, device), sgemm_timer(*gemm_shape, threads)

    references, versions = _reference_timers(W0, batch, data, threads, numpy_baseline=numpy_baseline,
                                             torch_baseline=torch_baseline, jax_baseline=jax_baseline)
    measurements: dict[str, Callable[[int], float]] = {"ours": time_ours, "sgemm": time_sgemm,
                                                       **references}
    m = measure_interleaved(measurements, repeats=repeats, min_time=min_time, settle=settle)
    ours, sgemm = m["ours"]["best"], m["sgemm"]["best"]
    row: dict[str, Any] = {
        "n": n, "m": N_INPUTS, "batch": batch, "n_weights": n_weights, "threads": threads,
        "device": device, "dtype": "float32", "flops_per_step": flops, "repeats": repeats,
        "steps_per_run": m["ours"]["count"],
        "us_per_step": ours * 1e6,
        "gflops": flops / ours / 1e9,
        "ours_median_over_min": m["ours"]["med_over_min"],
        "sgemm_shape": list(gemm_shape),
        "sgemm_calls_per_sample": m["sgemm"]["count"],
        "sgemm_us": sgemm * 1e6,
        "sgemm_gflops": flops / sgemm / 1e9,
        "ratio_to_sgemm": sgemm / ours,
        "torch": versions["torch"], "jax": versions["jax"],
        "other_cpu_share": m["other_cpu_share"],
        "samples_s": {k: m[k]["samples"] for k in measurements},
    }
    for key in REFERENCES:
        best = m[key]["best"] if key in m else None
        row[f"{key}_steps_per_run"] = m[key]["count"] if key in m else None
        row[f"{key}_us_per_step"] = best * 1e6 if best else None
        row[f"speedup_vs_{key}"] = best / ours if best else None
    del learner, net, measurements, references
    gc.collect()
    return row


def run(quick: bool = False, *, sizes=None, batches=None, repeats: Optional[int] = None,
        min_time: Optional[float] = None, settle: Optional[float] = None,
        numpy_baseline: bool = True, torch_baseline: bool = True, jax_baseline: bool = True,
        device: str = "cpu", progress: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Measures every (n, B); ``quick`` uses fewer sizes and repeats (about a minute). ``device`` is
    where rtrl runs ("cpu" or "cuda"); the references run on the CPU."""
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
                                     numpy_baseline=numpy_baseline, torch_baseline=torch_baseline,
                                     jax_baseline=jax_baseline, device=device))
    return rows


def _reference_columns(key: str, title: str, width: int):
    """The 'us/step' and speed-up columns of one reference ("absent" when it was not measured)."""
    def us(r):
        return "absent" if r.get(f"{key}_us_per_step") is None else f'{r[f"{key}_us_per_step"]:.2f}'

    def speedup(r):
        return "-" if r.get(f"speedup_vs_{key}") is None else f'{r[f"speedup_vs_{key}"]:.1f}x'
    return ((f"{title} us/step", width, us), ("speed-up", 8, speedup))


_COLUMNS = (  # header, width, format of the row's value
    ("n", 4, lambda r: f'{r["n"]}'),
    ("B", 3, lambda r: f'{r["batch"]}'),
    ("N", 6, lambda r: f'{r["n_weights"]}'),
    ("T/run", 7, lambda r: f'{r["steps_per_run"]}'),
    ("us/step", 10, lambda r: f'{r["us_per_step"]:.2f}'),
    ("med/min", 7, lambda r: f'{r["ours_median_over_min"]:.2f}'),
    ("GFLOP/s", 8, lambda r: f'{r["gflops"]:.2f}'),
    ("sgemm GF/s", 10, lambda r: f'{r["sgemm_gflops"]:.2f}'),
    ("ours/sgemm", 10, lambda r: f'{r["ratio_to_sgemm"]:.2f}'),
    *_reference_columns("numpy", "NumPy", 13),
    *_reference_columns("torch", "torch", 13),
    *_reference_columns("jax", "JAX", 11),
    ("other%", 6, lambda r: "-" if r.get("other_cpu_share") is None
     else f'{100 * r["other_cpu_share"]:.0f}'),
)


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of ``run()``'s rows, with a line per reference that was absent."""
    lines = table_lines(_COLUMNS, rows)
    for key, name, extra in (("torch", "torch", "torch"), ("jax", "JAX", "jax jaxlib")):
        if rows and all(r.get(f"{key}_us_per_step") is None for r in rows):
            lines.append(f"{name} RTRL: absent ({name} not installed or not asked for; "
                         f"pip install {extra} to compare)")
    if any(r.get("device") == "cuda" for r in rows):
        lines.append("rtrl ran on CUDA; sgemm, NumPy, torch and JAX on the CPU")
    return "\n".join(lines)


LEGEND = """\
us/step: min over repeats of one RTRL.run of T/run steps / T (float32, m=8, 1 output, SGD lr=1e-3 each step).
med/min: median/min of those repeats (noise).  GFLOP/s: 2 n^2 N B flops per step, N = n (m+1+n).
sgemm GF/s: one OpenBLAS sgemm M=n, N=N*B, K=n on the same threads, interleaved with ours, min.
ours/sgemm: sgemm time / our step time.  Exact RTRL references, same algorithm, weights and data, float32,
real-time SGD, interleaved with ours; speed-up = their time / ours:
  NumPy: rtrl.bench.numpy_rtrl.NumpyRTRL, one Python call per step;
  torch: rtrl.bench.torch_rtrl.TorchRTRL, torch ops on the CPU, one Python call per step, torch threads
         = rtrl's threads;
  JAX:   rtrl.bench.jax_rtrl.JaxRTRL, jax.jit of a lax.scan over the T/run steps, CPU, XLA's own threads
         (compiled before timing).
  absent: that library is not installed.
other%: share of all CPUs used by other processes (or VM steal) while the row was measured; rows
measured with other% well above 0 are unreliable (rtrl's OpenMP threads wait on descheduled peers)."""
