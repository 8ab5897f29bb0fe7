"""Real-time exact RTRL for a stack of RNN (tanh | relu, leaky), LSTM or GRU layers with a linear readout
(DESIGN §10), in float64 NumPy by the complex step: no sensitivity recursion is written out.

For each parameter j a copy of the network carries a complex state h_j = h + i eps dh/dtheta_j: every step
runs the cell with theta + i eps e_j, so Im(h_j) / eps follows exactly the recursion RTRL computes,
dh(t+1)/dtheta = d cell/dh dh(t)/dtheta + d cell/dtheta, with the weights of that step; Im of the step's
loss over eps is dJ(t)/dtheta_j. With eps = 1e-30 no difference is taken, so the derivatives are exact to
rounding. The real part is the network's own trajectory; after each step the optimizer moves theta, and
the carried states keep their derivative parts, as RTRL's sensitivities do in real time.

``total_loss`` is the same network's forward in real arithmetic, for central differences.

Parameters: a dict with PyTorch's names (``weight_ih_l0`` ..., or without the suffix for one layer) and
``weight_out``, ``bias_out``. No rtrl imports.
"""

from __future__ import annotations

import numpy as np

from .recurrent_net import cell_step, readout, step_loss

EPS = 1e-30


def _layer(params, l, layers):
    suffix = "" if layers == 1 else f"_l{l}"
    return {k: params[k + suffix] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


def _step(cell, params, layers, x, h, c, nonlinearity, alpha):
    """One step of the stack; h, c: lists of (B, H) per layer. Returns the top h and the new lists."""
    h, c = list(h), list(c)
    for l in range(layers):
        h_new, c_new = cell_step(cell, _layer(params, l, layers), x, h[l], c[l], nonlinearity)
        h[l] = (1 - alpha) * h[l] + alpha * h_new if cell == "rnn" else h_new
        c[l] = c_new if c_new is not None else c[l]
        x = h[l]
    return x, h, c


def total_loss(cell, params, X, targets, *, layers, nonlinearity="tanh", alpha=1.0, loss="mse",
               reduction="mean"):
    """The summed per-step loss of the stack over X (T, B, I) from a zero state, real arithmetic."""
    B = X.shape[1]
    H = np.shape(params["weight_hh" + ("" if layers == 1 else "_l0")])[1]
    h, c = [np.zeros((B, H))] * layers, [np.zeros((B, H))] * layers
    total = 0.0
    for t in range(X.shape[0]):
        top, h, c = _step(cell, params, layers, X[t], h, c, nonlinearity, alpha)
        total += step_loss(readout(params, top), None if targets is None else targets[t], loss, reduction)
    return float(total)


def realtime_rtrl(cell, params, X, targets, *, layers, optimizer, nonlinearity="tanh", alpha=1.0,
                  loss="mse", reduction="mean"):
    """Runs real-time RTRL over X (T, B, I) with targets (T, B, O) (mse, NaN = none) or (T, B) classes
    (cross_entropy, -1 = none), applying ``optimizer.step(flat, grad)`` after every step.
    Returns (outputs (T, B, O), losses (T,), final parameters as a dict)."""
    names = list(params)
    shapes = {k: np.shape(params[k]) for k in names}
    sizes = [int(np.prod(shapes[k])) for k in names]
    flat = np.concatenate([np.asarray(params[k], dtype=np.float64).ravel() for k in names])
    N = flat.size
    T, B, _ = X.shape
    H = shapes["weight_hh" + ("" if layers == 1 else "_l0")][1]

    def unflat(v):
        out, at = {}, 0
        for k, n in zip(names, sizes):
            out[k] = v[at:at + n].reshape(shapes[k])
            at += n
        return out

    zeros = [np.zeros((B, H), dtype=np.complex128) for _ in range(layers)]
    hs = [list(zeros) for _ in range(N)]
    cs = [list(zeros) for _ in range(N)]
    outputs, losses = np.empty((T, B, readout(unflat(flat), np.zeros((1, H))).shape[1])), np.empty(T)
    for t in range(T):
        grad = np.empty(N)
        for j in range(N):
            theta = flat.astype(np.complex128)
            theta[j] += 1j * EPS
            p = unflat(theta)
            top, hs[j], cs[j] = _step(cell, p, layers, X[t].astype(np.complex128), hs[j], cs[j],
                                      nonlinearity, alpha)
            y = readout(p, top)
            J = step_loss(y, None if targets is None else targets[t], loss, reduction)
            grad[j] = np.imag(J) / EPS
            if j == 0:
                outputs[t], losses[t] = np.real(y), np.real(J)
        flat = optimizer.step(flat, grad)
    return outputs, losses, unflat(flat)
