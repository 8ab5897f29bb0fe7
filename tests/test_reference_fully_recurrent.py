"""Self-checks of the float64 NumPy reference for fully recurrent RTRL, and of the NumPy speed baseline
of ``rtrl bench`` (``rtrl.bench.numpy_rtrl.NumpyRTRL``) against it."""

import numpy as np
import pytest
from rtrl.bench.numpy_rtrl import NumpyRTRL

from reference.fully_recurrent import (
    bptt_gradient,
    finite_difference_gradient,
    rtrl,
)

B, N, M, N_OUT, T = 3, 4, 2, 2, 12


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def make_problem(seed: int, bias: bool, activation: str, T: int = T):
    rng = np.random.default_rng(seed)
    L = M + int(bias) + N
    W = rng.normal(0.0, 0.5, size=(N, L))
    X = rng.normal(size=(T, B, M))
    lo = -0.8 if activation == "tanh" else 0.1
    D = rng.uniform(lo, 0.9, size=(T, B, N_OUT))
    D[rng.random(D.shape) < 0.3] = np.nan
    return W, X, D


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("teacher_forcing", [False, True])
@pytest.mark.parametrize("activation", ["logistic", "tanh"])
def test_rtrl_matches_bptt_and_finite_differences(activation, teacher_forcing, reduction, bias):
    W, X, D = make_problem(1, bias, activation)
    opts = dict(n_outputs=N_OUT, activation=activation, bias=bias,
                teacher_forcing=teacher_forcing, reduction=reduction)
    W_before, X_before, D_before = W.copy(), X.copy(), D.copy()

    out = rtrl(W, X, D, **opts)
    loss_bptt, grad_bptt = bptt_gradient(W, X, D, **opts)
    grad_fd = finite_difference_gradient(W, X, D, **opts)

    assert out["outputs"].shape == (T, B, N_OUT)
    assert out["p"].shape == (B, N, N, W.shape[1])
    assert np.linalg.norm(grad_bptt) > 1e-3
    assert rel_err(out["grad"], grad_bptt) <= 1e-10
    assert rel_err(out["grad"], grad_fd) <= 1e-7
    np.testing.assert_allclose(out["loss"], loss_bptt, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(out["weight"], W)
    # inputs are never modified
    np.testing.assert_array_equal(W, W_before)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(D, D_before)


@pytest.mark.parametrize("teacher_forcing", [False, True])
@pytest.mark.parametrize("activation", ["logistic", "tanh"])
def test_numpy_baseline_matches_realtime_rtrl(activation, teacher_forcing):
    W, X, D = make_problem(2, True, activation, T=50)
    lr = 0.2
    ref = rtrl(W, X, D, n_outputs=N_OUT, activation=activation,
               teacher_forcing=teacher_forcing, lr=lr)
    net = NumpyRTRL(W, N_OUT, activation, True, B, lr, teacher_forcing=teacher_forcing)
    outputs = np.stack([net.step(X[t], D[t]) for t in range(len(X))])

    assert not np.allclose(ref["weight"], W)  # learning actually happened
    np.testing.assert_allclose(outputs, ref["outputs"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.weight, ref["weight"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.grad, ref["grad"], rtol=0, atol=1e-12)
    p_ref = ref["p"].transpose(1, 0, 2, 3).reshape(net.P.shape)
    np.testing.assert_allclose(net.P, p_ref, rtol=0, atol=1e-12)


def test_numpy_baseline_float32():
    W, X, D = make_problem(3, True, "logistic", T=20)
    ref = rtrl(W, X, D, n_outputs=N_OUT, lr=0.1)
    net = NumpyRTRL(W.astype(np.float32), N_OUT, "logistic", True, B, 0.1)
    outputs = np.stack([net.step(X[t], D[t]) for t in range(len(X))])
    assert outputs.dtype == np.float32 and net.weight.dtype == np.float32
    np.testing.assert_allclose(outputs, ref["outputs"], atol=1e-5)


def test_teacher_forcing_changes_result_and_zeroes_sensitivities():
    W, X, D = make_problem(4, True, "logistic")
    D[-1] = np.nan
    D[-1, 0, 1] = 0.3  # exactly one forced unit at the last step (stream 0, unit 1)
    free = rtrl(W, X, D, n_outputs=N_OUT)
    forced = rtrl(W, X, D, n_outputs=N_OUT, teacher_forcing=True)

    assert np.abs(free["outputs"] - forced["outputs"]).max() > 1e-3
    # outputs at the first step do not depend on forcing
    np.testing.assert_array_equal(free["outputs"][0], forced["outputs"][0])
    p = forced["p"]
    assert np.all(p[0, 1] == 0.0)
    assert np.abs(p[0, 0]).max() > 0 and np.abs(p[1:, 1]).max() > 0
    assert forced["y"][0, 1] == 0.3
    assert forced["y"][1, 1] == forced["outputs"][-1, 1, 1]
