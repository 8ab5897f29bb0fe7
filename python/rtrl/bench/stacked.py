"""Exact RTRL for a stacked RecurrentNet (LSTM/GRU, L layers + readout) against sgemm calls of the same
shapes.

Per step, layer l's sensitivities P^l (H x B N_<=l) move on by one product per block of columns
(DESIGN §10): Q = W_hh^l P^l(t-1) over the layer's own B N_l columns (K = H), and
Q = [W_ih^l | W_hh^l] [P^{l-1}(t) ; P^l(t-1)] over the B N_<l columns of the layers below (K = 2 H).
The reference is one OpenBLAS sgemm of each of those shapes, M = G H, timed together, interleaved with
ours on the same threads: ``ours/sgemm`` = their summed time over our time per step (1.0 = the GEMM
rate).
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Optional

from .cells import _COLUMNS as CELL_COLUMNS
from .device import run_timer
from .machine import measure_interleaved, sgemm_timer, table_lines

N_INPUTS = 8
LR = 1e-3
CELLS = ("lstm", "gru")
HIDDEN = (32, 64)
LAYERS = (2, 3)
BATCHES = (1, 8)
QUICK_HIDDEN = (32,)
QUICK_BATCHES = (1,)
FULL_SETTINGS = (5, 0.2, 0.1)  # repeats, min_time per measurement (s), settle between measurements (s)
QUICK_SETTINGS = (3, 0.08, 0.05)


def products(cell: str, hidden: int, layers: int, batch: int) -> list[tuple[int, int, int]]:
    """(M, N, K) of each sensitivity product of one step, layer by layer (own columns, then below)."""
    from .._cells import CELL_INFO

    info = CELL_INFO[cell]
    gh = info["gates"] * hidden
    shapes, below = [], 0
    for l in range(layers):
        inputs = N_INPUTS if l == 0 else hidden
        own = gh * (inputs + hidden + info["bias_columns"])
        shapes.append((gh, batch * own, hidden))
        if below:
            shapes.append((gh, batch * below, 2 * hidden))
        below += own
    return shapes


def summed_sgemm_timer(shapes: list[tuple[int, int, int]], threads: int) -> Callable[[int], float]:
    timers = [sgemm_timer(M, N, K, threads) for M, N, K in shapes]
    return lambda calls: sum(t(calls) for t in timers)


def measure_case(cell: str, hidden: int, layers: int, batch: int, *, repeats: int, min_time: float,
                 settle: float, device: str = "cpu") -> dict[str, Any]:
    """One row: RTRL.run of a stacked RecurrentNet on ``device`` against the same-shape CPU sgemms."""
    import numpy as np

    import rtrl

    threads = int(rtrl.info()["cpu"]["threads"])
    shapes = products(cell, hidden, layers, batch)
    flops = sum(2 * M * N * K for M, N, K in shapes)
    net = rtrl.RecurrentNet(cell, N_INPUTS, hidden, 1, num_layers=layers, seed=0, device=device)
    learner = rtrl.RTRL(net, lr=LR, batch_size=batch)
    rng = np.random.default_rng(0)

    def make_data(steps: int) -> tuple[Any, Any]:
        return (rng.uniform(-1, 1, (steps, batch, N_INPUTS)).astype(np.float32),
                rng.uniform(-1, 1, (steps, batch, 1)).astype(np.float32))

    timers = {"ours": run_timer(learner, make_data, device), "sgemm": summed_sgemm_timer(shapes, threads)}
    m = measure_interleaved(timers, repeats=repeats, min_time=min_time, settle=settle)
    ours, sgemm = m["ours"]["best"], m["sgemm"]["best"]
    row = {
        "cell": cell, "device": device, "hidden": hidden, "layers": layers, "inputs": N_INPUTS,
        "batch": batch, "n_theta": sum(N for _, N, K in shapes if K == hidden) // batch, "threads": threads, "repeats": repeats,
        "steps_per_run": m["ours"]["count"], "memory_bytes": learner.memory_bytes(), "sgemm_shapes": shapes,
        "us_per_step": ours * 1e6, "ours_median_over_min": m["ours"]["med_over_min"],
        "gflops": flops / ours / 1e9, "sgemm_gflops": flops / sgemm / 1e9, "ratio_to_sgemm": sgemm / ours,
        "other_cpu_share": m["other_cpu_share"], "samples_s": {k: m[k]["samples"] for k in ("ours", "sgemm")},
    }
    del learner, net
    gc.collect()
    return row


def run(quick: bool = False, *, cells=None, hidden=None, layers=None, batches=None,
        repeats: Optional[int] = None, device: str = "cpu",
        progress: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Measures every (cell, H, L, B) with rtrl on ``device``; ``quick`` uses fewer sizes and repeats."""
    d_repeats, min_time, settle = QUICK_SETTINGS if quick else FULL_SETTINGS
    rows = []
    for cell in cells or CELLS:
        for batch in batches or (QUICK_BATCHES if quick else BATCHES):
            for h in hidden or (QUICK_HIDDEN if quick else HIDDEN):
                for n_layers in layers or LAYERS:
                    if progress:
                        progress(f"measuring {cell} H={h} L={n_layers} B={batch} ...")
                    rows.append(measure_case(cell, h, n_layers, batch, repeats=repeats or d_repeats,
                                             min_time=min_time, settle=settle, device=device))
    return rows


# the cells table's columns, with the layer count after H
_COLUMNS = CELL_COLUMNS[:2] + (("L", 2, lambda r: f'{r["layers"]}'),) + CELL_COLUMNS[2:]


def format_table(rows: list[dict]) -> str:
    return "\n".join(table_lines(_COLUMNS, rows))


LEGEND = """\
us/step: min over repeats of RTRL.run (realtime SGD, float32, I=8, one mse output) per step.
Np: recurrent parameters of all layers; MiB: the learner's state (sensitivities dominate).
GFLOP/s: the step's sensitivity products, 2 G H B (H N_l + 2 H N_<l) summed over layers l;
sgemm: one OpenBLAS sgemm of each of those shapes on the same threads, interleaved with ours;
ours/sgemm = their summed time / our step time (1.0 = the GEMM rate)."""
