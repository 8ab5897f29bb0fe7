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
from ._cells import CELL_INFO
from .models import CELLS, resolve_dtype

__all__ = ["estimate", "of_learner", "available_bytes", "format_bytes"]

# The CUDA context's bound on its scratch for blocks of sensitivity columns (cuda_context.cuh); the
# CPU context's plan comes from the CPU module itself.
_CUDA_SCRATCH_BYTES = 256 << 20
#: what estimate() knows: exact RTRL, BPTT and the learners with unit-diagonal traces
LEARNERS = ("rtrl", "bptt", "snap", "eprop", "rflo", "uoro", "kf")
# the online learners by the algorithm whose layout the core declares (algo/layout.hpp)
_ONLINE = {"rtrl": "exact", "snap": "snap1", "eprop": "eprop", "rflo": "eprop", "uoro": "uoro", "kf": "kf"}
_OPTIMIZER_ROWS = {"none": 0, "sgd": 0, "momentum": 1, "adam": 2}


def estimate(model: str, input_size: int, hidden_size: int, output_size: int | None = None, *,
             batch_size: int = 1, dtype: Any = "float32", learner: str = "rtrl",
             optimizer: str = "sgd", update: str = "realtime", steps: int | None = None,
             bias: bool = True, num_layers: int = 1, weight_rows: int | None = None,
             device: str = "cpu") -> dict[str, int]:
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
    learner : {"rtrl", "bptt", "snap", "eprop", "rflo", "uoro", "kf"}
        Exact RTRL, BPTT, or SnAp-1 / e-prop / RFLO (their traces: the layers' parameters once per
        stream and state part; e-prop's random feedback matrix is not counted), or UORO (a
        parameter tangent and a state tangent per stream), or KF-RTRL ("kf": its Kronecker
        factors per stream; fully_recurrent, rnn and lstm).
    optimizer : {"none", "sgd", "momentum", "adam"}
        What the optimizer keeps per parameter: nothing, nothing, a velocity, two moments.
    update : {"realtime", "epoch"}
    steps : int, optional
        BPTT: the length of one chunk (``truncation``, or the sequence). Ignored by RTRL.
    bias : bool
        Fully recurrent network: whether it has a bias line.
    weight_rows : int, optional
        Column-sharded RTRL (``rtrl.distributed.ShardedRTRL``): the weight rows whose sensitivities
        one process carries — of the fully recurrent network's ``n_units``, or of each layer's
        ``gates * hidden_size`` for a RecurrentNet (default: all).
    num_layers : int
        RecurrentNet: stacked layers (sensitivities sum over the layers, layer l's covering the
        parameters of layers <= l).
    device : {"cpu", "cuda", "auto"}
        Whose module checks the sizes (the 32-bit index limits are the same on both).

    Returns
    -------
    dict
        ``parameters``, ``gradient``, ``optimizer_state``, ``state``, ``sensitivities`` (RTRL),
        ``workspace`` (per run; for BPTT the chunk's saved steps), ``learner`` (what the learner
        holds between calls: all but the workspace) and ``total``, in bytes.
    """
    if learner not in LEARNERS:
        raise ValueError(f"learner: expected one of {LEARNERS}, got {learner!r}")
    if optimizer not in _OPTIMIZER_ROWS:
        raise ValueError(f"optimizer: expected one of {tuple(_OPTIMIZER_ROWS)}, got {optimizer!r}")
    if update not in ("realtime", "epoch"):
        raise ValueError(f"update: expected 'realtime' or 'epoch', got {update!r}")
    for name, value, low in (("input_size", input_size, 0), ("hidden_size", hidden_size, 1),
                             ("output_size", output_size, 0), ("batch_size", batch_size, 1),
                             ("num_layers", num_layers, 1)):
        if value is None and name == "output_size":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
        if value >= 2**62:
            raise ValueError(f"{name}: {value} is beyond any model that could be indexed (2**62)")
    if learner == "bptt" and (steps is None or isinstance(steps, bool) or not isinstance(steps, (int, np.integer))
                              or steps < 1):
        raise ValueError(f"steps: BPTT's memory grows with the chunk length; give steps >= 1, got {steps!r}")
    item = resolve_dtype(dtype).itemsize
    where = resolve_device(device)
    rows = _OPTIMIZER_ROWS[optimizer]
    realtime = update == "realtime" and optimizer != "none"
    core = backend(where).core
    B, H, I = int(batch_size), int(hidden_size), int(input_size)
    if weight_rows is not None and learner != "rtrl":
        raise ValueError(f"weight_rows: only exact RTRL (learner='rtrl') shards its sensitivities, got {learner!r}")
    if learner == "rflo" and model != "rnn":
        raise ValueError(f"learner='rflo' runs on model='rnn' only, got {model!r}")
    if learner == "kf" and model not in ("fully_recurrent", "rnn", "lstm"):
        raise ValueError(f"learner='kf' runs on model='fully_recurrent', 'rnn' or 'lstm', got {model!r}")
    if model == "fully_recurrent":
        O = H if output_size is None else int(output_size)
        sizes = _fully_recurrent(core, H, I, O, B, bool(bias), learner, steps, item, where, realtime, rows,
                                 -1 if weight_rows is None else int(weight_rows))
    elif model in CELLS:
        if output_size is None:
            raise ValueError("output_size: RecurrentNet needs the readout's size")
        sizes = _cell_net(core, model, I, H, int(output_size), B, learner, steps, item, where,
                          int(num_layers), realtime, rows, -1 if weight_rows is None else int(weight_rows))
    else:
        raise ValueError(f"model: expected 'fully_recurrent' or one of {tuple(CELLS)}, got {model!r}")
    n_params = sizes.pop("n_params")
    out = {"parameters": n_params, "gradient": n_params, "optimizer_state": rows * n_params, **sizes}
    out = {k: int(v) * item for k, v in out.items()}
    out["learner"] = sum(v for k, v in out.items() if k != "workspace")
    out["total"] = out["learner"] + out["workspace"]
    return out


def of_learner(model: Any, learner: str, batch_size: int, optimizer_rows: int | None,
               update: str = "realtime", steps: int | None = None,
               weight_rows: int | None = None) -> dict[str, int]:
    """:func:`estimate` for an existing model (``optimizer_rows``: None without an optimizer)."""
    from .models import FullyRecurrent

    optimizer = "none" if optimizer_rows is None else {0: "sgd", 1: "momentum", 2: "adam"}[optimizer_rows]
    common = dict(batch_size=batch_size, dtype=model.dtype, learner=learner, optimizer=optimizer,
                  update=update, steps=steps, device=model.device)
    if isinstance(model, FullyRecurrent):
        return estimate("fully_recurrent", model.n_inputs, model.n_units, model.n_outputs, bias=model.bias,
                        weight_rows=weight_rows, **common)
    return estimate(model.cell, model.input_size, model.hidden_size, model.output_size,
                    num_layers=model.num_layers, weight_rows=weight_rows, **common)


def layer_sensitivities(model: Any, batch_size: int, weight_rows: int | None = None) -> list[int]:
    """Bytes of exact RTRL's sensitivities for each layer of a RecurrentNet, as its algorithm declares
    them (layer l's cover the parameters of layers <= l; ``weight_rows`` of each layer's, sharded)."""
    config = model._backend.core.CellNetConfig(model.cell, model.nonlinearity, model.input_size,
                                               model.hidden_size, model.output_size, batch_size, "mse",
                                               "mean", layers=model.num_layers, alpha=model.alpha,
                                               shard_rows=-1 if weight_rows is None else int(weight_rows))
    return [n * model.dtype.itemsize for n in config.layout("exact", False, 0)["layer_sensitivities"]]


def check_fits(need: dict[str, int], device: str, what: str, layers: list[int] | None = None) -> None:
    """Raises MemoryError naming what ``need`` holds when it exceeds the memory available (and, given
    ``layers``, each layer's sensitivities)."""
    free = available_bytes(device)
    if free is None or need["total"] <= free:
        return
    parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in need.items() if v and k not in ("learner", "total"))
    if layers and len(layers) > 1:
        parts += "; sensitivities by layer: " + ", ".join(f"{l} {format_bytes(v)}" for l, v in enumerate(layers))
    raise MemoryError(f"{what} needs {format_bytes(need['total'])} ({parts}), more than the "
                      f"{format_bytes(free)} available on {device}; use fewer streams (batch_size) or a "
                      "smaller model")


