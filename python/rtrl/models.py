"""Networks whose parameters the learners train."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._arrays import as_device_array, as_flag, resolve_dtype, unaliased
from ._backend import Backend, backend
from ._cells import CELL_INFO, GATES

ACTIVATIONS = ("logistic", "tanh")
CELLS = GATES  # cell -> number of gates, from the core's cell files
NONLINEARITIES = ("tanh", "relu")


class Model:
    """Common behaviour: parameters live in arrays of the model's device (NumPy or CuPy)."""

    _backend: Backend
    _dtype: np.dtype
    _params: dict[str, Any]

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda"``."""
        return self._backend.device

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    def parameters(self) -> dict[str, Any]:
        """The live parameter arrays, keyed by name (changing them changes the model)."""
        return dict(self._params)

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self._params.items()}

    def load_parameters(self, params: Mapping[str, Any]) -> None:
        """Copies ``params`` (arrays keyed like :meth:`parameters`) into the model. Every array is
        checked before any is copied; missing or unknown names raise ``ValueError``. Sources may be
        the model's own live arrays in any arrangement (each is read before any is written)."""
        if not isinstance(params, Mapping):
            raise TypeError(f"params: expected a mapping of name to array, got {type(params).__name__}")
        expected = self.parameter_shapes()
        unknown = sorted(set(params) - set(expected))
        missing = sorted(set(expected) - set(params))
        if unknown or missing:
            raise ValueError(f"params: unknown names {unknown}, missing names {missing}; expected {sorted(expected)}")
        staged = {}
        for name, shape in expected.items():
            arr = as_device_array(params[name], name, self._dtype, self._backend)
            if tuple(arr.shape) != shape:
                raise ValueError(f"{name}: expected shape {shape}, got {tuple(arr.shape)}")
            if not bool(self._backend.xp.isfinite(arr).all()):
                raise ValueError(f"{name}: parameters must be finite")
            staged[name] = unaliased(arr, (self._flat,), self._backend.xp)
        for name, arr in staged.items():
            self._params[name][...] = arr

    def _assign(self, name: str, value: Any) -> None:
        """``model.<name> = value`` for a parameter: copies in, shape-, dtype- and finiteness-checked
        as :meth:`load_parameters` checks it (the live array stays the same object)."""
        shape = tuple(self._params[name].shape)
        arr = as_device_array(value, name, self._dtype, self._backend)
        if tuple(arr.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(arr.shape)}")
        if not bool(self._backend.xp.isfinite(arr).all()):
            raise ValueError(f"{name}: parameters must be finite")
        self._params[name][...] = unaliased(arr, (self._flat,), self._backend.xp)

    def _init_params(self, host_params: dict[str, np.ndarray]) -> None:
        """Puts the parameters, in order, into one flat array (what the native optimizer updates);
        the named parameters are views of it."""
        if len(host_params) == 1:  # a single parameter is its own flat array, in its own shape
            flat = next(iter(host_params.values()))
        else:
            flat = np.concatenate([v.reshape(-1) for v in host_params.values()])
        self._flat = self._backend.xp.asarray(flat, dtype=self._dtype)
        self._shapes = {k: v.shape for k, v in host_params.items()}
        self._params = self._split(self._flat)

    def _split(self, flat: Any) -> dict[str, Any]:
        """Views of an array laid out like ``_flat``, keyed by parameter name."""
        views, start, flat = {}, 0, flat.reshape(-1)
        for name, shape in self._shapes.items():
            size = int(np.prod(shape))
            views[name] = flat[start:start + size].reshape(shape)
            start += size
        return views

    def config(self) -> dict[str, Any]:
        """The constructor arguments (used by checkpoints)."""
        raise NotImplementedError

    def to(self, device: str) -> "Model":
        """A copy of this model on ``device`` (``self`` when it is already there)."""
        be = backend(device)
        if be.device == self.device:
            return self
        clone = type(self)(**{**self.config(), "device": be.device})
        clone.load_parameters({k: self._backend.to_host(v) for k, v in self._params.items()})
        return clone

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k not in ("seed",))
        return f"{type(self).__name__}({args})"


