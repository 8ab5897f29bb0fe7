"""Speed of the fused LSTM/GRU layers (``rtrl.nn``) against PyTorch's CPU implementation.

For LSTM and GRU, one layer, float32, input size I = hidden size H, at (T, B, H) = (100, 32, 256),
(100, 1, 64) and (50, 64, 512), it measures in the same process, interleaved:

* forward: ``torch.nn.LSTM(x)`` under ``torch.no_grad()`` against ``rtrl.nn.LSTM(x)``;
* forward + backward: ``out, _ = torch_layer(x); out.backward(g)`` (x requires grad, so that torch
  computes dL/dx as ours always does; the parameter gradients are reset to None before each call)
  against ``out, _ = layer(x); layer.backward(g)``;

* forward + backward inside torch: ``rtrl.torch.LSTM`` (``GRU``) in torch autograd, ``out, _ = module(x);
  out.backward(g)`` as for torch's module, against ``rtrl.nn``'s figure (the bridge's cost: the target is
  within 1.1x of it); on the device rtrl runs on (CPU tensors, or CUDA tensors when torch has CUDA);

and one cell step from Python at B = 1, H = I = 64: ``torch.nn.LSTMCell`` (under ``no_grad``) against
``rtrl.nn.LSTMCell``, feeding the state back, in µs per call.

Both sides run on the same number of threads (torch's intra-op threads = rtrl's OpenMP threads) with
the same weights (torch's, loaded into ours with ``load_state_dict``); the outputs and gradients are
compared once per case as a check that the two compute the same thing. Without torch, only our times
are measured and the torch columns show ``-``.

``run(quick) -> list[dict]``, ``header() -> str`` (the machine), ``format_table(rows) -> str`` and
``LEGEND``; ``rtrl bench --only layers`` and ``benchmarks/bench_layers.py`` print them.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable, Optional

import numpy as np

from .device import synchronize, to_device, to_host
from .machine import header, measure_interleaved, per_call_timer, table_lines

__all__ = ["LEGEND", "format_table", "header", "measure_cell", "measure_layer", "run", "torch_or_none"]

SHAPES = ((100, 32, 256), (100, 1, 64), (50, 64, 512))  # (T, B, I = H)
QUICK_SHAPES = SHAPES
CELLS = ("lstm", "gru")
CELL_STEP = (1, 64)  # (B, I = H) of the single-step cell comparison
GATES = {"lstm": 4, "gru": 3}

# (repeats, min_time seconds per measurement, settle seconds between measurements)
FULL_SETTINGS = (5, 0.3, 0.15)
QUICK_SETTINGS = (2, 0.03, 0.05)


def torch_or_none():
    """``torch`` when it can be imported, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def forward_flops(cell: str, T: int, B: int, I: int, H: int) -> int:
    """2 T B (I + H) G H: the input and recurrent GEMMs of the forward pass (G gates)."""
    return 2 * T * B * (I + H) * GATES[cell] * H


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def measure_layer(cell: str, T: int, B: int, H: int, *, repeats: int, min_time: float, settle: float,
                  torch=None, device: str = "cpu") -> dict[str, Any]:
    """One row: forward and forward+backward of one layer, ours (on ``device``) and (when ``torch`` is
    given) torch's on the CPU."""
    import rtrl

    I = H
    threads = int(rtrl.info()["cpu"]["threads"])
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (T, B, I)).astype(np.float32)
    g = rng.uniform(-1, 1, (T, B, H)).astype(np.float32)
    ours = {"lstm": rtrl.nn.LSTM, "gru": rtrl.nn.GRU}[cell](I, H, device=device, dtype="float32", seed=0)
    x_ours, g_ours = to_device(x, device), to_device(g, device)

    measurements: dict[str, Callable[[int], float]] = {}
    check: dict[str, Optional[float]] = {"output_rel_diff": None, "grad_rel_diff": None,
                                         "bridge_rel_diff": None}
    if torch is not None:
        torch.manual_seed(0)
        theirs = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H)
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        xt, gt = torch.from_numpy(x), torch.from_numpy(g)
        xg = xt.clone().requires_grad_(True)

        def torch_forward() -> None:
            with torch.no_grad():
                theirs(xt)

        def torch_train() -> None:
            theirs.zero_grad(set_to_none=True)
            xg.grad = None
            out, _ = theirs(xg)
            out.backward(gt)

        # the same computation on both sides (checked once, not timed)
        torch_train()
        with torch.no_grad():
            out_t = theirs(xt)[0].numpy()
        out_o, _ = ours(x_ours)
        dx_o = ours.backward(g_ours)[0]
        check["output_rel_diff"] = _rel(to_host(out_o), out_t)
        check["grad_rel_diff"] = max(
            [_rel(to_host(dx_o), xg.grad.numpy())]
            + [_rel(to_host(ours.grads[k]), p.grad.numpy()) for k, p in theirs.named_parameters()])
        measurements["torch_fwd"] = per_call_timer(torch_forward)
        bridge = _bridge_train(torch, cell, theirs, x, g, device)
        if bridge is not None:
            train, grads = bridge
            train()
            check["bridge_rel_diff"] = max(_rel(grads()[k], to_host(v)) for k, v in ours.grads.items())
            measurements["bridge_fb"] = per_call_timer(train)

    def ours_forward() -> None:
        ours(x_ours)
        synchronize(device)

    def ours_train() -> None:
        out, _ = ours(x_ours)
        ours.backward(g_ours)
        synchronize(device)

    measurements["ours_fwd"] = per_call_timer(ours_forward)
    if torch is not None:
        measurements["torch_fb"] = per_call_timer(torch_train)
    measurements["ours_fb"] = per_call_timer(ours_train)

    m = measure_interleaved(measurements, repeats=repeats, min_time=min_time, settle=settle)
    flops = forward_flops(cell, T, B, I, H)

    def best(key: str) -> Optional[float]:
        return m[key]["best"] if key in m else None

    row: dict[str, Any] = {
        "kind": "layer", "device": device, "cell": cell, "T": T, "B": B, "I": I, "H": H, "threads": threads,
        "torch": None if torch is None else torch.__version__,
        "torch_threads": None if torch is None else torch.get_num_threads(), "dtype": "float32",
        "forward_flops": flops,
        "torch_fwd_ms": None if best("torch_fwd") is None else best("torch_fwd") * 1e3,
        "ours_fwd_ms": best("ours_fwd") * 1e3,
        "torch_fb_ms": None if best("torch_fb") is None else best("torch_fb") * 1e3,
        "ours_fb_ms": best("ours_fb") * 1e3,
        "bridge_fb_ms": None if best("bridge_fb") is None else best("bridge_fb") * 1e3,
        "ours_fwd_gflops": flops / best("ours_fwd") / 1e9,
        "ours_fb_gflops": 3 * flops / best("ours_fb") / 1e9,
        "repeats": repeats,
        "med_over_min": max(v["med_over_min"] for k, v in m.items() if k != "other_cpu_share"),
        "other_cpu_share": m["other_cpu_share"],
        "calls_per_sample": {k: v["count"] for k, v in m.items() if k != "other_cpu_share"},
        "samples_s": {k: v["samples"] for k, v in m.items() if k != "other_cpu_share"},
        **check,
    }
    row["fwd_ratio"] = None if torch is None else row["ours_fwd_ms"] / row["torch_fwd_ms"]
    row["fb_ratio"] = None if torch is None else row["ours_fb_ms"] / row["torch_fb_ms"]
    row["bridge_ratio"] = None if row["bridge_fb_ms"] is None else row["bridge_fb_ms"] / row["ours_fb_ms"]
    del ours, measurements
    gc.collect()
    return row


