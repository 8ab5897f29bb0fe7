"""PyTorch's parameter-update rules written out in NumPy (float64), applied to a flat parameter vector:
torch.optim.SGD (momentum, dampening 0, no Nesterov, no weight decay), torch.optim.Adam (no amsgrad, no
weight decay) and torch.nn.utils.clip_grad_norm_ (over all parameters together)."""

from __future__ import annotations

import numpy as np


class NumpySGD:
    """torch.optim.SGD: buf = g at the first step, then buf = momentum * buf + g; p -= lr * buf
    (p -= lr * g without momentum)."""

    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum, self.buf = lr, momentum, None

    def step(self, p, g):
        if self.momentum:
            self.buf = g.copy() if self.buf is None else self.momentum * self.buf + g
            g = self.buf
        return p - self.lr * g


class NumpyAdam:
    """torch.optim.Adam: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2 (zero at the start), step t from 1,
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    def __init__(self, lr, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = self.v = None
        self.t = 0

    def step(self, p, g):
        if self.m is None:
            self.m, self.v = np.zeros_like(p), np.zeros_like(p)
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        step_size = self.lr / (1 - self.b1 ** self.t)
        denom = np.sqrt(self.v) / np.sqrt(1 - self.b2 ** self.t) + self.eps
        return p - step_size * self.m / denom


def clip_like_torch(g, max_norm):
    """torch.nn.utils.clip_grad_norm_: g *= max_norm / (norm + 1e-6) when that factor is below 1.
    Returns (g, whether it was clipped)."""
    factor = max_norm / (np.linalg.norm(g) + 1e-6)
    return (g * factor, True) if factor < 1 else (g, False)
