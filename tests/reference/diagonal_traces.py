"""SnAp-1 and e-prop (DESIGN §9) in float64 NumPy, written from the formulas, for checking rtrl.SnAp,
rtrl.EProp and rtrl.RFLO. No rtrl imports.

Per stream, unit u keeps J^u: the sensitivities of its state s_u (h_u, and c_u for the LSTM) to the
parameters of the rows it owns (row r of weight_ih, weight_hh, bias_ih, bias_hh belongs to unit
r mod H): J^u_t = D^uu_t J^u_{t-1} + I^u_t. Here no coefficient is written out: D^uu (unit u's own
block of ds_t/ds_{t-1}) and I^u (ds_t/dtheta of u's rows) are taken by the complex step through the
cell's forward equations. SnAp-1 takes D^uu whole; e-prop only the part that does not pass through
W_hh (the cell is run with the state that W_hh multiplies held fixed). On a stack each layer keeps its
own traces (its input from below taken as given), and its error is the layer above's back-propagated
through the current step: delta^l = (dh^{l+1}/dh^l)^T delta^{l+1}, again by the complex step.

Parameters: a dict with PyTorch's names (``weight_ih_l0`` ..., or without the suffix for one layer)
and ``weight_out``, ``bias_out``.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-30
RECURRENT = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def cell(kind, p, x, h_rec, h_own, c, nonlinearity="tanh", alpha=1.0):
    """One step: h_rec is the state W_hh multiplies, h_own the state the cell keeps directly (the
    leaky term, the GRU's z h, the eLSTM's f h). Returns (h', c') (c' None but for the LSTM)."""
    H = h_own.shape[-1]
    if kind == "rnn":
        a = x @ p["weight_ih"].T + p["bias_ih"] + h_rec @ p["weight_hh"].T + p["bias_hh"]
        f = np.tanh(a) if nonlinearity == "tanh" else np.where(np.real(a) > 0, a, 0.0)
        return (1 - alpha) * h_own + alpha * f, None
    if kind == "lstm":
        a = x @ p["weight_ih"].T + p["bias_ih"] + h_rec @ p["weight_hh"].T + p["bias_hh"]
        i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
        g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c_new = f * c + i * g
        return o * np.tanh(c_new), c_new
    if kind == "gru":
        gi = x @ p["weight_ih"].T + p["bias_ih"]
        gh = h_rec @ p["weight_hh"].T + p["bias_hh"]
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1 - z) * n + z * h_own, None
    if kind == "elstm":
        a = x @ p["weight_ih"].T + p["bias_ih"] + p["bias_hh"] + np.concatenate([h_rec, h_rec], axis=1) * p["weight_hh"]
        z, f = np.tanh(a[:, :H]), sigmoid(a[:, H:])
        return f * h_own + (1 - f) * z, None
    raise ValueError(kind)


def _layer(params, l, layers):
    suffix = "" if layers == 1 else f"_l{l}"
    return {k: np.asarray(params[k + suffix]) for k in RECURRENT}


def _state(h, c):
    """The state's parts stacked: (B, parts, H)."""
    return np.stack([h] if c is None else [h, c], axis=1)


def _imag(h, c):
    return np.imag(_state(h, c)) / EPS


def output_error(y, target, loss, scale):
    """dL/dy of one step for all streams (B, O)."""
    if target is None:
        return np.zeros_like(y)
    if loss == "mse":
        return np.where(np.isnan(target), 0.0, -(np.nan_to_num(target) - y)) * scale
    out = np.zeros_like(y)
    for s in range(y.shape[0]):
        k = int(target[s])
        if k < 0:
            continue
        e = np.exp(y[s] - y[s].max())
        out[s] = e / e.sum()
        out[s, k] -= 1.0
    return out * scale


def step_loss(y, target, loss, scale):
    if target is None:
        return 0.0
    if loss == "mse":
        e = np.where(np.isnan(target), 0.0, np.nan_to_num(target) - y)
        return scale * 0.5 * float(np.sum(e * e))
    total = 0.0
    for s in range(y.shape[0]):
        k = int(target[s])
        if k >= 0:
            top = y[s].max()
            total += top + np.log(np.sum(np.exp(y[s] - top))) - y[s, k]
    return scale * total


def _owner(index, H):
    """The unit that owns entry `index` of a recurrent parameter (its row r: unit r mod H)."""
    return index[0] % H


