"""RTRL written with PyTorch tensor ops: a speed reference of ``rtrl bench`` (not a test oracle).

The same algorithm as :class:`rtrl.bench.numpy_rtrl.NumpyRTRL` (exact RTRL for the fully recurrent
network of Williams & Zipser, 1989, in matrix form), written the way one would with torch on the CPU:
per step one ``W_U @ P`` matrix product for all streams, the immediate term, the ``f'`` scaling, the
contraction with the errors and a real-time SGD update. No autograd is involved. The test suite checks
it against ``rtrl.RTRL`` (``tests/test_bench_references.py``).
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["TorchRTRL"]


class TorchRTRL:
    """Exact RTRL with torch ops (speed reference), real-time SGD.

    Sensitivities ``P`` have shape (n, B, n*L): ``P[k, s, i*L + j]`` is ``p^k_ij`` of stream ``s``.
    Per step::

        z = [x ; 1 ; y],  y = f(z W^T)
        P <- f'(s) * (W_U @ P + E),   E[k, s, (k, j)] = z_j
        g = -scale * sum_{s, k<n_outputs} e_sk P[k, s, :];   W <- W - lr * g

    Parameters
    ----------
    W : (n, L) initial weights (copied), columns [inputs | bias | units].
    n_outputs : visible units (the first ones); default n.
    activation : "logistic" or "tanh".
    bias : constant-1 line after the inputs.
    batch : number of streams B.
    lr : real-time learning rate; None accumulates ``grad`` only.
    reduction : "mean" or "sum" over streams.
    dtype : "float32" or "float64".
    torch : the torch module (imported when None).

    Attributes
    ----------
    weight : (n, L) tensor, current weights.
    grad : (n, L) tensor, sum of the step gradients.
    y : (B, n) tensor, unit values.
    loss : reduced loss of the last step (a 0-d tensor).
    """

    def __init__(self, W: Any, n_outputs: Optional[int] = None, activation: str = "logistic",
                 bias: bool = True, batch: int = 1, lr: Optional[float] = None, *,
                 reduction: str = "mean", dtype: str = "float32", torch: Any = None) -> None:
        if torch is None:
            import torch
        if activation not in ("logistic", "tanh") or reduction not in ("mean", "sum"):
            raise ValueError("activation must be 'logistic' or 'tanh', reduction 'mean' or 'sum'")
        self.torch = torch
        self.dtype = getattr(torch, dtype)
        self.weight = torch.tensor(W, dtype=self.dtype).clone()
        self.n, self.L = self.weight.shape
        self.n_outputs = self.n if n_outputs is None else int(n_outputs)
        self.activation, self.bias, self.batch, self.lr = activation, bool(bias), int(batch), lr
        self.scale = 1.0 / self.batch if reduction == "mean" else 1.0
        self.y = torch.zeros(self.batch, self.n, dtype=self.dtype)
        self.P = torch.zeros(self.n, self.batch, self.n * self.L, dtype=self.dtype)
        self.grad = torch.zeros(self.n, self.L, dtype=self.dtype)
        self.loss = torch.zeros((), dtype=self.dtype)
        self._ones = torch.ones(self.batch, 1, dtype=self.dtype)
        self._diag = torch.arange(self.n)

    def step(self, x: Any, d: Any = None) -> Any:
        """One step.

        Parameters
        ----------
        x : (B, m) inputs (tensor or array).
        d : (B, n_outputs) targets for the returned outputs (NaN = none), or None.

        Returns
        -------
        (B, n_outputs) tensor: the outputs y(t+1).
        """
        torch, n, L, B, n_out = self.torch, self.n, self.L, self.batch, self.n_outputs
        x = torch.as_tensor(x, dtype=self.dtype)
        z = torch.cat([x, self._ones, self.y] if self.bias else [x, self.y], dim=1)    # (B, L)
        s = z @ self.weight.T
        if self.activation == "logistic":
            y = torch.sigmoid(s)
            fprime = y * (1 - y)
        else:
            y = torch.tanh(s)
            fprime = 1 - y * y

        Q = (self.weight[:, L - n:] @ self.P.reshape(n, -1)).reshape(n, B, n, L)
        Q[self._diag, :, self._diag, :] += z                                           # E[k, s, (k, j)]
        Q *= fprime.T[:, :, None, None]
        self.P = Q.reshape(n, B, n * L)

        y_out = y[:, :n_out]
        if d is None:
            e = torch.zeros_like(y_out)
        else:
            d = torch.as_tensor(d, dtype=self.dtype)
            e = torch.where(torch.isnan(d), torch.zeros_like(y_out), d - y_out)
        self.loss = self.scale * 0.5 * (e * e).sum()
        g = torch.tensordot(e.T, self.P[:n_out], dims=([0, 1], [0, 1])).reshape(n, L) * -self.scale
        self.grad += g
        self.y = y
        if self.lr is not None:
            self.weight -= self.lr * g
        return y_out
