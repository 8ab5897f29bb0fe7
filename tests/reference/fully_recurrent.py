"""Float64 NumPy reference for exact RTRL in a fully recurrent network.

Model (Williams & Zipser, 1989), per stream ``s`` of ``B`` independent streams
sharing one weight matrix::

    z(t)   = [x(t) ; 1 ; y(t)]            length L = m + b + n  (b = 1 if bias)
    s(t)   = W z(t)                       W has shape (n, L)
    y(t+1) = f(s(t))                      f = logistic or tanh

The first ``n_outputs`` units are visible. ``D[t]`` is the desired value of
``y(t+1)`` (NaN = no target). The step loss is ``0.5 * sum_k e_k^2`` per stream,
reduced over streams by mean or sum.

Sensitivities follow the paper's index formula directly::

    p^k_ij(t+1) = f'(s_k(t)) [ sum_{l in U} w_kl p^l_ij(t) + delta_ik z_j(t) ]

stored as a 4-D array ``p[s, k, i, j]``.

Contents
--------
rtrl                        exact RTRL, epoch mode or real-time updates
bptt_gradient               backpropagation through time (independent check)
loss_total                  forward pass, summed loss
finite_difference_gradient  central differences of ``loss_total``
"""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = [
    "rtrl",
    "bptt_gradient",
    "loss_total",
    "finite_difference_gradient",
]

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


