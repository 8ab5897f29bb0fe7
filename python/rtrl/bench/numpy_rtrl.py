"""NumPy RTRL in matrix form: the speed baseline of ``rtrl bench`` (not a test oracle).

A straightforward vectorised implementation of exact real-time recurrent learning for the fully
recurrent network (Williams & Zipser, 1989), the way one would write it with NumPy alone: one
``W_U @ P`` matrix product per step on the sensitivities, elementwise work around it. It is checked
against the float64 index-formula reference of ``tests/reference/fully_recurrent.py`` by the test
suite, and ``rtrl.bench.fully_recurrent`` times it next to ``rtrl.RTRL``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["NumpyRTRL"]

_ACTIVATIONS = ("logistic", "tanh")
_REDUCTIONS = ("mean", "sum")


def _activate(s: np.ndarray, activation: str) -> np.ndarray:
    """Apply ``f`` elementwise."""
    if activation == "logistic":
        return 1.0 / (1.0 + np.exp(-s))
    return np.tanh(s)


def _derivative(y: np.ndarray, activation: str) -> np.ndarray:
    """``f'(s)`` expressed through ``y = f(s)``."""
    if activation == "logistic":
        return y * (1.0 - y)
    return 1.0 - y * y


class NumpyRTRL:
    """Straightforward vectorised NumPy RTRL in matrix form (speed baseline).

    Sensitivities are kept as ``P`` of shape (n, B, n*L): ``P[k, s, i*L + j]``
    is ``p^k_ij`` for stream ``s``. Per step::

        z = [x ; 1 ; y],  s = z W^T,  y = f(s)
        P <- f'(s) * (W_U @ P + E),   E[k, s, (k, j)] = z_j
        g = -scale * sum_{s,k<n_outputs} e_sk P[k, s, :]
        W <- W - lr * g               (if lr is given)

    Computes in float32 if ``W`` is float32, else float64.

    Parameters
    ----------
    W : (n, L) initial weights (copied).
    n_outputs : visible units (the first ones); default n.
    activation : "logistic" or "tanh".
    bias : constant-1 line after the inputs.
    batch : number of streams B.
    lr : real-time learning rate; None accumulates ``grad`` only.
    reduction : "mean" or "sum" over streams.
    teacher_forcing : replace visible units that have a target by the target in the state
        used at the next step, and zero their sensitivities.

    Attributes
    ----------
    weight : (n, L) current weights.
    grad : (n, L) sum of the step gradients so far.
    y : (B, n) unit values (after forcing).
    P : (n, B, n*L) sensitivities (after forcing).
    loss : reduced loss of the last step.
    """

    def __init__(
        self,
        W: np.ndarray,
        n_outputs: Optional[int] = None,
        activation: str = "logistic",
        bias: bool = True,
        batch: int = 1,
        lr: Optional[float] = None,
        *,
        reduction: str = "mean",
        teacher_forcing: bool = False,
    ) -> None:
        if activation not in _ACTIVATIONS or reduction not in _REDUCTIONS:
            raise ValueError("bad activation or reduction")
        self.dtype = np.float32 if np.asarray(W).dtype == np.float32 else np.float64
        self.weight = np.array(W, dtype=self.dtype)
        self.n, self.L = self.weight.shape
        self.n_outputs = self.n if n_outputs is None else int(n_outputs)
        self.activation = activation
        self.bias = bool(bias)
        self.batch = int(batch)
        self.lr = lr
        self.scale = 1.0 / self.batch if reduction == "mean" else 1.0
        self.teacher_forcing = teacher_forcing
        self.y = np.zeros((self.batch, self.n), dtype=self.dtype)
        self.P = np.zeros((self.n, self.batch, self.n * self.L), dtype=self.dtype)
        self.grad = np.zeros((self.n, self.L), dtype=self.dtype)
        self.loss = 0.0
        self._diag = np.arange(self.n)

    def step(self, x: np.ndarray, d: Optional[np.ndarray] = None) -> np.ndarray:
        """Advance one step.

        Parameters
        ----------
        x : (B, m) inputs.
        d : (B, n_outputs) targets for the returned outputs (NaN = none), or None.

        Returns
        -------
        (B, n_outputs) unforced outputs y(t+1).
        """
        n, L, B, n_out, dt = self.n, self.L, self.batch, self.n_outputs, self.dtype
        x = np.asarray(x, dtype=dt)
        parts = [x, np.ones((B, 1), dtype=dt)] if self.bias else [x]
        z = np.concatenate(parts + [self.y], axis=1)                 # (B, L)

        y = _activate(z @ self.weight.T, self.activation)           # (B, n)
        fprime = _derivative(y, self.activation)

        W_U = self.weight[:, L - n:]
        Q = (W_U @ self.P.reshape(n, -1)).reshape(n, B, n, L)
        Q[self._diag, :, self._diag, :] += z                         # E[k, s, (k, j)] = z_j
        Q *= fprime.T[:, :, None, None]
        self.P = Q.reshape(n, B, n * L)

        y_out = y[:, :n_out].copy()
        if d is None:
            e, mask = np.zeros_like(y_out), np.zeros(y_out.shape, dtype=bool)
        else:
            d = np.asarray(d, dtype=dt)
            mask = ~np.isnan(d)
            e = np.where(mask, d - y_out, 0).astype(dt)
        self.loss = float(self.scale * 0.5 * np.sum(e * e))
        g = np.tensordot(e.T, self.P[:n_out], axes=([0, 1], [0, 1]))
        g = (-self.scale * g).reshape(n, L).astype(dt)
        self.grad += g

        if self.teacher_forcing and d is not None:
            y[:, :n_out] = np.where(mask, d, y_out)
            self.P[:n_out][mask.T] = 0
        self.y = y

        if self.lr is not None:
            self.weight -= self.lr * g
        return y_out
