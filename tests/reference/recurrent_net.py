"""An independent float64 NumPy forward of ``rtrl.RecurrentNet`` (DESIGN §3.2): one PyTorch-style RNN
(tanh | relu), LSTM or GRU layer and a linear readout, written out step by step from PyTorch's equations.
It returns the outputs, the per-step losses and the total loss, and serves finite differences. No rtrl
imports: this is what the library is checked against.

Parameters are a dict with PyTorch's names and layout (gates stacked in rows: LSTM i, f, g, o; GRU r, z, n):
``weight_ih`` (G H, I), ``weight_hh`` (G H, H), ``bias_ih`` (G H,), ``bias_hh`` (G H,), ``weight_out``
(O, H), ``bias_out`` (O,).
"""

from __future__ import annotations

import numpy as np

PARAMETER_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_out", "bias_out")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def cell_step(cell, params, x, h, c=None, nonlinearity="tanh"):
    """One step of the cell for all streams: x (B, I), h (B, H), c (B, H) for LSTM.
    Returns (h', c') (c' is None except for LSTM)."""
    W_ih, W_hh = params["weight_ih"], params["weight_hh"]
    b_ih, b_hh = params["bias_ih"], params["bias_hh"]
    H = h.shape[-1]
    if cell == "rnn":
        a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        if nonlinearity == "tanh":
            return np.tanh(a), None
        if nonlinearity == "relu":
            return np.maximum(a, 0.0), None
        raise ValueError(f"nonlinearity: {nonlinearity!r}")
    if cell == "lstm":
        a = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        i = sigmoid(a[:, 0 * H:1 * H])
        f = sigmoid(a[:, 1 * H:2 * H])
        g = np.tanh(a[:, 2 * H:3 * H])
        o = sigmoid(a[:, 3 * H:4 * H])
        c_new = f * c + i * g
        return o * np.tanh(c_new), c_new
    if cell == "gru":
        gi = x @ W_ih.T + b_ih  # [r | z | n] input sides
        gh = h @ W_hh.T + b_hh  # [r | z | n] hidden sides
        r = sigmoid(gi[:, 0 * H:1 * H] + gh[:, 0 * H:1 * H])
        z = sigmoid(gi[:, 1 * H:2 * H] + gh[:, 1 * H:2 * H])
        n = np.tanh(gi[:, 2 * H:3 * H] + r * gh[:, 2 * H:3 * H])
        return (1.0 - z) * n + z * h, None
    raise ValueError(f"cell: {cell!r}")


def readout(params, h):
    """y = W_out h + b_out for all streams: h (B, H) -> (B, O)."""
    return h @ params["weight_out"].T + params["bias_out"]


def step_loss(y, target, loss="mse", reduction="mean"):
    """The loss of one step, reduced over streams. mse: target (B, O), NaN = no target, J = 1/2 sum e^2;
    cross_entropy: target (B,) integer classes, -1 = no target, J = -log softmax(y)[class]."""
    B = y.shape[0]
    scale = 1.0 / B if reduction == "mean" else 1.0
    if target is None:
        return 0.0
    total = 0.0
    if loss == "mse":
        target = np.asarray(target, dtype=np.float64)
        e = np.where(np.isnan(target), 0.0, target - y)
        total = 0.5 * np.sum(e * e)
    elif loss == "cross_entropy":
        for s in range(B):
            k = int(target[s])
            if k < 0:
                continue
            top = np.max(y[s])
            log_z = top + np.log(np.sum(np.exp(y[s] - top)))
            total += log_z - y[s, k]
    else:
        raise ValueError(f"loss: {loss!r}")
    return scale * total


def forward(cell, params, X, targets=None, *, h0=None, c0=None, loss="mse", reduction="mean",
            nonlinearity="tanh"):
    """Runs the network over X (T, B, I) from h0 (and c0 for LSTM; zeros by default).

    targets: (T, B, O) with NaN gaps (mse) or (T, B) integer classes with -1 gaps (cross_entropy).
    Returns a dict: ``outputs`` (T, B, O), ``loss`` (T,) per-step losses reduced over streams, ``total``
    (their sum), ``h`` and ``c`` the final state, ``hs`` (T, B, H) every h(t)."""
    params = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    X = np.asarray(X, dtype=np.float64)
    T, B, _ = X.shape
    H = params["weight_hh"].shape[1]
    h = np.zeros((B, H)) if h0 is None else np.array(h0, dtype=np.float64)
    c = None
    if cell == "lstm":
        c = np.zeros((B, H)) if c0 is None else np.array(c0, dtype=np.float64)
    outputs, losses, hs = [], [], []
    for t in range(T):
        h, c = cell_step(cell, params, X[t], h, c, nonlinearity)
        y = readout(params, h)
        outputs.append(y)
        hs.append(h)
        losses.append(step_loss(y, None if targets is None else targets[t], loss, reduction))
    losses = np.array(losses, dtype=np.float64)
    return {"outputs": np.stack(outputs), "loss": losses, "total": float(np.sum(losses)), "h": h, "c": c,
            "hs": np.stack(hs)}


def finite_difference_gradients(total_loss, params, eps=1e-5):
    """Central differences of ``total_loss(params) -> float`` with respect to every entry of every
    parameter: dict of arrays shaped like ``params``. Truncation error O(eps^2 f'''), rounding error
    O(1e-16 |f| / eps)."""
    base = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
    grads = {}
    for name, value in base.items():
        g = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            old = value[idx]
            value[idx] = old + eps
            plus = total_loss(base)
            value[idx] = old - eps
            minus = total_loss(base)
            value[idx] = old
            g[idx] = (plus - minus) / (2 * eps)
        grads[name] = g
    return grads
