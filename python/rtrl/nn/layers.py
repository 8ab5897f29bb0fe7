"""Multi-layer, optionally bidirectional RNN/LSTM/GRU layers over the native fused kernels."""

from __future__ import annotations

import threading
from typing import Any, Mapping

import numpy as np

from .._arrays import array_library, as_device_array, as_flag, like_input, resolve_dtype, unaliased
from .._backend import backend
from .._cells import GATES
from .._locking import locked
from .stack import StackSpec, stack_backward, stack_forward

NONLINEARITIES = ("tanh", "relu")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


class _RecurrentLayer:
    """Shared implementation of RNN, LSTM and GRU (see their docstrings)."""

    _cell = ""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 bidirectional: bool = False, dtype: Any = "float32", device: str = "auto",
                 seed: int | None = None) -> None:
        self.input_size = _positive_int("input_size", input_size)
        self.hidden_size = _positive_int("hidden_size", hidden_size)
        self.num_layers = _positive_int("num_layers", num_layers)
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.bias = as_flag(bias, "bias")
        self.batch_first = as_flag(batch_first, "batch_first")
        self.bidirectional = as_flag(bidirectional, "bidirectional")
        self.seed = seed
        self._dtype = resolve_dtype(dtype)
        self._directions = 2 if self.bidirectional else 1
        self._check_memory()
        self._be = backend(device)
        self._lock = threading.RLock()
        gh = GATES[self._cell] * self.hidden_size
        bound = 1.0 / np.sqrt(self.hidden_size)
        rng = np.random.default_rng(seed)
        params: dict[str, np.ndarray] = {}
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else self.hidden_size * self._directions
            for suffix in self._suffixes(layer):
                params[f"weight_ih{suffix}"] = rng.uniform(-bound, bound, (gh, in_size))
                params[f"weight_hh{suffix}"] = rng.uniform(-bound, bound, (gh, self.hidden_size))
                if self.bias:
                    params[f"bias_ih{suffix}"] = rng.uniform(-bound, bound, gh)
                    params[f"bias_hh{suffix}"] = rng.uniform(-bound, bound, gh)
        xp = self._be.xp
        self._params = {k: xp.asarray(v, dtype=self._dtype) for k, v in params.items()}
        self.grads: dict[str, Any] = {}
        self._saved: dict[str, Any] | None = None

    def _check_memory(self) -> None:
        """Refuses, before anything is allocated, parameters that could not fit in memory."""
        from ..models import _check_parameter_count

        gh, H, D = GATES[self._cell] * self.hidden_size, self.hidden_size, self._directions
        biases = 2 if self.bias else 0
        first, upper = D * gh * (self.input_size + H + biases), D * gh * (D * H + H + biases)
        _check_parameter_count(first + (self.num_layers - 1) * upper, self._dtype,
                               f"{type(self).__name__}({self.input_size}, {H}, num_layers={self.num_layers}) "
                               f"(layer 0: {first}, each layer above: {upper})")

    # -- parameters --------------------------------------------------------------------------------
    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][: self._directions]

    @property
    def _spec(self) -> StackSpec:
        return StackSpec(self._cell, self.nonlinearity, self.num_layers, self._directions, self.hidden_size)

    @property
    def device(self) -> str:
        return self._be.device

    @property
    def lock(self) -> Any:
        """The re-entrant lock every call holds; hold it (``with layer.lock:``) to keep a forward
        and its backward together when threads share the layer."""
        return self._lock

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        """``layer.weight_ih_l0 = array`` copies in, shape- and dtype-checked (``ValueError`` /
        ``TypeError`` naming the parameter); the live array stays the same object. A parameter name
        the layer does not have raises ``AttributeError``."""
        params = self.__dict__.get("_params", ())
        if name[0] != "_" and name in params:
            self.load_state_dict({**self._params, name: value})
        elif name.startswith(("weight_", "bias_")) and params:
            raise AttributeError(f"{name}: {type(self).__name__} has no such parameter; it has {sorted(params)}")
        else:
            super().__setattr__(name, value)

    def parameters(self) -> dict[str, Any]:
        """The live parameter arrays, named as in torch.nn."""
        return dict(self._params)

    @locked
    def state_dict(self) -> dict[str, Any]:
        """Copies of the parameters, named as in torch.nn."""
        return {k: v.copy() for k, v in self._params.items()}

    @locked
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copies parameters in (e.g. ``{k: v.numpy() for k, v in torch_lstm.state_dict().items()}``);
        all are checked before any is copied. Sources may be this layer's own live arrays in any
        arrangement (e.g. two directions' weights swapped): each is read before any is written."""
        if not isinstance(state, Mapping):
            raise TypeError(f"state_dict: expected a mapping of name to array, got {type(state).__name__}")
        unknown = sorted(set(state) - set(self._params))
        missing = sorted(set(self._params) - set(state))
        if unknown or missing:
            raise ValueError(f"state_dict: unknown names {unknown}, missing names {missing}")
        staged = {}
        for name, current in self._params.items():
            arr = as_device_array(state[name], name, self._dtype, self._be)
            if arr.shape != current.shape:
                raise ValueError(f"{name}: expected shape {tuple(current.shape)}, got {tuple(arr.shape)}")
            staged[name] = arr
        xp = self._be.xp
        staged = {k: v if v is self._params[k] else unaliased(v, self._params.values(), xp)
                  for k, v in staged.items()}
        for name, arr in staged.items():
            if arr is not self._params[name]:
                self._params[name][...] = arr

    # -- forward -------------------------------------------------------------------------------------
    def _state_shape(self, batch: int | None) -> tuple[int, ...]:
        lead = self.num_layers * self._directions
        return (lead, self.hidden_size) if batch is None else (lead, batch, self.hidden_size)

    def _initial(self, value: Any, name: str, batch: int, unbatched: bool) -> Any:
        if value is None:
            return None
        arr = _owned(as_device_array(value, name, self._dtype, self._be), value)
        expected = self._state_shape(None if unbatched else batch)
        if arr.shape != expected:
            raise ValueError(f"{name}: expected shape {expected} (num_layers * num_directions, "
                             f"{'' if unbatched else 'batch, '}hidden_size), got {tuple(arr.shape)}")
        return arr.reshape(self._state_shape(batch))

    def _input(self, x: Any) -> tuple[Any, bool]:
        x = _owned(as_device_array(x, "input", self._dtype, self._be), x)
        if x.ndim == 2:
            x, unbatched = x[:, None, :], True
        elif x.ndim == 3:
            unbatched = False
            if self.batch_first:
                x = self._be.xp.ascontiguousarray(x.transpose(1, 0, 2))
        else:
            raise ValueError(f"input: expected shape (T, B, {self.input_size}) "
                             f"{'batch-first (B, T, ...)' if self.batch_first else ''} or unbatched "
                             f"(T, {self.input_size}), got {tuple(x.shape)}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"input: expected input_size {self.input_size} features in the last axis, "
                             f"got shape {tuple(x.shape)}")
        if x.shape[1] == 0:
            raise ValueError("input: the batch axis must not be empty")
        return x, unbatched

    def _output(self, y: Any, unbatched: bool) -> Any:
        """The caller's copy of the top layer's output (backward keeps the original)."""
        if unbatched:
            return y[:, 0].copy()
        return self._be.xp.ascontiguousarray(y.transpose(1, 0, 2)) if self.batch_first else y.copy()

    @locked
    def _forward(self, x: Any, h0: Any, c0: Any) -> tuple[Any, Any, Any, bool]:
        x, unbatched = self._input(x)
        B = x.shape[1]
        h0 = self._initial(h0, "h0", B, unbatched)
        c0 = self._initial(c0, "c0", B, unbatched) if self._cell == "lstm" else None
        y, h_n, c_n, saved = stack_forward(self._spec, self._be, self._params, x, h0, c0)
        saved["unbatched"] = unbatched
        self._saved = saved
        if unbatched:
            h_n = h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        return self._output(y, unbatched), h_n, c_n, unbatched

    # -- backward ------------------------------------------------------------------------------------
    @locked
    def _backward(self, d_output: Any, dh_n: Any, dc_n: Any) -> tuple[Any, Any, Any]:
        if self._saved is None:
            raise RuntimeError("backward() needs a forward call first (and each forward allows one backward)")
        s = self._saved
        xp, H, D = self._be.xp, self.hidden_size, self._directions
        unbatched = s["unbatched"]
        y_top = s["outputs"][-1]
        T, B = y_top.shape[0], y_top.shape[1]
        expected = (T, D * H) if unbatched else ((B, T, D * H) if self.batch_first else (T, B, D * H))
        dy = as_device_array(d_output, "d_output", self._dtype, self._be)
        if dy.shape != expected:
            raise ValueError(f"d_output: expected shape {expected} (the shape of the output), got {tuple(dy.shape)}")
        dy = dy[:, None, :] if unbatched else (xp.ascontiguousarray(dy.transpose(1, 0, 2)) if self.batch_first else dy)
        dh_n = self._initial(dh_n, "dh_n", B, unbatched)
        dc_n = self._initial(dc_n, "dc_n", B, unbatched) if self._cell == "lstm" else None
        grads = {k: xp.zeros_like(v) for k, v in self._params.items()}
        dy, dh0, dc0 = stack_backward(self._spec, self._be, self._params, s, dy, dh_n, dc_n, grads)
        self.grads = grads
        self._saved = None
        if unbatched:
            return dy[:, 0], dh0[:, 0], None if dc0 is None else dc0[:, 0]
        dx = xp.ascontiguousarray(dy.transpose(1, 0, 2)) if self.batch_first else dy
        return dx, dh0, dc0

    def __repr__(self) -> str:
        extra = f", nonlinearity={self.nonlinearity!r}" if self._cell == "rnn" else ""
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
                f"{extra}, bias={self.bias}, batch_first={self.batch_first}, "
                f"bidirectional={self.bidirectional}, dtype={self._dtype.name!r}, device={self.device!r})")


