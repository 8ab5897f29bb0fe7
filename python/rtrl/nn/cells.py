"""Single-step cells with torch.nn's call signatures: ``RNNCell``, ``LSTMCell``, ``GRUCell``.

Each is a one-layer, one-step view of the corresponding layer (the same native kernels), with
parameters named ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` as in torch.nn.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

import numpy as np

from .._arrays import array_library, as_device_array, like_input
from .._locking import locked
from .layers import GATES, GRU, LSTM, RNN, _pair, _RecurrentLayer



def _parameter(name: str) -> property:
    """The live parameter ``name``; assigning copies in, shape- and dtype-checked."""
    def get(self: Any) -> Any:
        p = self._layer._params
        if f"{name}_l0" not in p:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} (bias=False)")
        return p[f"{name}_l0"]

    def set(self: Any, value: Any) -> None:
        get(self)
        self.load_state_dict({**self.parameters(), name: value})
    return property(get, set, doc=f"``{name}``, live; assigning copies in (shape- and dtype-checked).")


class _Cell:
    """What the cells share. Assigning a parameter (``cell.weight_ih = array``) copies in, shape- and
    dtype-checked. Each call holds the cell's lock, so calls from several threads take turns (a
    call and its backward are two calls: threads sharing a cell hold ``cell.lock`` around each
    pair)."""

    _layer_type: type[_RecurrentLayer]
    weight_ih, weight_hh = _parameter("weight_ih"), _parameter("weight_hh")
    bias_ih, bias_hh = _parameter("bias_ih"), _parameter("bias_hh")

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, dtype: Any = "float32",
                 device: str = "auto", seed: int | None = None, **layer_options: Any) -> None:
        self._lock = threading.RLock()
        self._layer = self._layer_type(input_size, hidden_size, bias=bias, dtype=dtype, device=device,
                                       seed=seed, **layer_options)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, self._layer.bias
        self.grads: dict[str, Any] = {}
        self._last: tuple | None = None  # (saved buffers, h', unbatched) of the last step
        layer, p = self._layer, self._layer._params  # parameters are updated in place, never replaced
        self._native_args = (layer._cell, layer.nonlinearity, p["weight_ih_l0"], p["weight_hh_l0"],
                             p.get("bias_ih_l0"), p.get("bias_hh_l0"))
        # on the CPU, a call whose arrays need no conversion goes straight to the core
        self._core_call = layer._be.core.cell_call if layer._be.device == "cpu" else None

    @property
    def device(self) -> str:
        return self._layer.device

    @property
    def lock(self) -> Any:
        """The re-entrant lock every call holds; hold it (``with cell.lock:``) to keep a call and
        its backward together when threads share the cell."""
        return self._lock

    @property
    def dtype(self) -> Any:
        return self._layer.dtype

    def parameters(self) -> dict[str, Any]:
        return {k[: -len("_l0")]: v for k, v in self._layer.parameters().items()}

    @locked
    def state_dict(self) -> dict[str, Any]:
        return {k[: -len("_l0")]: v for k, v in self._layer.state_dict().items()}

    @locked
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copies parameters in (names as in torch.nn's cells); all are checked before any is copied."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state_dict: expected a mapping of name to array, got {type(state).__name__}")
        expected = self.parameters()
        unknown = sorted(set(state) - set(expected))
        missing = sorted(set(expected) - set(state))
        if unknown or missing:
            raise ValueError(f"state_dict: unknown names {unknown}, missing names {missing}")
        for name, current in expected.items():
            arr = as_device_array(state[name], name, self.dtype, self._layer._be)
            if arr.shape != current.shape:
                raise ValueError(f"{name}: expected shape {tuple(current.shape)}, got {tuple(arr.shape)}")
        self._layer.load_state_dict({f"{k}_l0": v for k, v in state.items()})

    def _direct(self, input: Any, hx: Any) -> tuple[Any, Any] | None:
        """The step through ``core.cell_call`` when the arguments allow it, else None."""
        if self._core_call is None:
            return None
        out = self._core_call(*self._native_args, input, hx)
        if out is None:
            return None
        h_new, c_new, flat, unbatched = out
        self._layer.__dict__["_saved"] = None  # (the layer's __setattr__ is for its parameters)
        self._last = (flat, h_new, unbatched)
        if unbatched:
            return h_new[0], None if c_new is None else c_new[0]
        return h_new, c_new

    def _step(self, input: Any, h: Any, c: Any) -> tuple[Any, Any]:
        """One step straight through the native layer kernel (T = 1), keeping what backward needs."""
        layer = self._layer
        be, H = layer._be, self.hidden_size
        x = as_device_array(input, "input", layer._dtype, be)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"input: expected shape (B, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(x.shape)}")
        unbatched = x.ndim == 1
        if unbatched:
            x = x[None]
        B = x.shape[0]
        states = []
        for name, value in (("hx", h), ("cx", c)):
            if value is not None:
                value = as_device_array(value, name, layer._dtype, be)
                if value.shape != ((H,) if unbatched else (B, H)):
                    raise ValueError(f"{name}: expected shape {(H,) if unbatched else (B, H)}, "
                                     f"got {tuple(value.shape)}")
                if unbatched:
                    value = value[None]
            states.append(value)
        layer._saved, self._last = None, None
        if be.device == "cpu":  # one native call that also allocates and keeps private copies
            h_new, c_new, flat = be.core.cell_step(*self._native_args, x, states[0], states[1])
            self._last = (flat, h_new, unbatched)
        else:
            cell, weights = self._native_args[0], self._native_args[2:]
            xp, dtype = be.xp, layer._dtype
            x, h0, c0 = x.copy(), *(None if v is None else v.copy() for v in states)
            y = xp.empty((1, B, H), dtype=dtype)  # for T = 1, y[0] is h_n
            c_new = xp.empty((B, H), dtype=dtype) if cell == "lstm" else None
            gates = xp.empty((1, B, GATES[cell] * H), dtype=dtype)
            cells = xp.empty((1, B, H), dtype=dtype) if cell == "lstm" else None
            aux = xp.empty((1, B, H), dtype=dtype) if cell == "gru" else None
            be.core.layer_forward(cell, layer.nonlinearity, False, *weights, x[None], h0, c0, y, 0, y[0],
                                  c_new, gates, cells, aux, be.stream())
            h_new = y[0]
            self._last = ((x, h0, c0, gates, cells, aux), h_new, unbatched)
        if unbatched:
            return h_new[0], None if c_new is None else c_new[0]
        return h_new, c_new

    def _restore_saved(self) -> None:
        """Gives the layer what its backward reads about the last step (built only when needed)."""
        saved, h_new, unbatched = self._last
        self._last = None
        if not isinstance(saved, tuple):  # the CPU's flat buffer: x, h, c, gates, cells, aux (cell_step)
            B, I, H = h_new.shape[0], self.input_size, self.hidden_size
            GH, cell = GATES[self._layer._cell] * H, self._layer._cell
            bounds = np.cumsum([0, B * I, B * H, B * H, B * GH, B * H, B * H])
            x, h0, c0, gates, cells, aux = (saved[a:b] for a, b in zip(bounds[:-1], bounds[1:]))
            x, h0, c0 = x.reshape(B, I), h0.reshape(B, H), c0.reshape(B, H) if cell == "lstm" else None
            gates, cells = gates.reshape(1, B, GH), cells.reshape(1, B, H) if cell == "lstm" else None
            aux = aux.reshape(1, B, H) if cell == "gru" else None
        else:
            x, h0, c0, gates, cells, aux = saved
        run = {"gates": gates, "cells": cells, "aux": aux, "suffix": "_l0", "k": 0, "reverse": False}
        self._layer._saved = {"inputs": [x[None]], "outputs": [h_new[None]], "runs": [run],
                              "unbatched": unbatched, "h0": None if h0 is None else h0[None],
                              "c0": None if c0 is None else c0[None]}

    def _backward(self, dh: Any, dc: Any) -> tuple[Any, Any, Any]:
        layer = self._layer
        if self._last is not None:
            self._restore_saved()
        if layer._saved is None:
            raise RuntimeError("backward() needs a forward call first (and each call allows one backward)")
        out = layer._saved["outputs"][-1]
        state_shape = (self.hidden_size,) if layer._saved["unbatched"] else (out.shape[1], self.hidden_size)
        grads_in = []
        for name, value in (("dh", dh), ("dc", dc)):
            if value is not None:
                value = as_device_array(value, name, self.dtype, layer._be)
                if value.shape != state_shape:
                    raise ValueError(f"{name}: expected shape {state_shape}, got {tuple(value.shape)}")
                value = value[None]
            grads_in.append(value)
        zeros = layer._be.xp.zeros_like(out)
        d_out = zeros[:, 0] if layer._saved["unbatched"] else zeros
        dx, dh0, dc0 = layer._backward(d_out, grads_in[0], grads_in[1])
        self.grads = {k[: -len("_l0")]: v for k, v in layer.grads.items()}
        return dx[0], dh0[0], None if dc0 is None else dc0[0]


class _HiddenStateCell(_Cell):
    """The call and backward of cells whose only state is h (RNNCell, GRUCell)."""

    def __call__(self, input: Any, hx: Any = None) -> Any:
        """``h' = cell(input, h)``."""
        with self._lock:
            out = self._direct(input, hx)
            if out is not None:  # NumPy in and out: the fast path
                return out[0]
            return like_input(self._step(input, hx, None)[0], array_library(input))

    @locked
    def backward(self, dh: Any) -> tuple[Any, Any]:
        """``dx, dh = cell.backward(dh')`` for the last call; fills ``cell.grads``."""
        dx, dh0, _ = self._backward(dh, None)
        library = array_library(dh)
        return like_input(dx, library), like_input(dh0, library)


