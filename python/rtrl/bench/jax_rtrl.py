"""RTRL compiled with JAX: a speed reference of ``rtrl bench`` (not a test oracle).

The same algorithm as :class:`rtrl.bench.numpy_rtrl.NumpyRTRL` (exact RTRL for the fully recurrent
network of Williams & Zipser, 1989, in matrix form), as one ``jax.jit``-compiled ``jax.lax.scan`` over
the steps with the real-time SGD update inside the scan: the way one writes fast RTRL research code in
JAX. The test suite checks it against ``rtrl.RTRL`` (``tests/test_bench_references.py``).
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["JaxRTRL", "jax_or_none"]


def jax_or_none():
    """``jax`` when it can be imported, else None."""
    try:
        import jax
    except ImportError:
        return None
    return jax


def _make_run(n: int, L: int, n_out: int, activation: str, bias: bool, lr: float, scale: float):
    """The jit-compiled sequence function ``(W, y, P, X, D) -> ((W, y, P), (outputs, loss))``."""
    import jax
    import jax.numpy as jnp

    def step(carry, xd):
        W, y, P = carry                                     # (n, L), (B, n), (n, B, n L)
        x, d = xd                                           # (B, m), (B, n_out)
        B = x.shape[0]
        parts = [x, jnp.ones((B, 1), x.dtype), y] if bias else [x, y]
        z = jnp.concatenate(parts, axis=1)                  # (B, L)
        s = z @ W.T
        if activation == "logistic":
            y_new = jax.nn.sigmoid(s)
            fprime = y_new * (1 - y_new)
        else:
            y_new = jnp.tanh(s)
            fprime = 1 - y_new * y_new
        Q = (W[:, L - n:] @ P.reshape(n, -1)).reshape(n, B, n, L)
        E = jnp.eye(n, dtype=x.dtype)[:, None, :, None] * z[None, :, None, :]  # E[k, s, (k, j)] = z_j
        P = ((Q + E) * fprime.T[:, :, None, None]).reshape(n, B, n * L)
        y_out = y_new[:, :n_out]
        e = jnp.where(jnp.isnan(d), 0, d - y_out)
        loss = scale * 0.5 * jnp.sum(e * e)
        g = -scale * jnp.tensordot(e.T, P[:n_out], axes=([0, 1], [0, 1])).reshape(n, L)
        return (W - lr * g, y_new, P), (y_out, loss)

    def run(W, y, P, X, D):
        return jax.lax.scan(step, (W, y, P), (X, D))

    return jax.jit(run)


class JaxRTRL:
    """Exact RTRL as a jit-compiled ``lax.scan`` with real-time SGD inside (speed reference).

    Parameters
    ----------
    W : (n, L) initial weights (copied), columns [inputs | bias | units].
    n_outputs : visible units (the first ones); default n.
    activation : "logistic" or "tanh".
    bias : constant-1 line after the inputs.
    batch : number of streams B.
    lr : real-time learning rate (0 keeps the weights fixed).
    reduction : "mean" or "sum" over streams.
    dtype : "float32" or "float64" (float64 needs ``jax_enable_x64``).

    Attributes
    ----------
    weight, y, P : the current weights (n, L), unit values (B, n) and sensitivities (n, B, n L),
        as JAX arrays.
    """

    def __init__(self, W: Any, n_outputs: Optional[int] = None, activation: str = "logistic",
                 bias: bool = True, batch: int = 1, lr: Optional[float] = None, *,
                 reduction: str = "mean", dtype: str = "float32") -> None:
        import jax.numpy as jnp

        if activation not in ("logistic", "tanh") or reduction not in ("mean", "sum"):
            raise ValueError("activation must be 'logistic' or 'tanh', reduction 'mean' or 'sum'")
        self.dtype = jnp.dtype(dtype)
        self.weight = jnp.array(W, dtype=self.dtype)
        if self.weight.dtype != self.dtype:
            raise ValueError(f"JAX gave {self.weight.dtype} for {dtype}: enable jax_enable_x64 for float64")
        n, L = self.weight.shape
        self.n, self.L, self.batch = n, L, int(batch)
        n_out = n if n_outputs is None else int(n_outputs)
        scale = 1.0 / self.batch if reduction == "mean" else 1.0
        self.y = jnp.zeros((self.batch, n), self.dtype)
        self.P = jnp.zeros((n, self.batch, n * L), self.dtype)
        self._run = _make_run(n, L, n_out, activation, bias, float(lr or 0.0), scale)

    def run(self, X: Any, D: Any):
        """Runs T steps.

        Parameters
        ----------
        X : (T, B, m) inputs.
        D : (T, B, n_outputs) targets (NaN = none).

        Returns
        -------
        outputs (T, B, n_outputs) and per-step loss (T,), JAX arrays, computed (blocked on).
        """
        import jax.numpy as jnp

        X, D = jnp.asarray(X, self.dtype), jnp.asarray(D, self.dtype)
        (self.weight, self.y, self.P), (outputs, loss) = self._run(self.weight, self.y, self.P, X, D)
        loss.block_until_ready()
        return outputs, loss
