"""Optimizers. They hold hyper-parameters only; the update runs natively (PyTorch's rules)."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value[()]  # a 0-d array is its scalar, as NumPy's scalars are
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float's range
        raise ValueError(f"{name}: expected a finite number, got an integer of {value.bit_length()} bits") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a finite number {'>=' if allow_zero else '>'} 0, got {value}")
    return value


class Optimizer:
    """The base of :class:`SGD` and :class:`Adam`; not an optimizer itself (a learner given one
    raises ``TypeError``).

    ``lr`` may be changed between calls (``opt.lr = 0.01``, validated like the constructor's
    argument); a learner using the optimizer applies the new rate from its next update and writes it
    into its checkpoints. The other hyper-parameters are read-only: make a new optimizer to change
    them.
    """

    kind = "none"
    _lr = 0.0

    @property
    def lr(self) -> float:
        """The learning rate (a finite number > 0); assignable."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _positive("lr", value)
        self.__dict__["_version"] = self.__dict__.get("_version", 0) + 1

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self)._read_only and name in self.__dict__:
            raise AttributeError(f"{name}: read-only after construction; make a new {type(self).__name__}")
        super().__setattr__(name, value)

    _read_only: tuple[str, ...] = ()

    def native(self, core: Any, max_grad_norm: float | None) -> Any:
        raise TypeError(f"optimizer: expected rtrl.optim.SGD or rtrl.optim.Adam, got {type(self).__name__}")

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent: ``v = momentum * v + g; p -= lr * v`` (``p -= lr * g`` without
    momentum), as ``torch.optim.SGD``.

    Examples
    --------
    >>> import rtrl
    >>> opt = rtrl.optim.SGD(0.1, momentum=0.9)
    """

    kind = "sgd"
    _read_only = ("momentum",)

    def __init__(self, lr: float, momentum: float = 0.0) -> None:
        self.lr = _positive("lr", lr)
        self.momentum = _positive("momentum", momentum, allow_zero=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum: expected a number in [0, 1), got {self.momentum}")

    def native(self, core: Any, max_grad_norm: float | None) -> Any:
        return core.OptimizerConfig("sgd", self.lr, momentum=self.momentum,
                                    max_grad_norm=max_grad_norm or 0.0)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "sgd", "lr": self.lr, "momentum": self.momentum}

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, momentum={self.momentum})"


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction, as ``torch.optim.Adam``.

    Examples
    --------
    >>> import rtrl
    >>> opt = rtrl.optim.Adam(1e-3, betas=(0.9, 0.999))
    """

    kind = "adam"
    _read_only = ("betas", "eps")

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr = _positive("lr", lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair of numbers, got {betas!r}")
        b1, b2 = (_positive("betas", b, allow_zero=True) for b in betas)
        if b1 >= 1 or b2 >= 1:
            raise ValueError(f"betas: expected numbers in [0, 1), got {tuple(betas)}")
        self.betas = (b1, b2)
        self.eps = _positive("eps", eps)

    def native(self, core: Any, max_grad_norm: float | None) -> Any:
        return core.OptimizerConfig("adam", self.lr, beta1=self.betas[0], beta2=self.betas[1],
                                    eps=self.eps, max_grad_norm=max_grad_norm or 0.0)

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "adam", "lr": self.lr, "betas": list(self.betas), "eps": self.eps}

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps})"


def checked(optimizer: Any) -> Optimizer:
    """``optimizer`` when it is an :class:`SGD` or :class:`Adam` (or a subclass), else ``TypeError``."""
    if not isinstance(optimizer, (SGD, Adam)):
        raise TypeError(f"optimizer: expected rtrl.optim.SGD or rtrl.optim.Adam, got {type(optimizer).__name__}")
    return optimizer


def from_state_dict(d: dict[str, Any] | None) -> Optimizer | None:
    if d is None:
        return None
    if d["kind"] == "sgd":
        return SGD(d["lr"], momentum=d["momentum"])
    if d["kind"] == "adam":
        return Adam(d["lr"], betas=tuple(d["betas"]), eps=d["eps"])
    raise ValueError(f"unknown optimizer kind {d['kind']!r}")