def realtime_traces(kind, params, X, targets, *, layers=1, rule="snap1", optimizer=None,
                    nonlinearity="tanh", alpha=1.0, loss="mse", reduction="mean", feedback=None):
    """Runs SnAp-1 (rule "snap1"), e-prop ("eprop") or per-layer exact RTRL ("layer": each layer's
    whole state Jacobian, what the stochastic learners estimate on a stack) over X (T, B, I) with targets (T, B, O) (mse,
    NaN = none) or (T, B) classes (cross_entropy, -1 = none). ``optimizer.step(flat, grad)`` is
    applied after every step (real time); without one the weights stay fixed and the gradient is
    summed. ``feedback`` (O, H): e-prop's random matrix in weight_out's place for the top error.
    Returns (outputs (T, B, O), losses (T,), parameters, summed gradient), dicts keyed like params."""
    names = list(params)
    shapes = {k: np.shape(params[k]) for k in names}
    flat = np.concatenate([np.asarray(params[k], dtype=np.float64).ravel() for k in names])
    T, B, _ = X.shape
    scale = 1.0 / B if reduction == "mean" else 1.0
    H = shapes["weight_out"][1]
    lstm = kind == "lstm"

    def unflat(v):
        out, at = {}, 0
        for k in names:
            n = int(np.prod(shapes[k]))
            out[k] = v[at:at + n].reshape(shapes[k])
            at += n
        return out

    h = [np.zeros((B, H)) for _ in range(layers)]
    c = [np.zeros((B, H)) if lstm else None for _ in range(layers)]
    # traces[l][name]: (B, parts, *shape of the parameter): d s_owner / d theta
    parts = 2 if lstm else 1
    traces = [{k: np.zeros((B, parts) + np.shape(_layer(params, l, layers)[k])) for k in RECURRENT}
              for l in range(layers)]
    # rule "layer": full[l][name] (B, parts, H, *shape): d s / d theta of the whole layer
    full = [{k: np.zeros((B, parts, H) + np.shape(_layer(params, l, layers)[k])) for k in RECURRENT}
            for l in range(layers)]
    outputs, losses = [], []
    total = np.zeros_like(flat)
    for t in range(T):
        p = unflat(flat)
        target = None if targets is None else targets[t]
        x, inputs, new = X[t], [], []
        for l in range(layers):
            lp = _layer(p, l, layers)
            inputs.append(x)
            h_new, c_new = cell(kind, lp, x, h[l], h[l], c[l], nonlinearity, alpha)
            new.append((h_new, c_new))
            x = h_new
        y = new[-1][0] @ p["weight_out"].T + p["bias_out"]
        dy = output_error(y, target, loss, scale)
        outputs.append(y)
        losses.append(step_loss(y, target, loss, scale))
        grad = {k: np.zeros(shapes[k]) for k in names}
        grad["weight_out"] = dy.T @ new[-1][0]
        grad["bias_out"] = dy.sum(axis=0)
        deltas = [None] * layers
        deltas[-1] = dy @ (p["weight_out"] if feedback is None else feedback)
        for l in range(layers - 2, -1, -1):  # spatial backprop through layer l + 1's step
            lp = _layer(p, l + 1, layers)
            delta = np.zeros((B, H))
            for k in range(H):
                xi = inputs[l + 1].astype(complex)
                xi[:, k] += 1j * EPS
                hk, _ = cell(kind, lp, xi, h[l + 1], h[l + 1], c[l + 1], nonlinearity, alpha)
                delta[:, k] = np.sum(np.imag(hk) / EPS * deltas[l + 1], axis=1)
            deltas[l] = delta
        for l in range(layers):
            lp = _layer(p, l, layers)
            suffix = "" if layers == 1 else f"_l{l}"
            if rule == "layer":
                _full_layer_step(kind, lp, inputs[l], h[l], c[l], nonlinearity, alpha, full[l], deltas[l],
                                 grad, suffix)
                continue
            # D[s, u]: (parts x parts) unit u's own block, columns d/dh_u (, d/dc_u)
            D = np.zeros((B, H, parts, parts))
            for u in range(H):
                for col in range(parts):
                    hp, cp = h[l].astype(complex), None if c[l] is None else c[l].astype(complex)
                    if col == 0:
                        hp[:, u] += 1j * EPS
                    else:
                        cp[:, u] += 1j * EPS
                    h_rec = hp if rule == "snap1" else h[l].astype(complex)
                    out = _imag(*cell(kind, lp, inputs[l], h_rec, hp, cp, nonlinearity, alpha))
                    D[:, u, :, col] = out[:, :, u]
            for name in RECURRENT:
                J = traces[l][name]
                J_new = np.zeros_like(J)
                for idx in np.ndindex(np.shape(lp[name])):
                    u = _owner(idx, H)
                    pert = {k: v.astype(complex) for k, v in lp.items()}
                    pert[name][idx] += 1j * EPS
                    imm = _imag(*cell(kind, pert, inputs[l], h[l], h[l], c[l], nonlinearity, alpha))[:, :, u]
                    J_new[(slice(None), slice(None)) + idx] = (
                        np.einsum("sab,sb->sa", D[:, u], J[(slice(None), slice(None)) + idx]) + imm)
                    grad[name + suffix][idx] = np.sum(deltas[l][:, u] * J_new[(slice(None), 0) + idx])
                traces[l][name] = J_new
        for l in range(layers):
            h[l], c[l] = new[l]
        g = np.concatenate([grad[k].ravel() for k in names])
        total += g
        if optimizer is not None:
            flat = optimizer.step(flat, g)
    return np.stack(outputs), np.array(losses), unflat(flat), unflat(total)