_DOC = """{title} with PyTorch's equations, parameters and call signature, and an explicit backward.

    Parameters
    ----------
    input_size, hidden_size : int
    num_layers : int
        Stacked layers; layer k > 0 takes the (concatenated) outputs of layer k - 1.
    {extra}bias : bool
    batch_first : bool
        Input and output are (B, T, features) instead of (T, B, features).
    bidirectional : bool
    dtype : {{"float32", "float64"}}
    device : {{"auto", "cpu", "cuda"}}
    seed : int, optional
        Seed of the initialisation, U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) as in PyTorch.

    Parameters are named as in torch.nn (``weight_ih_l0``, ``weight_hh_l0_reverse``, ...) and
    reachable as attributes; assigning one (``layer.weight_ih_l0 = array``) copies in, shape- and
    dtype-checked. After :meth:`backward`, ``layer.grads`` holds their gradients. The layer keeps
    its own copy of what backward needs (the caller's arrays may change in between).
    Thread safety: each call (forward, backward, ``load_state_dict``, ...) holds the layer's lock,
    so calls from several threads take turns; a forward/backward pair is two calls: threads that
    share a layer hold ``layer.lock`` around each pair.
    Shapes: input (T, B, I) (or (B, T, I) with batch_first, or unbatched (T, I)); states
    (num_layers * num_directions, B, H) (or without B).
"""


