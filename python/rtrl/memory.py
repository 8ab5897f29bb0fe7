"""What a learner will need in memory, from its configuration alone, before anything is allocated.

RTRL's memory does not depend on the sequence length: it holds the parameters, their gradient, the
optimizer's state, the recurrent state and the sensitivities (``n_units x n_weights`` per stream
for the fully recurrent network, ``hidden_size x n_theta`` — ``x 2`` for the LSTM's cell state — for
RecurrentNet), plus a per-run workspace of a few per-step buffers and cache-sized blocks. BPTT
instead keeps every step of a chunk (``truncation`` steps, or the whole sequence).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ._backend import backend, resolve_device
from .models import CELLS, resolve_dtype

__all__ = ["estimate", "of_learner", "available_bytes", "format_bytes"]

# The CPU context's cache-sized blocks of sensitivity columns (one per thread): cpu_context.hpp.
_BLOCK_BYTES = 256 * 1024
_OPTIMIZER_ROWS = {"none": 0, "sgd": 0, "momentum": 1, "adam": 2}


def estimate(model: str, input_size: int, hidden_size: int, output_size: int | None = None, *,
             batch_size: int = 1, dtype: Any = "float32", learner: str = "rtrl",
             optimizer: str = "sgd", update: str = "realtime", steps: int | None = None,
             bias: bool = True, device: str = "cpu") -> dict[str, int]:
    """Bytes a learner will hold, by part, for a model described by its sizes.

    Parameters
    ----------
    model : {"fully_recurrent", "rnn", "lstm", "gru"}
    input_size, hidden_size : int
        Inputs and units (``n_inputs``, ``n_units`` for the fully recurrent network).
    output_size : int, optional
        Readout outputs (RecurrentNet; visible units of the fully recurrent network, default all).
    batch_size : int
        Streams B.
    dtype : {"float32", "float64"}
    learner : {"rtrl", "bptt"}
    optimizer : {"none", "sgd", "momentum", "adam"}
        What the optimizer keeps per parameter: nothing, nothing, a velocity, two moments.
    update : {"realtime", "epoch"}
    steps : int, optional
        BPTT: the length of one chunk (``truncation``, or the sequence). Ignored by RTRL.
    bias : bool
        Fully recurrent network: whether it has a bias line.
    device : {"cpu", "cuda", "auto"}
        Whose module checks the sizes (the 32-bit index limits are the same on both).

    Returns
    -------
    dict
        ``parameters``, ``gradient``, ``optimizer_state``, ``state``, ``sensitivities`` (RTRL),
        ``workspace`` (per run; for BPTT the chunk's saved steps), ``learner`` (what the learner
        holds between calls: all but the workspace) and ``total``, in bytes.
    """
    if learner not in ("rtrl", "bptt"):
        raise ValueError(f"learner: expected 'rtrl' or 'bptt', got {learner!r}")
    if optimizer not in _OPTIMIZER_ROWS:
        raise ValueError(f"optimizer: expected one of {tuple(_OPTIMIZER_ROWS)}, got {optimizer!r}")
    if update not in ("realtime", "epoch"):
        raise ValueError(f"update: expected 'realtime' or 'epoch', got {update!r}")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < (0 if name == "input_size" else 1):
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if learner == "bptt" and (steps is None or isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                              or steps < 1):
        raise ValueError(f"steps: BPTT's memory grows with the chunk length; give steps >= 1, got {steps!r}")
    item = resolve_dtype(dtype).itemsize
    core = backend(resolve_device(device)).core
    B, H, I = int(batch_size), int(hidden_size), int(input_size)
    if model == "fully_recurrent":
        O = H if output_size is None else int(output_size)
        sizes = _fully_recurrent(core, H, I, O, B, bool(bias), learner, steps)
    elif model in CELLS:
        if output_size is None:
            raise ValueError("output_size: RecurrentNet needs the readout's size")
        sizes = _cell_net(core, model, I, H, int(output_size), B, learner, steps)
    else:
        raise ValueError(f"model: expected 'fully_recurrent' or one of {tuple(CELLS)}, got {model!r}")
    n_params = sizes.pop("n_params")
    rows = _OPTIMIZER_ROWS[optimizer]
    if learner == "rtrl":
        realtime = update == "realtime" and optimizer != "none"
        # the step's gradient (epoch mode) or the copy an update is undone from (real-time mode)
        sizes["workspace"] += n_params * (1 + rows) if realtime else n_params
    out = {"parameters": n_params, "gradient": n_params, "optimizer_state": rows * n_params, **sizes}
    out = {k: int(v) * item for k, v in out.items()}
    out["learner"] = sum(v for k, v in out.items() if k != "workspace")
    out["total"] = out["learner"] + out["workspace"]
    return out


def of_learner(model: Any, learner: str, batch_size: int, optimizer_rows: int | None,
               update: str = "realtime", steps: int | None = None) -> dict[str, int]:
    """:func:`estimate` for an existing model (``optimizer_rows``: None without an optimizer)."""
    from .models import FullyRecurrent

    optimizer = "none" if optimizer_rows is None else {0: "sgd", 1: "momentum", 2: "adam"}[optimizer_rows]
    common = dict(batch_size=batch_size, dtype=model.dtype, learner=learner, optimizer=optimizer,
                  update=update, steps=steps, device=model.device)
    if isinstance(model, FullyRecurrent):
        return estimate("fully_recurrent", model.n_inputs, model.n_units, model.n_outputs, bias=model.bias,
                        **common)
    return estimate(model.cell, model.input_size, model.hidden_size, model.output_size, **common)


def check_fits(need: dict[str, int], device: str, what: str) -> None:
    """Raises MemoryError naming what ``need`` holds when it exceeds the memory available."""
    free = available_bytes(device)
    if free is None or need["total"] <= free:
        return
    parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in need.items() if v and k not in ("learner", "total"))
    raise MemoryError(f"{what} needs {format_bytes(need['total'])} ({parts}), more than the "
                      f"{format_bytes(free)} available on {device}; use fewer streams (batch_size) or a "
                      "smaller model")


def _blocks(P: int, item: int = 4) -> int:
    """Elements of the per-thread scratch the sensitivity blocks use (at most one block per thread)."""
    threads = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    return min(P, threads * _BLOCK_BYTES // item + 1)


def _fully_recurrent(core: Any, n: int, m: int, O: int, B: int, bias: bool, learner: str,
                     steps: int | None) -> dict[str, int]:
    config = core.FullyRecurrentConfig(n, m, bias, O, B, "logistic", False, "mean")
    N, L = config.n_weights, config.width
    if learner == "rtrl":
        P = n * B * N
        return {"n_params": N, "state": B * n, "sensitivities": P,
                "workspace": 2 * B * L + 5 * B * n + B * N + _blocks(P)}
    T = int(steps)
    return {"n_params": N, "state": B * n, "sensitivities": 0,
            "workspace": (T + 1) * B * L + 4 * T * B * n + 3 * B * n + T * B * O + T}


def _cell_net(core: Any, cell: str, I: int, H: int, O: int, B: int, learner: str,
              steps: int | None) -> dict[str, int]:
    config = core.CellNetConfig(cell, "tanh", I, H, O, B, "mse", "mean")
    G, Np, W = CELLS[cell], config.n_theta, config.width
    GH, lstm = G * H, cell == "lstm"
    state = B * H * (2 if lstm else 1)
    if learner == "rtrl":
        P = H * B * Np * (2 if lstm else 1)
        coefficients = {"rnn": 1, "lstm": 6, "gru": 5}[cell]
        return {"n_params": config.n_params, "state": state, "sensitivities": P,
                "workspace": B * W + 2 * B * GH + (4 + coefficients) * B * H + Np + B * Np
                + _blocks(H * B * Np) + B * O + B}
    T = int(steps)
    per_step = B * (H + GH + H + H + I + 2 * GH + O + 1)  # y, gates, cell/aux, dL/dh, dx, dgates, readout
    return {"n_params": config.n_params, "state": state, "sensitivities": 0,
            "workspace": T * per_step + 6 * B * H + GH * (I + H)}


def available_bytes(device: str = "cpu") -> int | None:
    """Memory this process could still get on ``device`` (CPU: MemAvailable; CUDA: free device
    memory), or None when the system does not say."""
    if resolve_device(device) == "cuda":
        import cupy

        return int(cupy.cuda.Device().mem_info[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"