def _full_layer_step(kind, lp, x, h, c, nonlinearity, alpha, J, delta, grad, suffix):
    """Exact RTRL within one layer (its input taken as given): J <- D J + I with the layer's whole
    state Jacobian D and immediate term I, by the complex step; adds delta^T J(t) to grad."""
    B, H = h.shape
    parts = 1 if c is None else 2
    D = np.zeros((B, parts, H, parts, H))
    for col in range(parts):
        for m in range(H):
            hp, cp = h.astype(complex), None if c is None else c.astype(complex)
            (hp if col == 0 else cp)[:, m] += 1j * EPS
            D[:, :, :, col, m] = _imag(*cell(kind, lp, x, hp, hp, cp, nonlinearity, alpha))
    for name in RECURRENT:
        J_new = np.zeros_like(J[name])
        for idx in np.ndindex(np.shape(lp[name])):
            pert = {k: v.astype(complex) for k, v in lp.items()}
            pert[name][idx] += 1j * EPS
            imm = _imag(*cell(kind, pert, x, h, h, c, nonlinearity, alpha))
            at = (slice(None),) * 3 + idx
            J_new[at] = np.einsum("sabcd,scd->sab", D, J[name][at]) + imm
            grad[name + suffix][idx] = np.sum(delta * J_new[(slice(None), 0, slice(None)) + idx])
        J[name] = J_new


def fully_recurrent_traces(W, X, targets, *, n_outputs, rule="snap1", activation="logistic",
                           teacher_forcing=False, optimizer=None, reduction="mean", bias=True):
    """SnAp-1 / e-prop for the Williams-Zipser network (DESIGN §3.1, §9): z = [x; 1; y],
    y' = f(W z); unit k's trace over its own weight row, p_kj' = f'(s_k) (w_kk p_kj + z_j) for
    SnAp-1, f'(s_k) z_j for e-prop; zero for a forced unit. Returns (outputs (T, B, O), losses (T,),
    final W, summed gradient)."""
    W = np.array(W, dtype=np.float64)
    T, B, m = X.shape
    n, L = W.shape
    scale = 1.0 / B if reduction == "mean" else 1.0
    off = m + int(bias)
    y = np.zeros((B, n))
    P = np.zeros((B, n, L))
    outputs, losses, total = [], [], np.zeros_like(W)
    for t in range(T):
        z = np.concatenate([X[t]] + ([np.ones((B, 1))] if bias else []) + [y], axis=1)
        s = z @ W.T
        y_new = sigmoid(s) if activation == "logistic" else np.tanh(s)
        slope = y_new * (1 - y_new) if activation == "logistic" else 1 - y_new ** 2
        d = np.full((B, n), np.nan)
        if targets is not None:
            d[:, :n_outputs] = targets[t]
        has = ~np.isnan(d)
        e = np.where(has, np.nan_to_num(d) - y_new, 0.0)
        w_kk = np.diag(W[:, off:]) if rule == "snap1" else np.zeros(n)
        P = slope[:, :, None] * (w_kk[None, :, None] * P + z[:, None, :])
        grad = np.einsum("sk,skj->kj", -scale * e, P)
        outputs.append(y_new[:, :n_outputs].copy())
        if teacher_forcing:
            P = np.where(has[:, :, None], 0.0, P)
            y_new = np.where(has, np.nan_to_num(d), y_new)
        losses.append(scale * 0.5 * float(np.sum(e * e)))
        total += grad
        if optimizer is not None:
            W = optimizer.step(W, grad)
        y = y_new
    return np.stack(outputs), np.array(losses), W, total