def _product_scratch(M: int, K: int, ncols: int, item: int, device: str) -> int:
    """Elements of the scratch the backend's ``for_product_blocks`` holds for the product of an
    [M, K] matrix and ncols columns: on the CPU as the CPU context plans it (a packed panel and its
    product per worker thread), on CUDA as many product columns as fit in 256 MiB
    (cuda_context.cuh)."""
    if device == "cuda":
        return max(1, min(ncols, _CUDA_SCRATCH_BYTES // max(1, M * item))) * M
    from ._backend import _load_cpu_module

    return int(_load_cpu_module()._product_block_scratch(M, K, ncols, item))


def _rtrl(layout: dict, item: int, device: str) -> dict[str, int]:
    """The sizes of an RTRL learner from the layout its algorithm declares (algo/layout.hpp), with the
    backend's scratch for the largest sensitivity product."""
    scratch = max([_product_scratch(M, K, N, item, device) for M, K, N in layout["products"]] or [0])
    return {"n_params": layout["n_params"], "state": layout["state"], "sensitivities": layout["sensitivities"],
            "workspace": layout["workspace"] + scratch}


def _fully_recurrent(core: Any, n: int, m: int, O: int, B: int, bias: bool, learner: str,
                     steps: int | None, item: int, device: str, realtime: bool, rows: int,
                     weight_rows: int = -1) -> dict[str, int]:
    config = core.FullyRecurrentConfig(n, m, bias, O, B, "logistic", False, "mean", shard_rows=weight_rows)
    if learner in _ONLINE:
        return _rtrl(config.layout(_ONLINE[learner], realtime, rows), item, device)
    N, L, T = config.n_weights, config.width, int(steps)
    # fully_recurrent_bptt.hpp: z(0..T), slope/error/keep, pre/sq_error, dL/ds, the recurrent part,
    # and the copy of the gradient the non-finite check restores
    return {"n_params": N, "state": B * n, "sensitivities": 0,
            "workspace": (T + 1) * B * L + 4 * T * B * n + 3 * B * n + N}


def _cell_net(core: Any, cell: str, I: int, H: int, O: int, B: int, learner: str,
              steps: int | None, item: int, device: str, layers: int, realtime: bool,
              rows: int, weight_rows: int = -1) -> dict[str, int]:
    config = core.CellNetConfig(cell, "tanh", I, H, O, B, "mse", "mean", layers=layers, shard_rows=weight_rows)
    if learner in _ONLINE:
        return _rtrl(config.layout(_ONLINE[learner], realtime, rows), item, device)
    info = CELL_INFO[cell]
    GH, T, TBH = info["gates"] * H, int(steps), int(steps) * B * H
    lstm, gru = cell == "lstm", cell == "gru"
    # cell_net_bptt.hpp: per layer y, gates, c (LSTM) or aux (GRU); the new state, dL/dh of the top
    # layer and of two layers below, dL/dx of layer 0, dh0 and dc0; the gradient's copy; and the
    # largest layer call's own buffers (the backward's gate gradients)
    saved = layers * (TBH + T * B * GH + (TBH if lstm or gru else 0))
    below = min(2, layers - 1)
    work = 2 * layers * B * H + (1 + below) * TBH + T * B * I + 2 * B * H
    layer_call = (2 if gru else 1) * T * B * GH + 3 * B * H + T * B + GH * H
    return {"n_params": config.n_params, "state": info["state_parts"] * layers * B * H, "sensitivities": 0,
            "workspace": saved + work + config.n_params + layer_call + T * B * (O + 1)}


def available_bytes(device: str = "cpu") -> int | None:
    """Memory this process could still get on ``device`` (CPU: MemAvailable, within the cgroup's
    limit when one is set; CUDA: free device memory plus CuPy's pooled free blocks), or None when
    the system does not say."""
    if resolve_device(device) == "cuda":
        import cupy

        # free device memory, plus what CuPy's pool holds and would hand out again
        return int(cupy.cuda.Device().mem_info[0]) + int(cupy.get_default_memory_pool().free_bytes())
    free = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except OSError:
        pass
    if free is None:
        try:
            free = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    limit = _cgroup_room()
    return free if limit is None else min(free, limit)


def _cgroup_room() -> int | None:
    """What this process's cgroup (v2) still allows, when it sets a memory limit."""
    try:
        with open("/proc/self/cgroup", encoding="ascii") as f:
            path = next((line.split(":", 2)[2].strip() for line in f if line.startswith("0::")), None)
        if path is None:
            return None
        base = os.path.join("/sys/fs/cgroup", path.lstrip("/"))
        with open(os.path.join(base, "memory.max"), encoding="ascii") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(base, "memory.current"), encoding="ascii") as f:
            used = int(f.read().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def format_bytes(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"