def _errors(y_out: np.ndarray, d: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Errors ``e = d - y`` where a target exists, else 0.

    Parameters
    ----------
    y_out : (B, n_outputs) unforced outputs.
    d : (B, n_outputs) targets with NaN for "no target", or None.

    Returns
    -------
    e : (B, n_outputs) errors.
    mask : (B, n_outputs) bool, True where a target exists.
    """
    if d is None:
        return np.zeros_like(y_out), np.zeros(y_out.shape, dtype=bool)
    mask = ~np.isnan(d)
    return np.where(mask, d - y_out, 0.0), mask


def _prepare(
    W: np.ndarray,
    X: np.ndarray,
    D: Optional[np.ndarray],
    n_outputs: Optional[int],
    activation: str,
    bias: bool,
    reduction: str,
    y0: Optional[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], int, int, int, float, np.ndarray]:
    """Validate and copy inputs to float64.

    Returns
    -------
    W, X, D, n_outputs, m, b, scale, y0
    """
    W = np.array(W, dtype=np.float64)
    X = np.array(X, dtype=np.float64)
    if W.ndim != 2 or X.ndim != 3:
        raise ValueError("W must be (n, L) and X must be (T, B, m)")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}")
    n, L = W.shape
    T, B, m = X.shape
    b = 1 if bias else 0
    if L != m + b + n:
        raise ValueError(f"W has {L} columns, expected m + b + n = {m + b + n}")
    n_out = n if n_outputs is None else int(n_outputs)
    if not 0 <= n_out <= n:
        raise ValueError("n_outputs must lie in [0, n]")
    if D is not None:
        D = np.array(D, dtype=np.float64)
        if D.shape != (T, B, n_out):
            raise ValueError(f"D must have shape {(T, B, n_out)}, got {D.shape}")
    if y0 is None:
        y0 = np.zeros((B, n))
    else:
        y0 = np.array(y0, dtype=np.float64)
        if y0.shape != (B, n):
            raise ValueError(f"y0 must have shape {(B, n)}")
    scale = 1.0 / B if reduction == "mean" else 1.0
    return W, X, D, n_out, m, b, scale, y0


def _assemble_z(x: np.ndarray, y: np.ndarray, bias: bool) -> np.ndarray:
    """``z = [x ; 1 ; y]`` per stream, shape (B, L)."""
    parts = [x, np.ones((x.shape[0], 1))] if bias else [x]
    return np.concatenate(parts + [y], axis=1)


def rtrl(
    W: np.ndarray,
    X: np.ndarray,
    D: Optional[np.ndarray] = None,
    *,
    n_outputs: Optional[int] = None,
    activation: str = "logistic",
    bias: bool = True,
    teacher_forcing: bool = False,
    reduction: str = "mean",
    lr: Optional[float] = None,
    y0: Optional[np.ndarray] = None,
) -> dict[str, np.ndarray]:
    """Exact RTRL over a sequence, epoch mode (``lr=None``) or real-time.

    Parameters
    ----------
    W : (n, L) initial weights, columns ordered [inputs, bias, units].
    X : (T, B, m) external inputs.
    D : (T, B, n_outputs) targets for ``y(t+1)``, NaN = none; or None.
    n_outputs : number of visible units (the first ones); default n.
    activation : "logistic" or "tanh".
    bias : whether z contains a constant-1 line after the inputs.
    teacher_forcing : replace visible units that have a target by the target
        in the state used at the next step, and zero their sensitivities.
    reduction : "mean" (1/B) or "sum" over streams.
    lr : if given, ``W -= lr * step_gradient`` after every step.
    y0 : (B, n) initial unit values; default zeros.

    Returns
    -------
    dict with
        "outputs" : (T, B, n_outputs) unforced outputs y(t+1).
        "loss"    : (T,) reduced step losses.
        "grad"    : (n, L) sum of step gradients (each with the weights in
                    force at that step).
        "weight"  : (n, L) final weights.
        "y"       : (B, n) final unit values, after forcing.
        "p"       : (B, n, n, L) final sensitivities p[s, k, i, j], after forcing.
    """
    W, X, D, n_out, m, b, scale, y = _prepare(
        W, X, D, n_outputs, activation, bias, reduction, y0
    )
    n, L = W.shape
    T, B, _ = X.shape
    eye = np.eye(n)

    p = np.zeros((B, n, n, L))
    outputs = np.zeros((T, B, n_out))
    loss = np.zeros(T)
    grad = np.zeros((n, L))

    for t in range(T):
        z = _assemble_z(X[t], y, bias)                      # (B, L)
        s = np.einsum("kj,sj->sk", W, z)                    # (B, n)
        y_new = _activate(s, activation)
        fprime = _derivative(y_new, activation)             # (B, n)

        # p^k_ij(t+1) = f'(s_k) [ sum_l w_kl p^l_ij(t) + delta_ik z_j(t) ]
        W_U = W[:, m + b:]                                  # (n, n)
        recurrent = np.einsum("kl,slij->skij", W_U, p)
        immediate = np.einsum("ik,sj->skij", eye, z)
        p = fprime[:, :, None, None] * (recurrent + immediate)

        y_out = y_new[:, :n_out].copy()
        d = None if D is None else D[t]
        e, mask = _errors(y_out, d)
        outputs[t] = y_out
        loss[t] = scale * 0.5 * np.sum(e * e)

        # dJ/dw_ij = scale * sum_s sum_k (-e_sk) p^k_ij(s, t+1)
        g = scale * np.einsum("sk,skij->ij", -e, p[:, :n_out])
        grad += g

        if teacher_forcing:
            y_new[:, :n_out] = np.where(mask, d if d is not None else 0.0, y_out)
            p[:, :n_out][mask] = 0.0
        y = y_new

        if lr is not None:
            W = W - lr * g

    return {"outputs": outputs, "loss": loss, "grad": grad, "weight": W, "y": y, "p": p}


def _forward(
    W: np.ndarray,
    X: np.ndarray,
    D: Optional[np.ndarray],
    n_out: int,
    activation: str,
    bias: bool,
    teacher_forcing: bool,
    scale: float,
    y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward pass with fixed weights, storing what BPTT needs.

    Returns
    -------
    zs : (T, B, L) network inputs z(t).
    ys : (T, B, n) unforced y(t+1).
    es : (T, B, n_outputs) errors.
    forced : (T, B, n) bool, True where y_k(t+1) was replaced by its target.
    loss : (T,) reduced step losses.
    """
    T, B, _ = X.shape
    n, L = W.shape
    zs = np.zeros((T, B, L))
    ys = np.zeros((T, B, n))
    es = np.zeros((T, B, n_out))
    forced = np.zeros((T, B, n), dtype=bool)
    loss = np.zeros(T)
    for t in range(T):
        zs[t] = _assemble_z(X[t], y, bias)
        ys[t] = _activate(zs[t] @ W.T, activation)
        d = None if D is None else D[t]
        es[t], mask = _errors(ys[t, :, :n_out], d)
        loss[t] = scale * 0.5 * np.sum(es[t] ** 2)
        y = ys[t].copy()
        if teacher_forcing and d is not None:
            forced[t, :, :n_out] = mask
            y[:, :n_out] = np.where(mask, d, y[:, :n_out])
    return zs, ys, es, forced, loss


def bptt_gradient(
    W: np.ndarray,
    X: np.ndarray,
    D: Optional[np.ndarray] = None,
    *,
    n_outputs: Optional[int] = None,
    activation: str = "logistic",
    bias: bool = True,
    teacher_forcing: bool = False,
    reduction: str = "mean",
    y0: Optional[np.ndarray] = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Backpropagation through time of ``sum_t loss[t]`` with fixed weights.

    Forced unit values are constants: no gradient flows through them.
    Parameters as in :func:`rtrl` (no ``lr``).

    Returns
    -------
    loss : (T,) reduced step losses.
    grad : (n, L) gradient of the total loss.
    """
    W, X, D, n_out, m, b, scale, y0 = _prepare(
        W, X, D, n_outputs, activation, bias, reduction, y0
    )
    zs, ys, es, forced, loss = _forward(
        W, X, D, n_out, activation, bias, teacher_forcing, scale, y0
    )
    T, B, _ = X.shape
    n, L = W.shape
    W_U = W[:, m + b:]
    grad = np.zeros((n, L))
    dy_future = np.zeros((B, n))  # dLoss(later steps) / d y(t+1) as used in z(t+1)
    for t in reversed(range(T)):
        dy = np.where(forced[t], 0.0, dy_future)
        dy[:, :n_out] += -scale * es[t]
        delta = _derivative(ys[t], activation) * dy         # dLoss / ds(t), (B, n)
        grad += np.einsum("sk,sj->kj", delta, zs[t])
        dy_future = delta @ W_U                             # dLoss / d y(t)
    return loss, grad


def loss_total(
    W: np.ndarray,
    X: np.ndarray,
    D: Optional[np.ndarray] = None,
    *,
    n_outputs: Optional[int] = None,
    activation: str = "logistic",
    bias: bool = True,
    teacher_forcing: bool = False,
    reduction: str = "mean",
    y0: Optional[np.ndarray] = None,
) -> float:
    """Sum over steps of the reduced step losses, fixed weights (forward only)."""
    W, X, D, n_out, _, _, scale, y0 = _prepare(
        W, X, D, n_outputs, activation, bias, reduction, y0
    )
    loss = _forward(W, X, D, n_out, activation, bias, teacher_forcing, scale, y0)[-1]
    return float(np.sum(loss))


def finite_difference_gradient(
    W: np.ndarray,
    X: np.ndarray,
    D: Optional[np.ndarray] = None,
    *,
    eps: float = 1e-6,
    **options,
) -> np.ndarray:
    """Central-difference gradient of :func:`loss_total` for every weight.

    Returns
    -------
    grad : (n, L)
    """
    W = np.array(W, dtype=np.float64)
    grad = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += eps
        Wm[idx] -= eps
        grad[idx] = (loss_total(Wp, X, D, **options) - loss_total(Wm, X, D, **options)) / (2 * eps)
    return grad
