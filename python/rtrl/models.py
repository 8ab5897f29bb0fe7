"""Networks whose parameters the learners train."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._arrays import as_device_array, as_flag, resolve_dtype
from ._backend import Backend, backend

ACTIVATIONS = ("logistic", "tanh")
CELLS = {"rnn": 1, "lstm": 4, "gru": 3}  # cell -> number of gates
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
        checked before any is copied; missing or unknown names raise ``ValueError``."""
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
            staged[name] = arr
        for name, arr in staged.items():
            self._params[name][...] = arr

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
        if init_scale is None:
            init_scale = 1.0 / np.sqrt(self.width)
        if not np.isfinite(init_scale) or init_scale < 0:
            raise ValueError(f"init_scale: expected a finite non-negative number, got {init_scale!r}")
        self.init_scale, self.seed = float(init_scale), seed
        self._dtype = resolve_dtype(dtype)
        self._backend = backend(device)
        rng = np.random.default_rng(seed)
        self._init_params({"weight": rng.uniform(-init_scale, init_scale, (self.n_units, self.width))})

    @property
    def weight(self) -> Any:
        """Array ``(n_units, n_inputs + bias + n_units)``, columns ordered [inputs | bias | units]."""
        return self._params["weight"]

    @weight.setter
    def weight(self, value: Any) -> None:
        self.load_parameters({"weight": value})

    def config(self) -> dict[str, Any]:
        return dict(n_units=self.n_units, n_inputs=self.n_inputs, n_outputs=self.n_outputs,
                    activation=self.activation, bias=self.bias, init_scale=self.init_scale,
                    seed=self.seed, dtype=self._dtype.name, device=self.device)


class RecurrentNet(Model):
    """One recurrent layer (PyTorch's RNN, LSTM or GRU equations) and a linear readout
    ``y = weight_out h + bias_out`` — the model ``rtrl.RTRL`` trains exactly online.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    input_size, hidden_size, output_size : int
    nonlinearity : {"tanh", "relu"}
        For ``cell="rnn"``.
    seed : int, optional
        Seed of PyTorch's default initialisation, U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), for
        every parameter (the readout's too, as torch.nn.Linear with hidden_size inputs).
    dtype : {"float32", "float64"}
    device : {"auto", "cpu", "cuda"}

    Parameters are named and shaped as in PyTorch: ``weight_ih`` (G H, I), ``weight_hh`` (G H, H),
    ``bias_ih`` (G H,), ``bias_hh`` (G H,) with gates stacked in PyTorch's order (G = 1, 4, 3), plus
    ``weight_out`` (O, H) and ``bias_out`` (O,).

    Examples
    --------
    >>> import rtrl
    >>> net = rtrl.RecurrentNet("lstm", 3, 8, 2, seed=0, device="cpu")
    >>> net.weight_ih.shape, net.weight_out.shape
    ((32, 3), (2, 8))
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, output_size: int, *,
                 nonlinearity: str = "tanh", seed: int | None = None, dtype: Any = "float32",
                 device: str = "auto") -> None:
        if not isinstance(cell, str) or cell not in CELLS:
            raise ValueError(f"cell: expected one of {tuple(CELLS)}, got {cell!r}")
        if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
            raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("output_size", output_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value}")
        self.cell, self.nonlinearity, self.seed = cell, nonlinearity, seed
        self.input_size, self.hidden_size, self.output_size = int(input_size), int(hidden_size), int(output_size)
        self.gates = CELLS[cell]
        self._dtype = resolve_dtype(dtype)
        self._backend = backend(device)
        rng = np.random.default_rng(seed)
        bound = 1.0 / np.sqrt(self.hidden_size)
        GH, H, I, O = self.gates * self.hidden_size, self.hidden_size, self.input_size, self.output_size
        shapes = {"weight_ih": (GH, I), "weight_hh": (GH, H), "bias_ih": (GH,), "bias_hh": (GH,),
                  "weight_out": (O, H), "bias_out": (O,)}
        self._init_params({k: rng.uniform(-bound, bound, shape) for k, shape in shapes.items()})

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("_params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"RecurrentNet has no attribute {name!r}")

    @property
    def n_inputs(self) -> int:
        return self.input_size

    @property
    def n_outputs(self) -> int:
        return self.output_size

    def config(self) -> dict[str, Any]:
        return dict(cell=self.cell, input_size=self.input_size, hidden_size=self.hidden_size,
                    output_size=self.output_size, nonlinearity=self.nonlinearity, seed=self.seed,
                    dtype=self._dtype.name, device=self.device)

    def __repr__(self) -> str:
        return (f"RecurrentNet({self.cell!r}, {self.input_size}, {self.hidden_size}, {self.output_size}, "
                f"nonlinearity={self.nonlinearity!r}, dtype={self._dtype.name!r}, device={self.device!r})")