def _bridge_train(torch, cell: str, theirs, x: np.ndarray, g: np.ndarray, device: str):
    """``(train, grads)`` for ``rtrl.torch``'s module with ``theirs``' weights on ``device``: ``train()``
    runs forward + backward in torch autograd (as torch's own module is timed), ``grads()`` the
    parameter gradients as NumPy arrays; None when torch cannot put tensors on ``device``."""
    import rtrl.torch

    if device == "cuda" and not torch.cuda.is_available():
        return None
    dev = torch.device(device)
    module = {"lstm": rtrl.torch.LSTM, "gru": rtrl.torch.GRU}[cell](theirs.input_size, theirs.hidden_size,
                                                                    device=dev)
    module.load_state_dict(theirs.state_dict())
    xg = torch.from_numpy(x).to(dev).requires_grad_(True)
    gt = torch.from_numpy(g).to(dev)

    def train() -> None:
        module.zero_grad(set_to_none=True)
        xg.grad = None
        out, _ = module(xg)
        out.backward(gt)
        if device == "cuda":
            torch.cuda.synchronize()

    def grads() -> dict[str, np.ndarray]:
        return {k: p.grad.cpu().numpy() for k, p in module.named_parameters()}

    return train, grads


def measure_cell(B: int, H: int, *, repeats: int, min_time: float, settle: float,
                 torch=None, device: str = "cpu") -> dict[str, Any]:
    """One LSTMCell step from Python, state fed back: ours (on ``device``) and (when ``torch`` is
    given) torch's on the CPU."""
    import rtrl

    I = H
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (B, I)).astype(np.float32)
    ours = rtrl.nn.LSTMCell(I, H, device=device, dtype="float32", seed=0)
    x_ours = to_device(x, device)
    measurements: dict[str, Callable[[int], float]] = {}
    check = None
    if torch is not None:
        torch.manual_seed(0)
        theirs = torch.nn.LSTMCell(I, H)
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        xt = torch.from_numpy(x)

        def torch_steps(count: int) -> float:
            with torch.no_grad():
                h = c = torch.zeros(B, H)
                start = time.perf_counter()
                for _ in range(count):
                    h, c = theirs(xt, (h, c))
                return time.perf_counter() - start

        with torch.no_grad():
            h_t = theirs(xt)[0].numpy()
        check = _rel(to_host(ours(x_ours)[0]), h_t)
        measurements["torch"] = torch_steps

    def ours_steps(count: int) -> float:
        h = c = to_device(np.zeros((B, H), dtype=np.float32), device)
        synchronize(device)
        start = time.perf_counter()
        for _ in range(count):
            h, c = ours(x_ours, (h, c))
        synchronize(device)
        return time.perf_counter() - start

    measurements["ours"] = ours_steps
    m = measure_interleaved(measurements, repeats=repeats, min_time=min_time, settle=settle)
    torch_us = m["torch"]["best"] * 1e6 if "torch" in m else None
    row = {
        "kind": "cell", "device": device, "cell": "lstm_cell", "B": B, "I": I, "H": H,
        "torch": None if torch is None else torch.__version__,
        "torch_us": torch_us, "ours_us": m["ours"]["best"] * 1e6,
        "ratio": None if torch_us is None else m["ours"]["best"] * 1e6 / torch_us,
        "repeats": repeats,
        "med_over_min": max(v["med_over_min"] for k, v in m.items() if k != "other_cpu_share"),
        "other_cpu_share": m["other_cpu_share"],
        "calls_per_sample": {k: v["count"] for k, v in m.items() if k != "other_cpu_share"},
        "samples_s": {k: v["samples"] for k, v in m.items() if k != "other_cpu_share"},
        "output_rel_diff": check,
    }
    return row


