"""``rtrl.torch.RNN``, ``LSTM``, ``GRU``: torch.nn's multi-layer, optionally bidirectional recurrent
modules, with forward and backward on rtrl's native layer kernels (``rtrl.nn.stack``)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence

from .._cells import GATES
from ..nn.stack import StackSpec
from ._checks import factory_dtype, flag, matching, no_dropout, positive_int, same_kind
from ._function import run_stack

NONLINEARITIES = ("tanh", "relu")


class _RecurrentModule(torch.nn.Module):
    """What RNN, LSTM and GRU share (see their docstrings)."""

    _cell = ""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, nonlinearity: str, bias: bool,
                 batch_first: bool, dropout: float, bidirectional: bool, device: Any, dtype: Any) -> None:
        super().__init__()
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        self.num_layers = positive_int("num_layers", num_layers)
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.bias = flag("bias", bias)
        self.batch_first = flag("batch_first", batch_first)
        self.dropout = no_dropout(dropout)
        self.bidirectional = flag("bidirectional", bidirectional)
        self.proj_size = 0
        self._spec = StackSpec(self._cell, self.nonlinearity, self.num_layers, 2 if self.bidirectional else 1,
                               self.hidden_size)
        factory = {"device": device, "dtype": factory_dtype(dtype)}
        D, gh = self._spec.directions, GATES[self._cell] * self.hidden_size
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else D * self.hidden_size
            for suffix in self._spec.suffixes(layer):
                shapes = {"weight_ih": (gh, in_size), "weight_hh": (gh, self.hidden_size)}
                if self.bias:
                    shapes.update(bias_ih=(gh,), bias_hh=(gh,))
                names = [f"{kind}{suffix}" for kind in shapes]
                for name, shape in zip(names, shapes.values()):
                    self.register_parameter(name, torch.nn.Parameter(torch.empty(shape, **factory)))
                self._flat_weights_names += names
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every parameter drawn from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), in torch.nn's
        order: under the same ``torch.manual_seed`` the same values as the torch.nn module."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            torch.nn.init.uniform_(weight, -bound, bound)

    def flatten_parameters(self) -> None:
        """Does nothing (torch.nn's cuDNN packing has no counterpart here); kept for code that calls it."""

    @property
    def all_weights(self) -> list[list[torch.nn.Parameter]]:
        """The parameters per layer and direction, as in torch.nn."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def _states_shape(self, batch: int | None) -> tuple[int, ...]:
        lead = self._spec.num_layers * self._spec.directions
        return (lead, self.hidden_size) if batch is None else (lead, batch, self.hidden_size)

    def _run(self, input: Any, states: tuple[tuple[str, Any], ...]) -> tuple[torch.Tensor, ...]:
        """``output, h_n[, c_n]`` for ``input`` and the named initial states (None for zeros)."""
        kind = type(self).__name__
        if isinstance(input, PackedSequence):
            raise TypeError(f"input: rtrl.torch.{kind} takes padded tensors, not a PackedSequence "
                            "(torch.nn.utils.rnn.pad_packed_sequence gives one)")
        weight = self.weight_ih_l0
        layout = "(B, T, input_size)" if self.batch_first else "(T, B, input_size)"
        same_kind("input", input, weight, f"{layout} or unbatched (T, input_size)")
        if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            raise ValueError(f"input: expected shape {layout} or unbatched (T, input_size) with input_size = "
                             f"{self.input_size}, got {tuple(input.shape)}")
        batched = input.dim() == 3
        if not batched:  # unbatched input is (T, input_size) whatever batch_first says, as in torch.nn
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        if x.shape[1] == 0:
            raise ValueError(f"input: the batch axis must not be empty, got shape {tuple(input.shape)}")
        expected = self._states_shape(x.shape[1] if batched else None)
        axes = "(num_layers * num_directions, B, hidden_size)" if batched else \
            "(num_layers * num_directions, hidden_size) for unbatched input"
        given = []
        for name, value in states:
            if value is not None:
                value = matching(name, value, weight, expected, axes)
                value = value if batched else value.unsqueeze(1)
            given.append(value)
        h0, c0 = given if len(given) == 2 else (given[0], None)
        names = self._flat_weights_names
        out = run_stack(self._spec, names, x, h0, c0, [getattr(self, n) for n in names])
        y, rest = out[0], out[1:]
        if not batched:
            return (y.squeeze(1), *(s.squeeze(1) for s in rest))
        return (y.transpose(0, 1) if self.batch_first else y, *rest)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self._cell == "rnn" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


_SHAPES = """
    Shapes (L = num_layers, D = 2 if bidirectional else 1, T steps, B batch):
    input (T, B, input_size), or (B, T, input_size) with ``batch_first``, or unbatched
    (T, input_size); {states} (L * D, B, hidden_size), or (L * D, hidden_size) for unbatched input,
    zeros when omitted; output (T, B, D * hidden_size) (batch-first or unbatched as the input).

    Parameters are ``torch.nn.Parameter``s named, shaped and initialised as torch.nn's
    (``weight_ih_l0`` ({G} * hidden_size, input_size), ``weight_hh_l0`` ({G} * hidden_size,
    hidden_size), ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse`` for the second direction), so
    ``load_state_dict`` takes a torch.nn.{kind}'s state dict unchanged. Forward and backward run on
    rtrl's kernels (CPU tensors on the CPU backend, CUDA tensors on the CUDA backend), float32 or
    float64. Not offered: ``dropout`` other than 0, ``proj_size``, PackedSequence input, double
    backward (the gradient of a gradient raises an error).
"""


class RNN(_RecurrentModule):
    __doc__ = """Elman RNN, ``h_t = tanh|relu(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, as torch.nn.RNN.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None)``;
    ``output, h_n = rnn(input, hx=None)``.
    """ + _SHAPES.format(states="hx, h_n", G=1, kind="RNN") + """
    Examples
    --------
    >>> import torch, rtrl.torch
    >>> rnn = rtrl.torch.RNN(3, 5, num_layers=2)
    >>> output, h_n = rnn(torch.randn(7, 2, 3))
    >>> output.sum().backward()
    >>> output.shape, h_n.shape, rnn.weight_hh_l1.grad.shape
    (torch.Size([7, 2, 5]), torch.Size([2, 2, 5]), torch.Size([5, 5]))
    """

    _cell = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout,
                         bidirectional, device, dtype)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        output, h_n = self._run(input, (("hx", hx),))
        return output, h_n


class GRU(_RecurrentModule):
    __doc__ = """GRU with torch.nn.GRU's equations (gates r, z, n; ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``).

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None)``; ``output, h_n = gru(input, hx=None)``.
    """ + _SHAPES.format(states="hx, h_n", G=3, kind="GRU") + """
    Examples
    --------
    >>> import torch, rtrl.torch
    >>> gru = rtrl.torch.GRU(3, 5, bidirectional=True, batch_first=True)
    >>> output, h_n = gru(torch.randn(2, 7, 3))
    >>> output.shape, h_n.shape
    (torch.Size([2, 7, 10]), torch.Size([2, 2, 5]))
    """

    _cell = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, "tanh", bias, batch_first, dropout, bidirectional,
                         device, dtype)

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        output, h_n = self._run(input, (("hx", hx),))
        return output, h_n


class LSTM(_RecurrentModule):
    __doc__ = """LSTM with torch.nn.LSTM's equations (gates i, f, g, o).

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0, device=None, dtype=None)``;
    ``output, (h_n, c_n) = lstm(input, (h_0, c_0))`` or ``lstm(input)``.
    """ + _SHAPES.format(states="h_0, c_0, h_n, c_n", G=4, kind="LSTM") + """
    Examples
    --------
    >>> import torch, rtrl.torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> lstm = rtrl.torch.LSTM(3, 5)
    >>> reference = torch.nn.LSTM(3, 5)
    >>> lstm.load_state_dict(reference.state_dict())
    <All keys matched successfully>
    >>> x = torch.randn(7, 2, 3)
    >>> output, (h_n, c_n) = lstm(x)
    >>> torch.allclose(output, reference(x)[0], atol=1e-6)
    True
    >>> output.shape, h_n.shape, c_n.shape
    (torch.Size([7, 2, 5]), torch.Size([1, 2, 5]), torch.Size([1, 2, 5]))
    """

    _cell = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size != 0:
            raise ValueError(f"proj_size: rtrl.torch.LSTM has no projection, expected 0, got {proj_size!r}")
        super().__init__(input_size, hidden_size, num_layers, "tanh", bias, batch_first, dropout, bidirectional,
                         device, dtype)

    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if hx is None:
            h0 = c0 = None
        elif isinstance(hx, (tuple, list)) and len(hx) == 2 and all(isinstance(t, torch.Tensor) for t in hx):
            h0, c0 = hx
        else:
            raise TypeError(f"hx: expected a pair (h_0, c_0) of tensors or None, got {type(hx).__name__}")
        output, h_n, c_n = self._run(input, (("h_0", h0), ("c_0", c0)))
        return output, (h_n, c_n)
