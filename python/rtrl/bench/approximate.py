"""The online learners that scale (SnAp-1, e-prop, RFLO, UORO, KF-RTRL) against exact RTRL, BPTT's
forward-and-backward step and one memory pass, for RecurrentNet (rnn, lstm, gru), I = 32, O = 4,
float32, real-time Adam.

Each learner's per-step cost is bounded below by streaming its state once: the reference ``pass`` is
one read+write pass (``a *= 1``, NumPy) over the bytes of SnAp-1's traces, timed interleaved with the
learners on the same machine; ``SnAp/pass`` = SnAp-1's step time over it (1.0 = the memory rate).
``BPTT`` is truncated BPTT's per-step time over chunks of 32 steps (forward, backward and update), the
cost of a step that keeps no sensitivities at all; ``SnAp torch`` the same SnAp-1 written with torch
ops (torch_snap.py). Cases whose learners would not fit in half the free memory are left out.
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Optional

from .device import run_timer
from .machine import measure_interleaved, per_call_timer, table_lines

N_INPUTS, N_OUTPUTS = 32, 4
LR = 1e-3
CELLS = ("rnn", "lstm", "gru")
HIDDEN = (64, 256, 1024)
BATCHES = (1, 16)
QUICK_HIDDEN = (64,)
QUICK_BATCHES = (1,)
KF_MAX_HIDDEN = 256
EXACT_MAX_HIDDEN = 64
FULL_SETTINGS = (3, 0.2, 0.05)  # repeats, min_time per measurement (s), settle between measurements (s)
QUICK_SETTINGS = (2, 0.05, 0.01)
LEARNERS = ("snap", "eprop", "rflo", "uoro", "kf", "rtrl", "bptt")


def _learners(cell: str, hidden: int, batch: int, device: str) -> dict[str, Any]:
    import rtrl

    def net():
        return rtrl.RecurrentNet(cell, N_INPUTS, hidden, N_OUTPUTS, seed=0, device=device)

    common = dict(batch_size=batch)
    made = {"snap": rtrl.SnAp(net(), optimizer=rtrl.optim.Adam(LR), **common),
            "eprop": rtrl.EProp(net(), optimizer=rtrl.optim.Adam(LR), **common),
            "uoro": rtrl.UORO(net(), seed=0, optimizer=rtrl.optim.Adam(LR), **common),
            "bptt": rtrl.BPTT(net(), truncation=32, optimizer=rtrl.optim.Adam(LR), **common)}
    if cell == "rnn":
        made["rflo"] = rtrl.RFLO(net(), seed=0, optimizer=rtrl.optim.Adam(LR), **common)
    if cell in ("rnn", "lstm") and hidden <= KF_MAX_HIDDEN:
        made["kf"] = rtrl.KFRTRL(net(), seed=0, optimizer=rtrl.optim.Adam(LR), **common)
    if hidden <= EXACT_MAX_HIDDEN:
        made["rtrl"] = rtrl.RTRL(net(), optimizer=rtrl.optim.Adam(LR), **common)
    return made


def _fits(cell: str, hidden: int, batch: int) -> bool:
    import rtrl

    free = rtrl.memory.available_bytes("cpu")
    if free is None:
        return True
    need = sum(rtrl.memory.estimate(cell, N_INPUTS, hidden, N_OUTPUTS, batch_size=batch, learner=kind,
                                    optimizer="adam")["total"]
               for kind in ("snap", "eprop", "uoro") + (("kf",) if cell != "gru" and hidden <= KF_MAX_HIDDEN else ()))
    return need < free / 2


def _torch_snap_step(cell: str, learner: Any, batch: int) -> Optional[Callable[[], Any]]:
    """One step of SnAp-1 written with torch ops (torch_snap.py) on the same network, or None
    without torch."""
    try:
        import torch
    except ImportError:
        return None
    import numpy as np

    from .device import to_host
    from .torch_snap import TorchSnAp

    params = {k: to_host(v) for k, v in learner.model.parameters().items()}
    ref = TorchSnAp(cell, params, batch=batch, lr=LR, dtype="float32", torch=torch)
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(-1, 1, (batch, N_INPUTS)), dtype=torch.float32)
    d = torch.tensor(rng.uniform(-1, 1, (batch, N_OUTPUTS)), dtype=torch.float32)
    return lambda: ref.step(x, d)


def _torch_ratio(r: dict) -> str:
    us = r["us_per_step"]
    return f"{us['torch_snap'] / us['snap']:.1f}" if "torch_snap" in us else "-"


def measure_case(cell: str, hidden: int, batch: int, *, repeats: int, min_time: float, settle: float,
                 device: str = "cpu") -> dict[str, Any]:
    """One row: every learner's RecurrentNet run on ``device`` and the CPU memory pass."""
    import numpy as np

    import rtrl

    learners = _learners(cell, hidden, batch, device)
    rng = np.random.default_rng(0)

    def make_data(steps: int) -> tuple[Any, Any]:
        return (rng.uniform(-1, 1, (steps, batch, N_INPUTS)).astype(np.float32),
                rng.uniform(-1, 1, (steps, batch, N_OUTPUTS)).astype(np.float32))

    stream_bytes = rtrl.memory.estimate(cell, N_INPUTS, hidden, N_OUTPUTS, batch_size=batch,
                                        learner="snap")["sensitivities"]
    block = np.ones(max(1, stream_bytes // 4), dtype=np.float32)
    timers: dict[str, Callable[[int], float]] = {k: run_timer(v, make_data, device) for k, v in learners.items()}
    timers["pass"] = per_call_timer(lambda: np.multiply(block, 1.0, out=block))
    torch_step = _torch_snap_step(cell, learners["snap"], batch)
    if torch_step is not None:
        timers["torch_snap"] = per_call_timer(torch_step)
    m = measure_interleaved(timers, repeats=repeats, min_time=min_time, settle=settle)
    us = {k: m[k]["best"] * 1e6 for k in learners}
    if torch_step is not None:
        us["torch_snap"] = m["torch_snap"]["best"] * 1e6
    row = {
        "cell": cell, "device": device, "hidden": hidden, "batch": batch, "inputs": N_INPUTS,
        "threads": int(rtrl.info()["cpu"]["threads"]), "repeats": repeats,
        "us_per_step": us, "pass_us": m["pass"]["best"] * 1e6, "stream_bytes": int(stream_bytes),
        "memory_bytes": {k: int(v.memory_bytes()) for k, v in learners.items() if k != "bptt"},
        "snap_over_pass": us["snap"] / (m["pass"]["best"] * 1e6),
        "other_cpu_share": m["other_cpu_share"],
        "samples_s": {k: m[k]["samples"] for k in timers},
    }
    del learners
    gc.collect()
    return row


def run(quick: bool = False, *, cells=None, hidden=None, batches=None, repeats: Optional[int] = None,
        device: str = "cpu", progress: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Measures every (cell, H, B) with rtrl on ``device``; ``quick`` uses fewer sizes and repeats."""
    d_repeats, min_time, settle = QUICK_SETTINGS if quick else FULL_SETTINGS
    rows = []
    for cell in cells or CELLS:
        for h in hidden or (QUICK_HIDDEN if quick else HIDDEN):
            for batch in batches or (QUICK_BATCHES if quick else BATCHES):
                if not _fits(cell, h, batch):
                    if progress:
                        progress(f"skipping {cell} H={h} B={batch}: it would not fit in half the free memory")
                    continue
                if progress:
                    progress(f"measuring {cell} H={h} B={batch} ...")
                rows.append(measure_case(cell, h, batch, repeats=repeats or d_repeats, min_time=min_time,
                                         settle=settle, device=device))
    return rows


def _us(name: str) -> Callable[[dict], str]:
    return lambda r: f'{r["us_per_step"][name]:.1f}' if name in r["us_per_step"] else "-"


_COLUMNS = (
    ("cell", 4, lambda r: r["cell"]),
    ("H", 5, lambda r: f'{r["hidden"]}'),
    ("B", 3, lambda r: f'{r["batch"]}'),
    ("SnAp-1", 9, _us("snap")),
    ("e-prop", 9, _us("eprop")),
    ("RFLO", 9, _us("rflo")),
    ("UORO", 9, _us("uoro")),
    ("KF-RTRL", 9, _us("kf")),
    ("RTRL", 9, _us("rtrl")),
    ("BPTT", 8, _us("bptt")),
    ("SnAp torch", 10, _us("torch_snap")),
    ("torch/ours", 10, _torch_ratio),
    ("MiB", 7, lambda r: f'{r["stream_bytes"] / 2**20:.1f}'),
    ("pass", 8, lambda r: f'{r["pass_us"]:.1f}'),
    ("SnAp/pass", 9, lambda r: f'{r["snap_over_pass"]:.1f}'),
    ("other%", 6, lambda r: "-" if r.get("other_cpu_share") is None else f'{100 * r["other_cpu_share"]:.0f}'),
)


def format_table(rows: list[dict]) -> str:
    return "\n".join(table_lines(_COLUMNS, rows))


LEGEND = """\
SnAp-1 ... BPTT: min over repeats of learner.run per step (real-time Adam, float32, I=32, O=4), us;
RFLO on the rnn only, KF-RTRL on rnn and lstm up to H=256, exact RTRL up to H=64; BPTT: truncation 32.
SnAp torch: SnAp-1 written with torch ops (rtrl.bench.torch_snap, one Python call per step, the same
Adam) on torch's CPU threads; torch/ours = its step time over rtrl.SnAp's.
MiB: SnAp-1's traces (the state it streams each step); pass: one NumPy read+write pass over that many
bytes, interleaved with the learners; SnAp/pass = SnAp-1's step over the pass (1.0 = the memory rate)."""