def run(quick: bool = False, *, shapes=None, cells=None, repeats: Optional[int] = None,
        min_time: Optional[float] = None, settle: Optional[float] = None, use_torch: bool = True,
        device: str = "cpu", progress: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Measures every (cell, shape) and the cell step; ``quick`` uses fewer repeats (well under a
    minute). Without torch (or with ``use_torch=False``) only our times are measured. ``device``:
    where rtrl's layers run ("cpu" or "cuda"); torch always runs on the CPU."""
    import rtrl

    d_repeats, d_min_time, d_settle = QUICK_SETTINGS if quick else FULL_SETTINGS
    repeats = repeats or d_repeats
    min_time = min_time or d_min_time
    settle = d_settle if settle is None else settle
    torch = torch_or_none() if use_torch else None
    threads = int(rtrl.info()["cpu"]["threads"])
    previous = None
    if torch is not None:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
    rows = []
    try:
        for cell in tuple(cells or CELLS):
            for T, B, H in tuple(shapes or (QUICK_SHAPES if quick else SHAPES)):
                if progress:
                    progress(f"measuring {cell} T={T} B={B} H={H} ...")
                rows.append(measure_layer(cell, T, B, H, repeats=repeats, min_time=min_time,
                                          settle=settle, torch=torch, device=device))
        if progress:
            progress(f"measuring lstm cell step B={CELL_STEP[0]} H={CELL_STEP[1]} ...")
        rows.append(measure_cell(*CELL_STEP, repeats=repeats, min_time=min_time, settle=settle,
                                 torch=torch, device=device))
    finally:
        if previous is not None:
            torch.set_num_threads(previous)
    return rows


def _f(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _other(r: dict) -> str:
    return "-" if r.get("other_cpu_share") is None else f'{100 * r["other_cpu_share"]:.0f}'


_LAYER_COLUMNS = (  # header, width, format
    ("layer", 5, lambda r: r["cell"].upper()),
    ("T", 4, lambda r: f'{r["T"]}'),
    ("B", 3, lambda r: f'{r["B"]}'),
    ("I=H", 4, lambda r: f'{r["H"]}'),
    ("fwd torch ms", 12, lambda r: _f(r["torch_fwd_ms"], ".3f")),
    ("ours ms", 9, lambda r: _f(r["ours_fwd_ms"], ".3f")),
    ("ours/torch", 10, lambda r: _f(r["fwd_ratio"], ".2f")),
    ("f+b torch ms", 12, lambda r: _f(r["torch_fb_ms"], ".3f")),
    ("ours ms", 9, lambda r: _f(r["ours_fb_ms"], ".3f")),
    ("ours/torch", 10, lambda r: _f(r["fb_ratio"], ".2f")),
    ("rtrl.torch ms", 13, lambda r: _f(r.get("bridge_fb_ms"), ".3f")),
    ("/ours", 5, lambda r: _f(r.get("bridge_ratio"), ".2f")),
    ("f+b GF/s", 8, lambda r: f'{r["ours_fb_gflops"]:.1f}'),
    ("med/min", 7, lambda r: f'{r["med_over_min"]:.2f}'),
    ("other%", 6, _other),
)

_CELL_COLUMNS = (
    ("cell step", 9, lambda r: "LSTMCell"),
    ("B", 3, lambda r: f'{r["B"]}'),
    ("I=H", 4, lambda r: f'{r["H"]}'),
    ("torch us", 9, lambda r: _f(r["torch_us"], ".2f")),
    ("ours us", 9, lambda r: _f(r["ours_us"], ".2f")),
    ("ours/torch", 10, lambda r: _f(r["ratio"], ".2f")),
    ("med/min", 7, lambda r: f'{r["med_over_min"]:.2f}'),
    ("other%", 6, _other),
)


def format_table(rows: list[dict]) -> str:
    """Fixed-width text tables of ``run()``'s rows (layers, then the cell step), with a line saying
    so when the torch comparison was skipped or when ours and torch's results disagree."""
    layers = [r for r in rows if r.get("kind") == "layer"]
    cells = [r for r in rows if r.get("kind") == "cell"]
    lines: list[str] = []
    if not rows or any(r.get("torch") is None for r in rows):
        lines.append("torch is not installed (or not used): the torch comparison was skipped, our times "
                     "only (pip install torch to compare)")
    if layers:
        lines += table_lines(_LAYER_COLUMNS, layers)
    if cells:
        lines += [""] + table_lines(_CELL_COLUMNS, cells)
    for r in layers + cells:
        diffs = [d for d in (r.get("output_rel_diff"), r.get("grad_rel_diff"), r.get("bridge_rel_diff"))
                 if d is not None]
        if diffs and max(diffs) > 1e-3:
            lines.append(f'warning: {r["cell"]} T={r.get("T")} B={r["B"]} H={r["H"]}: ours and torch differ '
                         f"(relative difference {max(diffs):.1e}); the comparison is not like for like")
    return "\n".join(lines)


LEGEND = """\
ms, us: min over interleaved repeats (torch, ours, torch, ours, ...) of the time per call; float32, one
layer, I = H, torch's weights loaded into ours, torch intra-op threads = rtrl's OpenMP threads.
fwd: forward only (torch under no_grad).  f+b: forward + backward of out*g, all parameter gradients and
dL/dx on both sides (torch's x requires grad).  ours/torch < 1: ours faster.
rtrl.torch ms: f+b of rtrl.torch.LSTM/GRU (ours, inside torch autograd, timed as torch's module);
/ours: that over ours (rtrl.nn's explicit backward), the bridge's cost (target <= 1.10).
f+b GF/s: ours, 3 x forward GEMM flops (2 T B (I+H) G H, G = 4 LSTM / 3 GRU) / f+b time.
cell step: one LSTMCell call from Python, state fed back (torch under no_grad).
med/min: worst median/min of the row's measurements (noise, 1.00 = quiet).  other%: share of all CPUs
used by other processes (or VM steal) while the row ran; distrust rows where it is well above 0."""
