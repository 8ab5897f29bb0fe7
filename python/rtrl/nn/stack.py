"""The stack of layers and directions over the native layer kernels, on arrays the caller prepared.

``rtrl.nn``'s layers and cells and ``rtrl.torch``'s modules share these two functions: the caller
brings the input and states onto the device (C-contiguous, time-major), owns the parameters and the
parameter gradients, and keeps what ``stack_forward`` saved until ``stack_backward``. Layer k > 0
reads the (concatenated) outputs of layer k - 1; each direction is one ``core.layer_forward`` /
``core.layer_backward`` call.

Shapes (L layers, D directions, G gates, T steps, B batch, I input, H hidden):
input (T, B, I); states h0, c0, h_n, c_n (L * D, B, H); output (T, B, D * H); parameters named as in
torch.nn (``weight_ih_l0``, ``weight_hh_l1_reverse``, ...), ``weight_ih`` (G H, I or D H),
``weight_hh`` (G H, H), biases (G H,).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .._backend import Backend
from .._cells import GATES


@dataclass(frozen=True)
class StackSpec:
    """What the kernels need to know of a stack: cell ("rnn", "lstm", "gru"), nonlinearity (RNN's
    "tanh" or "relu"), num_layers, directions (1 or 2) and hidden_size."""

    cell: str
    nonlinearity: str
    num_layers: int
    directions: int
    hidden_size: int

    def suffixes(self, layer: int) -> list[str]:
        """The parameter-name suffixes of ``layer``'s directions: ``_l{layer}`` [, ``_l{layer}_reverse``]."""
        return [f"_l{layer}", f"_l{layer}_reverse"][: self.directions]

    def state_shape(self, batch: int) -> tuple[int, int, int]:
        return (self.num_layers * self.directions, batch, self.hidden_size)


def stack_forward(spec: StackSpec, be: Backend, params: Mapping[str, Any], x: Any, h0: Any,
                  c0: Any) -> tuple[Any, Any, Any, dict[str, Any]]:
    """``y, h_n, c_n, saved``: the top layer's output (T, B, D * H), the final states (L * D, B, H)
    (``c_n`` None but for the LSTM) and what :func:`stack_backward` reads. ``x`` (T, B, I) and the
    optional ``h0``, ``c0`` (L * D, B, H) are kept in ``saved`` as given (not copied)."""
    xp, core, H, D = be.xp, be.core, spec.hidden_size, spec.directions
    dtype = x.dtype
    T, B = x.shape[0], x.shape[1]
    lstm, gru = spec.cell == "lstm", spec.cell == "gru"
    gh = GATES[spec.cell] * H
    h_n = xp.empty(spec.state_shape(B), dtype=dtype)
    c_n = xp.empty(spec.state_shape(B), dtype=dtype) if lstm else None
    saved: dict[str, Any] = {"inputs": [], "outputs": [], "runs": [], "h0": h0, "c0": c0}
    layer_in = x
    for layer in range(spec.num_layers):
        y = xp.empty((T, B, D * H), dtype=dtype)
        for direction, suffix in enumerate(spec.suffixes(layer)):
            k = layer * D + direction
            run = {
                "gates": xp.empty((T, B, gh), dtype=dtype),
                "cells": xp.empty((T, B, H), dtype=dtype) if lstm else None,
                "aux": xp.empty((T, B, H), dtype=dtype) if gru else None,
                "suffix": suffix, "k": k, "reverse": direction == 1,
            }
            core.layer_forward(
                spec.cell, spec.nonlinearity, direction == 1, params[f"weight_ih{suffix}"],
                params[f"weight_hh{suffix}"], params.get(f"bias_ih{suffix}"), params.get(f"bias_hh{suffix}"),
                layer_in, None if h0 is None else h0[k], None if c0 is None else c0[k], y,
                direction * H, h_n[k], None if c_n is None else c_n[k], run["gates"],
                run["cells"], run["aux"], be.stream())
            saved["runs"].append(run)
        saved["inputs"].append(layer_in)
        saved["outputs"].append(y)
        layer_in = y
    return layer_in, h_n, c_n, saved


def stack_backward(spec: StackSpec, be: Backend, params: Mapping[str, Any], saved: Mapping[str, Any],
                   dy: Any, dh_n: Any, dc_n: Any, grads: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """``dx, dh0, dc0`` (``dc0`` None but for the LSTM) from the gradients of the top layer's output
    ``dy`` (T, B, D * H, C-contiguous) and of the final states ``dh_n``, ``dc_n`` (L * D, B, H, or
    None for zero); adds the parameter gradients into ``grads`` (arrays shaped as ``params``)."""
    xp, core, H, D = be.xp, be.core, spec.hidden_size, spec.directions
    y_top = saved["outputs"][-1]
    dtype, B = y_top.dtype, y_top.shape[1]
    lstm = spec.cell == "lstm"
    dh0 = xp.empty(spec.state_shape(B), dtype=dtype)
    dc0 = xp.empty(spec.state_shape(B), dtype=dtype) if lstm else None
    h0, c0 = saved["h0"], saved["c0"]
    for layer in reversed(range(spec.num_layers)):
        layer_in, y = saved["inputs"][layer], saved["outputs"][layer]
        dx = xp.empty(layer_in.shape, dtype=dtype)
        for direction in range(D):
            run = saved["runs"][layer * D + direction]
            suffix, k = run["suffix"], run["k"]
            core.layer_backward(
                spec.cell, spec.nonlinearity, run["reverse"], params[f"weight_ih{suffix}"],
                params[f"weight_hh{suffix}"], params.get(f"bias_ih{suffix}"), params.get(f"bias_hh{suffix}"),
                layer_in, None if h0 is None else h0[k], None if c0 is None else c0[k], y, direction * H,
                run["gates"], run["cells"], run["aux"], dy, direction * H,
                None if dh_n is None else dh_n[k], None if dc_n is None else dc_n[k], dx,
                direction == 1, dh0[k], None if dc0 is None else dc0[k],
                grads[f"weight_ih{suffix}"], grads[f"weight_hh{suffix}"],
                grads.get(f"bias_ih{suffix}"), grads.get(f"bias_hh{suffix}"), be.stream())
        dy = dx
    return dy, dh0, dc0


def saved_arrays(saved: Mapping[str, Any]) -> list[Any]:
    """What :func:`stack_forward` saved as a flat list (None where a buffer is absent): h0, c0, each
    layer's output, then gates, cells, aux of each layer and direction; the input is not included
    (the caller keeps it). :func:`saved_from` rebuilds the mapping."""
    flat = [saved["h0"], saved["c0"], *saved["outputs"]]
    for run in saved["runs"]:
        flat += [run["gates"], run["cells"], run["aux"]]
    return flat


def saved_from(spec: StackSpec, x: Any, flat: list[Any]) -> dict[str, Any]:
    """The mapping :func:`stack_backward` reads, from the input ``x`` and :func:`saved_arrays`' list."""
    L, D = spec.num_layers, spec.directions
    outputs = list(flat[2: 2 + L])
    runs = []
    for k in range(L * D):
        gates, cells, aux = flat[2 + L + 3 * k: 5 + L + 3 * k]
        layer, direction = divmod(k, D)
        runs.append({"gates": gates, "cells": cells, "aux": aux, "suffix": spec.suffixes(layer)[direction],
                     "k": k, "reverse": direction == 1})
    return {"inputs": [x, *outputs[:-1]], "outputs": outputs, "runs": runs, "h0": flat[0], "c0": flat[1]}
