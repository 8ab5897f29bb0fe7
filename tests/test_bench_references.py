"""The speed references of ``rtrl bench`` compute what ``rtrl.RTRL`` computes: over 20 real-time SGD
steps in float64, the NumPy, torch-ops and JAX RTRLs end with the same weights and gave the same
outputs as the library (torch and JAX are skipped when not installed)."""

import numpy as np
import pytest

import rtrl
from rtrl.bench.numpy_rtrl import NumpyRTRL

N, M, N_OUT, B, T, LR = 5, 3, 2, 3, 20, 0.5


def _problem():
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, (T, B, M))
    D = rng.uniform(0.1, 0.9, (T, B, N_OUT))
    D[rng.random(D.shape) < 0.25] = np.nan
    return X, D


def _library():
    """Final weights and outputs of rtrl.RTRL on the problem, and the initial weights."""
    X, D = _problem()
    net = rtrl.FullyRecurrent(N, M, n_outputs=N_OUT, seed=3, dtype="float64", device="cpu")
    W0 = np.array(net.weight, copy=True)
    result = rtrl.RTRL(net, lr=LR, batch_size=B).run(X, D)
    return W0, np.array(net.weight), np.asarray(result.outputs)


def _check(weight, outputs, expected_weight, expected_outputs):
    assert not np.allclose(expected_weight, _library()[0])  # the weights did move
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weight, expected_weight, rtol=1e-10, atol=1e-12)


def test_numpy_rtrl_matches_library():
    W0, W_lib, out_lib = _library()
    X, D = _problem()
    ref = NumpyRTRL(W0, N_OUT, "logistic", True, B, LR)
    outputs = np.stack([ref.step(X[t], D[t]) for t in range(T)])
    _check(ref.weight, outputs, W_lib, out_lib)


def test_torch_rtrl_matches_library():
    torch = pytest.importorskip("torch")
    from rtrl.bench.torch_rtrl import TorchRTRL

    W0, W_lib, out_lib = _library()
    X, D = _problem()
    ref = TorchRTRL(W0, N_OUT, "logistic", True, B, LR, dtype="float64", torch=torch)
    outputs = np.stack([ref.step(X[t], D[t]).numpy() for t in range(T)])
    _check(ref.weight.numpy(), outputs, W_lib, out_lib)


def test_jax_rtrl_matches_library():
    jax = pytest.importorskip("jax")
    from rtrl.bench.jax_rtrl import JaxRTRL

    W0, W_lib, out_lib = _library()
    X, D = _problem()
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        ref = JaxRTRL(W0, N_OUT, "logistic", True, B, LR, dtype="float64")
        first, _ = ref.run(X[:7], D[:7])  # two calls: the state carries over between them
        rest, _ = ref.run(X[7:], D[7:])
        outputs = np.concatenate([np.asarray(first), np.asarray(rest)])
        weight = np.asarray(ref.weight)
    finally:
        jax.config.update("jax_enable_x64", previous)
    _check(weight, outputs, W_lib, out_lib)


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_float32_references_run(name):
    """The float32 configuration the benchmark times gives outputs close to the library's."""
    if name == "torch":
        torch = pytest.importorskip("torch")
        from rtrl.bench.torch_rtrl import TorchRTRL as Ref
    else:
        pytest.importorskip("jax")
        from rtrl.bench.jax_rtrl import JaxRTRL as Ref
    W0, W_lib, out_lib = _library()
    X, D = (a.astype(np.float32) for a in _problem())
    ref = Ref(W0.astype(np.float32), N_OUT, "logistic", True, B, LR, dtype="float32")
    if name == "torch":
        outputs = np.stack([ref.step(X[t], D[t]).numpy() for t in range(T)])
    else:
        outputs = np.asarray(ref.run(X, D)[0])
    assert outputs.dtype == np.float32
    np.testing.assert_allclose(outputs, out_lib, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(ref.weight), W_lib, rtol=1e-4, atol=1e-5)
