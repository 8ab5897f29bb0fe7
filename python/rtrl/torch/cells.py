"""``rtrl.torch.RNNCell``, ``LSTMCell``, ``GRUCell``: torch.nn's single-step cells, each step a
one-layer, one-step run of rtrl's native layer kernels (``rtrl.nn.stack``) through autograd."""

from __future__ import annotations

import math
from typing import Any

import torch

from .._cells import GATES
from ..nn.stack import StackSpec
from ._checks import factory_dtype, flag, matching, positive_int, same_kind
from ._function import run_stack
from .layers import NONLINEARITIES

_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_LAYER_NAMES = tuple(f"{name}_l0" for name in _NAMES)  # the names the stack's kernels read


class _CellModule(torch.nn.Module):
    """What RNNCell, LSTMCell and GRUCell share (see their docstrings)."""

    _cell = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, nonlinearity: str, device: Any,
                 dtype: Any) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.bias = flag("bias", bias)
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self._spec = StackSpec(self._cell, nonlinearity, 1, 1, self.hidden_size)  # one layer, one direction
        factory = {"device": device, "dtype": factory_dtype(dtype)}
        gh = GATES[self._cell] * self.hidden_size
        self.weight_ih = torch.nn.Parameter(torch.empty((gh, self.input_size), **factory))
        self.weight_hh = torch.nn.Parameter(torch.empty((gh, self.hidden_size), **factory))
        if self.bias:
            self.bias_ih = torch.nn.Parameter(torch.empty(gh, **factory))
            self.bias_hh = torch.nn.Parameter(torch.empty(gh, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter drawn from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), in torch.nn's
        order: under the same ``torch.manual_seed`` the same values as the torch.nn cell."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            torch.nn.init.uniform_(weight, -bound, bound)

    def _step(self, input: Any, states: tuple[tuple[str, Any], ...]) -> tuple[torch.Tensor, ...]:
        """``h'[, c']`` for ``input`` and the named states (None for zeros)."""
        weight = self.weight_ih
        same_kind("input", input, weight, f"(B, {self.input_size}) or ({self.input_size},)")
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"input: expected shape (B, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(input.shape)}")
        batched = input.dim() == 2
        if batched and input.shape[0] == 0:
            raise ValueError(f"input: the batch axis must not be empty, got shape {tuple(input.shape)}")
        expected = (input.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        axes = "(B, hidden_size)" if batched else "(hidden_size,) for unbatched input"
        given = []
        for name, value in states:
            if value is not None:
                value = matching(name, value, weight, expected, axes)
                value = value.unsqueeze(0) if batched else value.view(1, 1, -1)
            given.append(value)
        h0, c0 = given if len(given) == 2 else (given[0], None)
        x = input.unsqueeze(0) if batched else input.view(1, 1, -1)  # (T = 1, B, input_size)
        names = _NAMES if self.bias else _NAMES[:2]
        out = run_stack(self._spec, _LAYER_NAMES[: len(names)], x, h0, c0, [getattr(self, n) for n in names])
        new = [out[0][0]] + ([out[2][0]] if self._cell == "lstm" else [])  # h' = output at the step; c'
        return tuple(s if batched else s[0] for s in new)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self._cell == "rnn" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s


_SHAPES = """
    Shapes: input (B, input_size) or unbatched (input_size,); states (B, hidden_size) or
    (hidden_size,), zeros when omitted. Parameters ``weight_ih`` ({G} * hidden_size, input_size),
    ``weight_hh`` ({G} * hidden_size, hidden_size), ``bias_ih``, ``bias_hh`` ({G} * hidden_size,):
    ``torch.nn.Parameter``s named, shaped and initialised as torch.nn.{kind}'s, whose state dict
    ``load_state_dict`` takes unchanged. Forward and backward run on rtrl's kernels (a one-step,
    one-layer run), float32 or float64, CPU or CUDA tensors; double backward is refused.
"""


class RNNCell(_CellModule):
    __doc__ = """``h' = rnn_cell(input, hx=None)``, ``h' = tanh|relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``,
    as torch.nn.RNNCell(input_size, hidden_size, bias=True, nonlinearity='tanh', device=None, dtype=None).
    """ + _SHAPES.format(G=1, kind="RNNCell") + """
    Examples
    --------
    >>> import torch, rtrl.torch
    >>> cell = rtrl.torch.RNNCell(3, 4, nonlinearity="relu")
    >>> h = cell(torch.randn(2, 3))
    >>> h = cell(torch.randn(2, 3), h)
    >>> h.shape
    torch.Size([2, 4])
    """

    _cell = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, nonlinearity, device, dtype)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        return self._step(input, (("hx", hx),))[0]


class GRUCell(_CellModule):
    __doc__ = """``h' = gru_cell(input, hx=None)`` with torch.nn.GRUCell's equations (gates r, z, n),
    as torch.nn.GRUCell(input_size, hidden_size, bias=True, device=None, dtype=None).
    """ + _SHAPES.format(G=3, kind="GRUCell") + """
    Examples
    --------
    >>> import torch, rtrl.torch
    >>> cell = rtrl.torch.GRUCell(3, 4)
    >>> cell(torch.randn(3)).shape
    torch.Size([4])
    """

    _cell = "gru"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, "tanh", device, dtype)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> torch.Tensor:
        return self._step(input, (("hx", hx),))[0]


class LSTMCell(_CellModule):
    __doc__ = """``h', c' = lstm_cell(input, (h, c))`` (or ``lstm_cell(input)``) with torch.nn.LSTMCell's
    equations (gates i, f, g, o), as torch.nn.LSTMCell(input_size, hidden_size, bias=True, device=None,
    dtype=None).
    """ + _SHAPES.format(G=4, kind="LSTMCell") + """
    Examples
    --------
    >>> import torch, rtrl.torch
    >>> cell = rtrl.torch.LSTMCell(3, 4)
    >>> h, c = cell(torch.randn(2, 3))
    >>> h, c = cell(torch.randn(2, 3), (h, c))
    >>> (h.sum() + c.sum()).backward()
    >>> h.shape, c.shape, cell.weight_ih.grad.shape
    (torch.Size([2, 4]), torch.Size([2, 4]), torch.Size([16, 3]))
    """

    _cell = "lstm"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, "tanh", device, dtype)

    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if hx is None:
            h = c = None
        elif isinstance(hx, (tuple, list)) and len(hx) == 2 and all(isinstance(t, torch.Tensor) for t in hx):
            h, c = hx
        else:
            raise TypeError(f"hx: expected a pair (h, c) of tensors or None, got {type(hx).__name__}")
        h_new, c_new = self._step(input, (("hx[0]", h), ("hx[1]", c)))
        return h_new, c_new