class FullyRecurrent(Model):
    """The fully recurrent network of Williams & Zipser (1989).

    ``n_units`` units see ``z(t) = [x(t); 1; y(t)]`` — the ``n_inputs`` external inputs, a bias line
    and every unit's value — through ``weight`` of shape ``(n_units, n_inputs + bias + n_units)``:
    ``y(t+1) = f(weight @ z(t))``. The first ``n_outputs`` units are the visible ones.

    Parameters
    ----------
    n_units, n_inputs : int
    n_outputs : int, optional
        Number of visible units (default: all).
    activation : {"logistic", "tanh"}
    bias : bool
        Whether z has a bias line (a constant 1).
    init_scale : float, optional
        Initial weights are uniform in ``[-init_scale, init_scale]``; default
        ``1 / sqrt(n_inputs + bias + n_units)``.
    seed : int, optional
        Seed of the initial weights (the same on every device).
    dtype : {"float32", "float64"}
    device : {"auto", "cpu", "cuda"}

    Examples
    --------
    >>> import rtrl
    >>> net = rtrl.FullyRecurrent(4, 2, n_outputs=1, seed=0)
    >>> net.weight.shape
    (4, 7)
    """

    def __init__(self, n_units: int, n_inputs: int, *, n_outputs: int | None = None,
                 activation: str = "logistic", bias: bool = True, init_scale: float | None = None,
                 seed: int | None = None, dtype: Any = "float32", device: str = "auto") -> None:
        for name, value, low in (("n_units", n_units, 1), ("n_inputs", n_inputs, 0)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
            if value < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {value}")
        if n_outputs is None:
            n_outputs = n_units
        if isinstance(n_outputs, bool) or not isinstance(n_outputs, (int, np.integer)) or not 0 <= n_outputs <= n_units:
            raise ValueError(f"n_outputs: expected an integer in [0, n_units={n_units}], got {n_outputs!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {activation!r}")
        self.n_units, self.n_inputs, self.n_outputs = int(n_units), int(n_inputs), int(n_outputs)
        self.activation, self.bias = activation, as_flag(bias, "bias")
        self.width = self.n_inputs + int(self.bias) + self.n_units
        self._dtype = resolve_dtype(dtype)
        _check_parameter_count(self.n_units * self.width, self._dtype,
                               f"FullyRecurrent({self.n_units}, {self.n_inputs})")
        if init_scale is None:
            init_scale = 1.0 / np.sqrt(self.width)
        self.init_scale, self.seed = _checked_init_scale(init_scale, self._dtype), seed
        self._backend = backend(device)
        rng = np.random.default_rng(seed)
        self._init_params({"weight": rng.uniform(-init_scale, init_scale, (self.n_units, self.width))})

    @property
    def weight(self) -> Any:
        """Array ``(n_units, n_inputs + bias + n_units)``, columns ordered [inputs | bias | units]."""
        return self._params["weight"]

    @weight.setter
    def weight(self, value: Any) -> None:
        self._assign("weight", value)

    def config(self) -> dict[str, Any]:
        return dict(n_units=self.n_units, n_inputs=self.n_inputs, n_outputs=self.n_outputs,
                    activation=self.activation, bias=self.bias, init_scale=self.init_scale,
                    seed=self.seed, dtype=self._dtype.name, device=self.device)


class RecurrentNet(Model):
    """A stack of recurrent layers (PyTorch's RNN, LSTM or GRU equations, or the leaky RNN) and a
    linear readout ``y = weight_out h + bias_out`` on the top layer — the model ``rtrl.RTRL`` trains
    exactly online.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru", "elstm"}
        "elstm" (Irie et al. 2023): z = tanh(W_z x + w_z h + b_z), f = sigmoid(W_f x + w_f h + b_f),
        h' = f h + (1 - f) z, an element-wise recurrence: ``weight_ih`` (2 H, I) rows [z | f],
        ``weight_hh`` (2 H,) [w_z | w_f], ``bias_ih``, ``bias_hh`` (2 H,). SnAp-1 on it is exact RTRL.
    input_size, hidden_size, output_size : int
    num_layers : int
        Stacked recurrent layers: layer 0 sees the input, layer l the hidden state of layer l - 1.
    nonlinearity : {"tanh", "relu"}
        For ``cell="rnn"``.
    alpha : float
        For ``cell="rnn"``, 0 < alpha <= 1: the leaky cell h' = (1 - alpha) h + alpha f(...); 1 is
        Elman's cell.
    seed : int, optional
        Seed of PyTorch's default initialisation, U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), for
        every parameter (the readout's too, as torch.nn.Linear with hidden_size inputs).
    dtype : {"float32", "float64"}
    device : {"auto", "cpu", "cuda"}

    Parameters are named and shaped as in PyTorch: ``weight_ih`` (G H, I), ``weight_hh`` (G H, H),
    ``bias_ih`` (G H,), ``bias_hh`` (G H,) with gates stacked in PyTorch's order (G = 1, 4, 3), plus
    ``weight_out`` (O, H) and ``bias_out`` (O,). With ``num_layers > 1`` the recurrent ones carry
    torch's layer suffix, ``weight_ih_l0`` ... ``bias_hh_l{L-1}`` (layer l > 0 has
    ``weight_ih_l{l}`` of shape (G H, H)); with one layer :meth:`load_parameters` also accepts the
    ``_l0`` names. :meth:`from_torch` builds one from a ``torch.nn`` module and a readout.

    Examples
    --------
    >>> import rtrl
    >>> net = rtrl.RecurrentNet("lstm", 3, 8, 2, seed=0, device="cpu")
    >>> net.weight_ih.shape, net.weight_out.shape
    ((32, 3), (2, 8))
    >>> rtrl.RecurrentNet("gru", 3, 8, 2, num_layers=2, device="cpu").weight_ih_l1.shape
    (24, 8)
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int, *,
                 num_layers: int = 1, nonlinearity: str = "tanh", alpha: float = 1.0,
                 seed: int | None = None, dtype: Any = "float32", device: str = "auto") -> None:
        if not isinstance(cell, str) or cell not in CELLS:
            raise ValueError(f"cell: expected one of {tuple(CELLS)}, got {cell!r}")
        if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("output_size", output_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
            raise TypeError(f"alpha: expected a number in (0, 1], got {type(alpha).__name__}")
        if not 0.0 < float(alpha) <= 1.0:
            raise ValueError(f"alpha: expected a number in (0, 1], got {alpha!r}")
        if float(alpha) != 1.0 and cell != "rnn":
            raise ValueError(f"alpha: the leaky cell is an rnn; cell={cell!r} takes alpha=1 only, got {alpha!r}")
        self.cell, self.nonlinearity, self.seed = cell, nonlinearity, seed
        self.input_size, self.hidden_size, self.output_size = int(input_size), int(hidden_size), int(output_size)
        self.num_layers, self.alpha = int(num_layers), float(alpha)
        self.gates = CELLS[cell]
        self._dtype = resolve_dtype(dtype)
        self._check_memory()
        shapes = self._shapes_of()
        self._backend = backend(device)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.hidden_size)
        self._init_params({k: rng.uniform(-bound, bound, shape) for k, shape in shapes.items()})

    def _check_memory(self) -> None:
        """Refuses, before any per-layer structure is built, parameters that could not fit in memory,
        naming each layer's part."""
        GH, H, O = self.gates * self.hidden_size, self.hidden_size, self.output_size
        R = self._recurrent_columns()
        first, upper, readout = GH * (self.input_size + R + 2), GH * (H + R + 2), O * (H + 1)
        parts = f"layer 0: {first}"
        if self.num_layers > 1:
            parts += f", layers 1..{self.num_layers - 1}: {upper} each"
        _check_parameter_count(first + (self.num_layers - 1) * upper + readout, self._dtype,
                               f"RecurrentNet({self.cell!r}, {self.input_size}, {H}, {O}, "
                               f"num_layers={self.num_layers}) ({parts}, readout: {readout})")

    def _recurrent_columns(self) -> int:
        """weight_hh's columns: hidden_size, or 1 for the eLSTM's element-wise recurrence (a vector)."""
        return 1 if CELL_INFO[self.cell]["elementwise"] else self.hidden_size

    def _shapes_of(self) -> dict[str, tuple[int, ...]]:
        """Parameter names and shapes, in the order of the flat vector (layer by layer, then the
        readout; the core's layout, cell_rtrl.hpp)."""
        GH, H, O = self.gates * self.hidden_size, self.hidden_size, self.output_size
        shapes: dict[str, tuple[int, ...]] = {}
        for l in range(self.num_layers):
            suffix = self._suffix(l)
            inputs = self.input_size if l == 0 else H
            hh = (GH,) if CELL_INFO[self.cell]["elementwise"] else (GH, H)
            shapes.update({f"weight_ih{suffix}": (GH, inputs), f"weight_hh{suffix}": hh,
                           f"bias_ih{suffix}": (GH,), f"bias_hh{suffix}": (GH,)})
        shapes.update({"weight_out": (O, H), "bias_out": (O,)})
        return shapes

    def _suffix(self, layer: int) -> str:
        return "" if self.num_layers == 1 else f"_l{layer}"

    def load_parameters(self, params: Mapping[str, Any]) -> None:
        """Copies ``params`` (arrays keyed like :meth:`parameters`; with one layer the ``_l0``
        names are accepted too) into the model. Every array is checked before any is copied."""
        if self.num_layers == 1 and isinstance(params, Mapping):
            renamed = {}
            for name, value in params.items():
                base = name[:-3] if isinstance(name, str) and name.endswith("_l0") else name
                if base in renamed:
                    raise ValueError(f"params: {base!r} given twice (as {base!r} and {base + '_l0'!r})")
                renamed[base] = value
            params = renamed
        super().load_parameters(params)

    @classmethod
    def from_torch(cls, recurrent: Any, readout: Any, *, dtype: Any = None,
                   device: str = "auto") -> "RecurrentNet":
        """A RecurrentNet with the parameters of a ``torch.nn.RNN/LSTM/GRU`` (any ``num_layers``,
        unidirectional, with biases, no projection) and a ``torch.nn.Linear`` readout.

        ``dtype`` defaults to the torch module's (float32 or float64).

        Examples
        --------
        >>> import torch, rtrl
        >>> lstm, linear = torch.nn.LSTM(3, 8, num_layers=2), torch.nn.Linear(8, 2)
        >>> net = rtrl.RecurrentNet.from_torch(lstm, linear, device="cpu")
        >>> net.num_layers, net.weight_hh_l1.shape
        (2, (32, 8))
        """
        import torch

        kinds = {torch.nn.RNN: "rnn", torch.nn.LSTM: "lstm", torch.nn.GRU: "gru"}
        cell = next((v for k, v in kinds.items() if type(recurrent) is k), None)
        if cell is None:
            raise TypeError(f"recurrent: expected a torch.nn.RNN, LSTM or GRU, got {type(recurrent).__name__}")
        if not isinstance(readout, torch.nn.Linear):
            raise TypeError(f"readout: expected a torch.nn.Linear, got {type(readout).__name__}")
        if recurrent.bidirectional:
            raise ValueError("recurrent: a bidirectional module cannot run online (it reads the future)")
        if getattr(recurrent, "proj_size", 0):
            raise ValueError("recurrent: LSTM with proj_size is not supported")
        if not recurrent.bias or readout.bias is None:
            raise ValueError("recurrent, readout: modules without biases are not supported")
        if readout.in_features != recurrent.hidden_size:
            raise ValueError(f"readout: expected in_features={recurrent.hidden_size} (the hidden size), "
                             f"got {readout.in_features}")
        if dtype is None:
            dtype = str(recurrent.weight_hh_l0.dtype).replace("torch.", "")
        net = cls(cell, recurrent.input_size, recurrent.hidden_size, readout.out_features,
                  num_layers=recurrent.num_layers,
                  nonlinearity=getattr(recurrent, "nonlinearity", "tanh"), dtype=dtype, device=device)
        params = {}
        for l in range(recurrent.num_layers):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                params[f"{kind}{net._suffix(l)}"] = getattr(recurrent, f"{kind}_l{l}").detach().cpu().double().numpy()
        params["weight_out"] = readout.weight.detach().cpu().double().numpy()
        params["bias_out"] = readout.bias.detach().cpu().double().numpy()
        net.load_parameters(params)
        return net

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"RecurrentNet has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        """``net.weight_hh = array`` copies in (shape- and dtype-checked), as ``FullyRecurrent.weight``
        (with one layer, ``weight_hh_l0`` names the same parameter); a parameter name the net does
        not have raises ``AttributeError``."""
        params = self.__dict__.get("_params", ())
        if params and name[0] != "_" and name.endswith("_l0") and name[:-3] in params and self.num_layers == 1:
            name = name[:-3]
        if name in params:
            self._assign(name, value)
        elif name.startswith(("weight_", "bias_")) and params:
            raise AttributeError(f"{name}: RecurrentNet has no such parameter; it has {sorted(params)}")
        else:
            super().__setattr__(name, value)

    @property
    def n_inputs(self) -> int:
        return self.input_size

    @property
    def n_outputs(self) -> int:
        return self.output_size

    def config(self) -> dict[str, Any]:
        return dict(cell=self.cell, input_size=self.input_size, hidden_size=self.hidden_size,
                    output_size=self.output_size, num_layers=self.num_layers,
                    nonlinearity=self.nonlinearity, alpha=self.alpha, seed=self.seed,
                    dtype=self._dtype.name, device=self.device)

    def __repr__(self) -> str:
        extra = "".join([f", num_layers={self.num_layers}" if self.num_layers != 1 else "",
                         f", alpha={self.alpha!r}" if self.alpha != 1.0 else ""])
        return (f"RecurrentNet({self.cell!r}, {self.input_size}, {self.hidden_size}, {self.output_size}{extra}, "
                f"nonlinearity={self.nonlinearity!r}, dtype={self._dtype.name!r}, device={self.device!r})")


def _checked_init_scale(init_scale: Any, dtype: np.dtype) -> float:
    """``init_scale`` as a float whose uniform draw in [-init_scale, init_scale] is finite in
    ``dtype`` (and whose range the float64 generator can span)."""
    if isinstance(init_scale, (bool, np.bool_)) or not isinstance(init_scale, (int, float, np.integer, np.floating)):
        raise TypeError(f"init_scale: expected a number, got {type(init_scale).__name__}")
    try:
        value = float(init_scale)
    except OverflowError:
        value = float("inf")
    limit = min(float(np.finfo(dtype).max), float(np.finfo(np.float64).max) / 2)
    if not np.isfinite(value) or value < 0 or value > limit:
        raise ValueError(f"init_scale: expected a finite number in [0, {limit:.4g}] (weights must be finite in "
                         f"{dtype.name}), got {init_scale!r}")
    return value


def _check_parameter_count(count: int, dtype: np.dtype, what: str) -> None:
    """Refuses, before anything is allocated, parameters that could not fit in memory (their
    float64 initial draw, the flat array of the model's dtype)."""
    from .memory import available_bytes, format_bytes

    need = count * (8 + dtype.itemsize)
    have = available_bytes("cpu")
    if have is not None and need > have:
        raise MemoryError(f"{what}: {count} parameters need {format_bytes(need)} to initialise, "
                          f"more than the {format_bytes(have)} available")
