"""Networks whose parameters the learners train."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._arrays import as_device_array, as_flag, resolve_dtype
from ._backend import Backend, backend

ACTIVATIONS = ("logistic", "tanh")


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
        self._params = {k: self._backend.xp.asarray(v, dtype=self._dtype) for k, v in host_params.items()}

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