class RNNCell(_HiddenStateCell):
    """``h' = rnn_cell(input, h)`` with ``h' = tanh|relu(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    input (B, I) or (I,); h (B, H) or (H,), zeros when omitted. ``backward(dh')`` returns
    ``(dx, dh)`` for the last call and fills ``cell.grads``.

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> cell = rtrl.nn.RNNCell(3, 4, device="cpu", seed=0)
    >>> cell(np.ones((2, 3), dtype=np.float32)).shape
    (2, 4)
    """

    _layer_type = RNN

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 *, dtype: Any = "float32", device: str = "auto", seed: int | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, dtype=dtype, device=device, seed=seed,
                         nonlinearity=nonlinearity)


class GRUCell(_HiddenStateCell):
    """``h' = gru_cell(input, h)`` with PyTorch's GRU equations (gates r, z, n).

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> cell = rtrl.nn.GRUCell(3, 4, device="cpu", seed=0)
    >>> cell(np.ones(3, dtype=np.float32)).shape
    (4,)
    """

    _layer_type = GRU


class LSTMCell(_Cell):
    """``h', c' = lstm_cell(input, (h, c))`` with PyTorch's LSTM equations (gates i, f, g, o).

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> cell = rtrl.nn.LSTMCell(3, 4, device="cpu", seed=0)
    >>> h, c = cell(np.ones((2, 3), dtype=np.float32))
    >>> h.shape, c.shape
    ((2, 4), (2, 4))
    """

    _layer_type = LSTM

    def __call__(self, input: Any, hx: Any = None) -> tuple[Any, Any]:
        with self._lock:
            out = self._direct(input, hx)
            if out is not None:
                return out
            h, c = _pair(hx, "hx")
            h_new, c_new = self._step(input, h, c)
            library = array_library(input)
            return like_input(h_new, library), like_input(c_new, library)

    @locked
    def backward(self, dh: Any, dc: Any = None) -> tuple[Any, tuple[Any, Any]]:
        dx, dh0, dc0 = self._backward(dh, dc)
        library = array_library(dh)
        return like_input(dx, library), (like_input(dh0, library), like_input(dc0, library))
