"""SnAp-1, e-prop and RFLO written with PyTorch tensor ops: a speed reference of ``rtrl bench --only
approximate`` (not a test oracle; the test suite checks it against ``rtrl.SnAp``, ``rtrl.EProp`` and
``rtrl.RFLO``).

One RecurrentNet layer (rnn tanh, lstm or gru; PyTorch's equations) and a linear readout, real-time
Adam, the way one would write it with torch on the CPU: one Python call per step, the traces
``J_h`` (and ``J_c``) of shape (B, G H, W) (row g' = gate g of unit u, columns [x | h | 1 (| 1)]) moved on
by the unit's own recurrent weight (SnAp-1; e-prop drops it) and the immediate term, with the
coefficients of each cell written out. RFLO is e-prop on the leaky rnn (``alpha``) with a random
``feedback`` matrix carrying the error to the units. No autograd is involved.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["TorchSnAp", "adam_step"]

_GATES = {"rnn": 1, "lstm": 4, "gru": 3}


class TorchSnAp:
    """SnAp-1 (``rule="snap1"``) or e-prop (``"eprop"``; RFLO with ``alpha`` and ``feedback``) with
    torch ops, real-time Adam, mse.

    Parameters
    ----------
    cell : "rnn" | "lstm" | "gru"
    params : dict of arrays with RecurrentNet's names (one layer): weight_ih, weight_hh, bias_ih,
        bias_hh, weight_out, bias_out (copied).
    batch : streams B.
    lr, betas, eps : Adam's (torch.optim.Adam's rule); ``lr=None`` accumulates ``grad`` only.
    dtype : "float32" or "float64".
    alpha : the leaky rnn's factor, ``h' = (1 - alpha) h + alpha tanh(...)`` (rnn only).
    feedback : (O, H) array carrying the error to the units in ``weight_out``'s place, or None.
    """

    NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_out", "bias_out")

    def __init__(self, cell: str, params: dict, batch: int = 1, *, rule: str = "snap1",
                 lr: Optional[float] = None, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 dtype: str = "float32", alpha: float = 1.0, feedback: Any = None, torch: Any = None) -> None:
        if torch is None:
            import torch
        if cell not in _GATES or rule not in ("snap1", "eprop"):
            raise ValueError("cell must be 'rnn', 'lstm' or 'gru', rule 'snap1' or 'eprop'")
        if alpha != 1.0 and cell != "rnn":
            raise ValueError("alpha: the leaky cell is the rnn's")
        self.torch, self.cell, self.rule = torch, cell, rule
        self.dtype = getattr(torch, dtype)
        self.p = {k: torch.tensor(params[k], dtype=self.dtype).clone() for k in self.NAMES}
        self.G = _GATES[cell]
        self.H = self.p["weight_hh"].shape[1]
        self.I = self.p["weight_ih"].shape[1]
        self.B = int(batch)
        self.W = self.I + self.H + (2 if cell == "gru" else 1)
        GH = self.G * self.H
        self.h = torch.zeros(self.B, self.H, dtype=self.dtype)
        self.c = torch.zeros(self.B, self.H, dtype=self.dtype)
        self.J_h = torch.zeros(self.B, GH, self.W, dtype=self.dtype)
        self.J_c = torch.zeros(self.B, GH, self.W, dtype=self.dtype) if cell == "lstm" else None
        self.grad = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.t = 0
        self.alpha = float(alpha)
        self.feedback = None if feedback is None else torch.tensor(feedback, dtype=self.dtype)
        self._ones = torch.ones(self.B, 1, dtype=self.dtype)
        self._units = torch.arange(self.H)

    def _diag(self) -> Any:
        """(G, H): unit u's own recurrent weight in gate x (zeros for e-prop)."""
        H, G = self.H, self.G
        w = self.p["weight_hh"].reshape(G, H, H)
        d = w[:, self._units, self._units]
        return d if self.rule == "snap1" else self.torch.zeros_like(d)

    def step(self, x: Any, d: Any = None) -> Any:
        """One step: x (B, I), d (B, O) targets (NaN = none) -> the outputs (B, O)."""
        torch, p, H, G, B, I = self.torch, self.p, self.H, self.G, self.B, self.I
        x = torch.as_tensor(x, dtype=self.dtype)
        h = self.h
        v = torch.cat([x, h, self._ones] + ([self._ones] if self.cell == "gru" else []), dim=1)  # (B, W)
        D = self._diag()                                                   # (G, H)
        gi = x @ p["weight_ih"].T + p["bias_ih"]
        gh = h @ p["weight_hh"].T + p["bias_hh"]
        J = self.J_h.reshape(B, G, H, self.W)
        if self.cell == "rnn":
            a = self.alpha
            f = torch.tanh(gi + gh)
            h_new = f if a == 1.0 else (1 - a) * h + a * f
            k0 = a * (1 - f * f) if a != 1.0 else 1 - f * f                 # (B, H)
            own = k0 * D[0] if a == 1.0 else (1 - a) + k0 * D[0]
            J_new = own[:, None, :, None] * J + k0[:, None, :, None] * v[:, None, None, :]
        elif self.cell == "lstm":
            a = gi + gh
            i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H:2 * H])
            g, o = torch.tanh(a[:, 2 * H:3 * H]), torch.sigmoid(a[:, 3 * H:])
            c_new = f * self.c + i * g
            tc = torch.tanh(c_new)
            h_new = o * tc
            k0, k1, k2 = self.c * f * (1 - f), g * i * (1 - i), i * (1 - g * g)
            k3, k4, k5 = o * (1 - o) * tc, o * (1 - tc * tc), f
            M = k0 * D[1] + k1 * D[0] + k2 * D[2]                           # dc from J_h
            cv = torch.stack([k1, k0, k2, torch.zeros_like(k0)], dim=1)     # dc from v, per gate block
            hv = torch.stack([torch.zeros_like(k3)] * 3 + [k3], dim=1)       # dh from v directly (o rows)
            Jc = self.J_c.reshape(B, G, H, self.W)
            Jc_new = k5[:, None, :, None] * Jc + M[:, None, :, None] * J + cv[..., None] * v[:, None, None, :]
            J_new = (k3 * D[3])[:, None, :, None] * J + hv[..., None] * v[:, None, None, :] + k4[:, None, :, None] * Jc_new
            self.J_c = Jc_new.reshape(B, G * H, self.W)
            self.c = c_new
        else:
            r = torch.sigmoid(gi[:, :H] + gh[:, :H])
            z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            h_new = (1 - z) * n + z * h
            k0, k1 = (h - n) * z * (1 - z), (1 - z) * (1 - n * n)
            k2, k3, k4 = k1 * r, k1 * gh[:, 2 * H:] * r * (1 - r), z
            own = k0 * D[1] + k2 * D[2] + k3 * D[0] + k4
            x_side = torch.zeros(self.W, dtype=torch.bool)
            x_side[:I] = True
            x_side[I + H] = True                                            # w_in and b_in
            n_coef = torch.where(x_side, k1[..., None], k2[..., None])      # (B, H, W)
            cv = torch.stack([k3[..., None].expand(B, H, self.W), k0[..., None].expand(B, H, self.W), n_coef], dim=1)
            J_new = own[:, None, :, None] * J + cv * v[:, None, None, :]
        self.J_h = J_new.reshape(B, G * H, self.W)
        y = h_new @ p["weight_out"].T + p["bias_out"]
        scale = 1.0 / B
        if d is None:
            dy = torch.zeros_like(y)
        else:
            d = torch.as_tensor(d, dtype=self.dtype)
            dy = torch.where(torch.isnan(d), torch.zeros_like(y), y - d) * scale
        delta = dy @ (p["weight_out"] if self.feedback is None else self.feedback)  # (B, H)
        packed = torch.einsum("su,sguc->guc", delta, J_new).reshape(G * H, self.W)
        g = {"weight_ih": packed[:, :I], "weight_hh": packed[:, I:I + H], "bias_ih": packed[:, I + H],
             "bias_hh": packed[:, I + H + 1] if self.cell == "gru" else packed[:, I + H],
             "weight_out": dy.T @ h_new, "bias_out": dy.sum(0)}
        for k in self.NAMES:
            self.grad[k] += g[k]
        if self.lr is not None:
            self._adam(g)
        self.h = h_new
        return y

    def _adam(self, g: dict) -> None:
        self.t += 1
        adam_step(self, g)


def adam_step(learner: Any, g: dict) -> None:
    """torch.optim.Adam's rule on ``learner.p`` with gradients ``g``, moments ``learner.m``, ``learner.v``
    and ``learner.t`` updates so far (this one included)."""
    b1, b2 = learner.betas
    t = learner.t
    for k in learner.NAMES:
        learner.m[k] = b1 * learner.m[k] + (1 - b1) * g[k]
        learner.v[k] = b2 * learner.v[k] + (1 - b2) * g[k] * g[k]
        denom = learner.v[k].sqrt() / (1 - b2 ** t) ** 0.5 + learner.eps
        learner.p[k] = learner.p[k] - learner.lr / (1 - b1 ** t) * learner.m[k] / denom
