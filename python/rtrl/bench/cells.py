"""Exact RTRL for RecurrentNet (RNN/LSTM/GRU + readout) against the same-shape sgemm.

Per step, the sensitivity GEMM Q = W_hh (G H x H) @ P_h (H x B Np), Np = G H (I + H + biases),
dominates: 2 G H^2 B Np flops. ``ours/sgemm`` is the time of one OpenBLAS sgemm of that shape
(interleaved with ours, same threads) over our time per step: 1.0 is the physical limit.
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Optional

from .device import run_timer
from .machine import measure_interleaved, sgemm_timer, table_lines

N_INPUTS = 8
LR = 1e-3
CELLS = ("rnn", "lstm", "gru")
HIDDEN = (16, 32, 64, 128)
BATCHES = (1, 8)
QUICK_HIDDEN = (16, 64)
QUICK_BATCHES = (1,)
FULL_SETTINGS = (5, 0.2, 0.1)  # repeats, min_time per measurement (s), settle between measurements (s)
QUICK_SETTINGS = (3, 0.08, 0.05)
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def shape(cell: str, hidden: int, batch: int) -> tuple[int, int, int, int]:
    """(M, N, K) of the sensitivity GEMM and the number of recurrent parameters Np."""
    gh = GATES[cell] * hidden
    n_theta = gh * (N_INPUTS + hidden + (2 if cell == "gru" else 1))
    return gh, n_theta * batch, hidden, n_theta


def measure_case(cell: str, hidden: int, batch: int, *, repeats: int, min_time: float,
                 settle: float, device: str = "cpu") -> dict[str, Any]:
    """One row: RTRL.run of RecurrentNet(cell) on ``device`` against the same-shape CPU sgemm."""
    import numpy as np

    import rtrl

    threads = int(rtrl.info()["cpu"]["threads"])
    M, N, K, n_theta = shape(cell, hidden, batch)
    flops = 2 * M * N * K
    net = rtrl.RecurrentNet(cell, N_INPUTS, hidden, 1, seed=0, device=device)
    learner = rtrl.RTRL(net, lr=LR, batch_size=batch)
    rng = np.random.default_rng(0)

    def make_data(steps: int) -> tuple[Any, Any]:
        return (rng.uniform(-1, 1, (steps, batch, N_INPUTS)).astype(np.float32),
                rng.uniform(-1, 1, (steps, batch, 1)).astype(np.float32))

    timers = {"ours": run_timer(learner, make_data, device), "sgemm": sgemm_timer(M, N, K, threads)}
    m = measure_interleaved(timers, repeats=repeats, min_time=min_time, settle=settle)
    ours, sgemm = m["ours"]["best"], m["sgemm"]["best"]
    row = {
        "cell": cell, "device": device, "hidden": hidden, "inputs": N_INPUTS, "batch": batch,
        "n_theta": n_theta,
        "threads": threads, "repeats": repeats, "steps_per_run": m["ours"]["count"],
        "memory_bytes": learner.memory_bytes(), "sgemm_shape": [M, N, K],
        "us_per_step": ours * 1e6, "ours_median_over_min": m["ours"]["med_over_min"],
        "gflops": flops / ours / 1e9, "sgemm_gflops": flops / sgemm / 1e9, "ratio_to_sgemm": sgemm / ours,
        "other_cpu_share": m["other_cpu_share"], "samples_s": {k: m[k]["samples"] for k in ("ours", "sgemm")},
    }
    del learner, net
    gc.collect()
    return row


def run(quick: bool = False, *, cells=None, hidden=None, batches=None, repeats: Optional[int] = None,
        device: str = "cpu", progress: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Measures every (cell, H, B) with rtrl on ``device``; ``quick`` uses fewer sizes and repeats."""
    d_repeats, min_time, settle = QUICK_SETTINGS if quick else FULL_SETTINGS
    rows = []
    for cell in cells or CELLS:
        for batch in batches or (QUICK_BATCHES if quick else BATCHES):
            for h in hidden or (QUICK_HIDDEN if quick else HIDDEN):
                if progress:
                    progress(f"measuring {cell} H={h} B={batch} ...")
                rows.append(measure_case(cell, h, batch, repeats=repeats or d_repeats,
                                         min_time=min_time, settle=settle, device=device))
    return rows


_COLUMNS = (
    ("cell", 4, lambda r: r["cell"]),
    ("H", 4, lambda r: f'{r["hidden"]}'),
    ("B", 2, lambda r: f'{r["batch"]}'),
    ("Np", 7, lambda r: f'{r["n_theta"]}'),
    ("MiB", 6, lambda r: f'{r["memory_bytes"] / 2**20:.1f}'),
    ("us/step", 11, lambda r: f'{r["us_per_step"]:.1f}'),
    ("med/min", 7, lambda r: f'{r["ours_median_over_min"]:.2f}'),
    ("GFLOP/s", 8, lambda r: f'{r["gflops"]:.1f}'),
    ("sgemm GF/s", 10, lambda r: f'{r["sgemm_gflops"]:.1f}'),
    ("ours/sgemm", 10, lambda r: f'{r["ratio_to_sgemm"]:.2f}'),
    ("other%", 6, lambda r: "-" if r.get("other_cpu_share") is None else f'{100 * r["other_cpu_share"]:.0f}'),
)


def format_table(rows: list[dict]) -> str:
    return "\n".join(table_lines(_COLUMNS, rows))


LEGEND = """\
us/step: min over repeats of RTRL.run (realtime SGD, float32, I=8, one mse output) per step.
Np: recurrent parameters G H (I + H + biases); MiB: the learner's state (sensitivities dominate).
GFLOP/s: 2 G H^2 B Np per step; sgemm: one OpenBLAS sgemm M=G H, N=B Np, K=H on the same threads,
interleaved with ours; ours/sgemm = sgemm time / our step time (1.0 = the GEMM rate)."""