class _HiddenStateOnly:
    """The call and backward of layers whose only state is h (RNN, GRU)."""

    def __call__(self, input: Any, hx: Any = None) -> tuple[Any, Any]:
        """``output, h_n = layer(input, h0)``: output (T, B, D*H), h_n (L*D, B, H)."""
        out, h_n, _, _ = self._forward(input, hx, None)
        library = array_library(input)
        return like_input(out, library), like_input(h_n, library)

    def backward(self, d_output: Any, dh_n: Any = None) -> tuple[Any, Any]:
        """``dx, dh0 = layer.backward(d_output, dh_n)``; fills ``layer.grads``."""
        dx, dh0, _ = self._backward(d_output, dh_n, None)
        library = array_library(d_output)
        return like_input(dx, library), like_input(dh0, library)


class RNN(_HiddenStateOnly, _RecurrentLayer):
    _cell = "rnn"
    __doc__ = _DOC.format(title="Elman RNN (tanh or relu)", extra="nonlinearity : {'tanh', 'relu'}\n    ") + """
    Examples
    --------
    >>> import numpy as np, rtrl
    >>> rnn = rtrl.nn.RNN(3, 5, device="cpu", seed=0)
    >>> out, h_n = rnn(np.ones((7, 2, 3), dtype=np.float32))
    >>> dx, dh0 = rnn.backward(np.ones_like(out))
    >>> out.shape, h_n.shape, dx.shape, rnn.grads["weight_hh_l0"].shape
    ((7, 2, 5), (1, 2, 5), (7, 2, 3), (5, 5))
    """


