"""UORO and KF-RTRL written with PyTorch tensor ops for RecurrentNet's (leaky) rnn: speed references of
``rtrl bench --only approximate`` (not test oracles; the test suite checks them against ``rtrl.UORO`` and
``rtrl.KFRTRL`` given the same seed, so the same random signs).

One layer (tanh, ``alpha``) and a linear readout, real-time Adam, one Python call per step (DESIGN §9),
v = [x | h | 1] the values each weight row multiplies:
- UORO: the state tangent s~ (B, H) moved on by the step's Jacobian, the parameter tangent theta~
  (B, H, W) rescaled and added the signs' immediate term nu^T I_t; the gradient (delta . s~) theta~.
- KF-RTRL: per stream the factors A (H units x H rows) and u (W), J ~ A (x) u; D_t A and the immediate
  term diag(f') (x) v combined with two signs; the gradient (delta^T A) (x) u.
The signs are Philox4x32-10 at (step, stream, element), as the library draws them
(:func:`philox_signs`). No autograd is involved.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .torch_snap import adam_step

__all__ = ["TorchKFRTRL", "TorchUORO", "philox_signs", "philox_words"]

_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)
_M0, _M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)  # the rounds' multipliers
_W0, _W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)  # the key schedule's increments
EPS = 1e-7  # the norms' guard (uoro.hpp)


def philox_words(seed: int, step: int, counters: np.ndarray, streams: np.ndarray) -> np.ndarray:
    """The four 32-bit words of Philox4x32-10 (Salmon et al. 2011) at the counters
    (block, stream, step low, step high) under the key (seed low, seed high): ``counters`` and
    ``streams`` (32-bit values) broadcast to a shape S, the result is S + (4,), uint64 holding 32-bit
    values."""
    c0, c1 = (a.copy() for a in np.broadcast_arrays(np.asarray(counters, dtype=np.uint64),
                                                     np.asarray(streams, dtype=np.uint64)))
    step, seed = np.uint64(step), np.uint64(seed)
    c2, c3 = np.full_like(c0, step & _MASK), np.full_like(c0, step >> _SHIFT)
    k0, k1 = seed & _MASK, seed >> _SHIFT
    for _ in range(10):
        p0, p1 = _M0 * c0, _M1 * c2
        c0, c1, c2, c3 = (p1 >> _SHIFT) ^ c1 ^ k0, p1 & _MASK, (p0 >> _SHIFT) ^ c3 ^ k1, p0 & _MASK
        k0, k1 = (k0 + _W0) & _MASK, (k1 + _W1) & _MASK
    return np.stack([c0, c1, c2, c3], axis=-1)


SIGNS_PER_BLOCK = 128  # one generator call's signs (philox.hpp)


def philox_signs(seed: int, step: int, streams: int, elements: int) -> np.ndarray:
    """(streams, elements) of +-1: element e's sign is bit e mod 32 of word (e / 32) mod 4 of the
    Philox4x32-10 words at the counter (e / 128, stream, step low, step high)."""
    blocks = -(-elements // SIGNS_PER_BLOCK)
    words = philox_words(seed, step, np.arange(blocks)[None, :], np.arange(streams)[:, None])
    element = np.arange(elements)
    word = words[:, element // SIGNS_PER_BLOCK, (element // 32) % 4]  # (streams, elements)
    bit = (word >> (element % 32).astype(np.uint64)) & np.uint64(1)
    return np.where(bit, 1.0, -1.0)


class _TorchRnn:
    """The (leaky) rnn layer, its readout and Adam that both learners share.

    Parameters
    ----------
    params : dict of arrays with RecurrentNet's names (one rnn layer): weight_ih, weight_hh, bias_ih,
        bias_hh, weight_out, bias_out (copied).
    seed : the learner's seed (its signs).
    batch : streams B.
    lr, betas, eps : Adam's (torch.optim.Adam's rule); ``lr=None`` accumulates ``grad`` only.
    alpha : the leaky rnn's factor.
    dtype : "float32" or "float64".
    """

    NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_out", "bias_out")

    def __init__(self, params: dict, seed: int, batch: int = 1, *, lr: Optional[float] = None,
                 betas: tuple = (0.9, 0.999), eps: float = 1e-8, alpha: float = 1.0, dtype: str = "float32",
                 torch: Any = None) -> None:
        if torch is None:
            import torch
        self.torch, self.dtype = torch, getattr(torch, dtype)
        self.p = {k: torch.tensor(params[k], dtype=self.dtype).clone() for k in self.NAMES}
        self.H, self.I = self.p["weight_hh"].shape[1], self.p["weight_ih"].shape[1]
        self.B, self.W, self.seed, self.alpha = int(batch), self.I + self.H + 1, int(seed), float(alpha)
        self.h = torch.zeros(self.B, self.H, dtype=self.dtype)
        self.grad = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.t = 0      # updates
        self.steps = 0  # the signs' step index
        self._ones = torch.ones(self.B, 1, dtype=self.dtype)

    def _signs(self, count: int) -> Any:
        return self.torch.as_tensor(philox_signs(self.seed, self.steps, self.B, count), dtype=self.dtype)

    def step(self, x: Any, d: Any = None) -> Any:
        """One step: x (B, I), d (B, O) targets (NaN = none) -> the outputs (B, O)."""
        torch, p, a = self.torch, self.p, self.alpha
        x = torch.as_tensor(x, dtype=self.dtype)
        h = self.h
        v = torch.cat([x, h, self._ones], dim=1)                              # (B, W)
        f = torch.tanh(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])
        h_new = f if a == 1.0 else (1 - a) * h + a * f
        k0 = 1 - f * f if a == 1.0 else a * (1 - f * f)                       # dh'/d(pre-activation)
        y = h_new @ p["weight_out"].T + p["bias_out"]
        if d is None:
            dy = torch.zeros_like(y)
        else:
            d = torch.as_tensor(d, dtype=self.dtype)
            dy = torch.where(torch.isnan(d), torch.zeros_like(y), y - d) / self.B
        packed = self._packed_gradient(v, k0, dy @ p["weight_out"])           # (H, W)
        I, H = self.I, self.H
        g = {"weight_ih": packed[:, :I], "weight_hh": packed[:, I:I + H], "bias_ih": packed[:, I + H],
             "bias_hh": packed[:, I + H], "weight_out": dy.T @ h_new, "bias_out": dy.sum(0)}
        for k in self.NAMES:
            self.grad[k] += g[k]
        if self.lr is not None:
            self.t += 1
            adam_step(self, g)
        self.h = h_new
        self.steps += 1
        return y

    def _moved(self, tangent: Any, k0: Any, product: Any) -> Any:
        """D_t applied to a tangent whose W_hh product is ``product``: k0 W_hh s (+ (1 - alpha) s)."""
        return k0 * product if self.alpha == 1.0 else (1 - self.alpha) * tangent + k0 * product


class TorchUORO(_TorchRnn):
    """UORO with torch ops on a one-layer (leaky) rnn, real-time Adam, mse (see :class:`_TorchRnn`)."""

    def __init__(self, params: dict, seed: int, batch: int = 1, **kwargs: Any) -> None:
        super().__init__(params, seed, batch, **kwargs)
        self.tilde = self.torch.zeros(self.B, self.H, dtype=self.dtype)                # s~
        self.theta = self.torch.zeros(self.B, self.H, self.W, dtype=self.dtype)        # theta~

    def _packed_gradient(self, v: Any, k0: Any, delta: Any) -> Any:
        torch = self.torch
        moved = self._moved(self.tilde, k0, self.tilde @ self.p["weight_hh"].T)      # D_t s~
        nu = self._signs(self.H)
        A = nu * k0                                                                    # nu^T I_t = A v^T
        fresh = (A * A).sum(1) * (v * v).sum(1)
        old = (self.theta * self.theta).sum((1, 2))
        state = (moved * moved).sum(1)
        rho0 = torch.sqrt((torch.sqrt(old) + EPS) / (torch.sqrt(state) + EPS))
        rho1 = torch.sqrt((torch.sqrt(fresh) + EPS) / (self.H ** 0.5 + EPS))
        self.tilde = rho0[:, None] * moved + rho1[:, None] * nu
        self.theta = self.theta / rho0[:, None, None] + A[:, :, None] * v[:, None, :] / rho1[:, None, None]
        kappa = (delta * self.tilde).sum(1)                                            # delta . s~
        return torch.einsum("s,suc->uc", kappa, self.theta)


class TorchKFRTRL(_TorchRnn):
    """KF-RTRL with torch ops on a one-layer (leaky) rnn, real-time Adam, mse (see :class:`_TorchRnn`)."""

    def __init__(self, params: dict, seed: int, batch: int = 1, **kwargs: Any) -> None:
        super().__init__(params, seed, batch, **kwargs)
        self.A = self.torch.zeros(self.B, self.H, self.H, dtype=self.dtype)  # A[s, unit, row]
        self.u = self.torch.zeros(self.B, self.W, dtype=self.dtype)

    def _packed_gradient(self, v: Any, k0: Any, delta: Any) -> Any:
        torch = self.torch
        DA = self._moved(self.A, k0[:, :, None], torch.matmul(self.p["weight_hh"], self.A))
        da, at = (DA * DA).sum((1, 2)), (k0 * k0).sum(1)   # |D_t A|^2, |A_t|^2 (A_t = diag(k0))
        uu, vv = (self.u * self.u).sum(1), (v * v).sum(1)
        p1 = torch.sqrt((torch.sqrt(da) + EPS) / (torch.sqrt(uu) + EPS))
        p2 = torch.sqrt((torch.sqrt(at) + EPS) / (torch.sqrt(vv) + EPS))
        c = self._signs(2)
        c1, c2 = c[:, 0], c[:, 1]
        self.u = (c1 * p1)[:, None] * self.u + (c2 * p2)[:, None] * v
        self.A = (c1 / p1)[:, None, None] * DA + (c2 / p2)[:, None, None] * torch.diag_embed(k0)
        w = torch.einsum("si,sir->sr", delta, self.A)                     # delta^T A per stream
        return w.T @ self.u