class _GatedLayer(_RecurrentLayer):
    """LSTM and GRU take every option but ``nonlinearity``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, *, bias: bool = True,
                 batch_first: bool = False, bidirectional: bool = False, dtype: Any = "float32",
                 device: str = "auto", seed: int | None = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first,
                         bidirectional=bidirectional, dtype=dtype, device=device, seed=seed)


class GRU(_HiddenStateOnly, _GatedLayer):
    _cell = "gru"
    __doc__ = _DOC.format(title="GRU", extra="") + """
    Examples
    --------
    >>> import numpy as np, rtrl
    >>> gru = rtrl.nn.GRU(3, 5, num_layers=2, bidirectional=True, device="cpu", seed=0)
    >>> out, h_n = gru(np.ones((7, 2, 3), dtype=np.float32))
    >>> out.shape, h_n.shape
    ((7, 2, 10), (4, 2, 5))
    """


class LSTM(_GatedLayer):
    _cell = "lstm"
    __doc__ = _DOC.format(title="LSTM", extra="") + """
    Examples
    --------
    >>> import numpy as np, rtrl
    >>> lstm = rtrl.nn.LSTM(3, 5, device="cpu", seed=0)
    >>> out, (h_n, c_n) = lstm(np.ones((7, 2, 3), dtype=np.float32))
    >>> dx, (dh0, dc0) = lstm.backward(np.ones_like(out))
    >>> out.shape, c_n.shape, dc0.shape
    ((7, 2, 5), (1, 2, 5), (1, 2, 5))
    """

    def __call__(self, input: Any, hx: Any = None) -> tuple[Any, tuple[Any, Any]]:
        """``output, (h_n, c_n) = lstm(input, (h0, c0))``."""
        h0, c0 = _pair(hx, "hx")
        out, h_n, c_n, _ = self._forward(input, h0, c0)
        library = array_library(input)
        return like_input(out, library), (like_input(h_n, library), like_input(c_n, library))

    def backward(self, d_output: Any, d_state: Any = None) -> tuple[Any, tuple[Any, Any]]:
        """``dx, (dh0, dc0) = lstm.backward(d_output, (dh_n, dc_n))``; fills ``lstm.grads``."""
        dh_n, dc_n = _pair(d_state, "d_state")
        dx, dh0, dc0 = self._backward(d_output, dh_n, dc_n)
        library = array_library(d_output)
        return like_input(dx, library), (like_input(dh0, library), like_input(dc0, library))


def _owned(arr: Any, original: Any) -> Any:
    """``arr``, copied unless it is a fresh array of its own: the caller's array, or a view of the
    caller's memory (an ndarray subclass such as ``np.memmap`` or a masked array, a tensor seen
    through the array protocols), which backward must not see change."""
    return arr.copy() if arr is original or arr.base is not None else arr


def _pair(value: Any, name: str) -> tuple[Any, Any]:
    if value is None:
        return None, None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name}: expected a pair (h, c) of arrays or None, got {type(value).__name__}")
    return value[0], value[1]
