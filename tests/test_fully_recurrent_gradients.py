"""Gradients of the fully recurrent network (DESIGN §3.1, §3.3) with the weights held fixed.

RTRL in epoch mode, BPTT, the float64 NumPy reference (tests/reference/fully_recurrent.py) and
central finite differences of the reference's total loss must all give the same gradient.
"""

import numpy as np
import pytest
from conftest import relative_error, to_numpy

import rtrl
from reference.fully_recurrent import bptt_gradient, finite_difference_gradient, loss_total, rtrl as ref_rtrl

# n units, m inputs, visible units (< n), streams (> 1), steps
N, M, N_OUT, B, T = 5, 2, 2, 3, 12

# float64 gradients from different algorithms differ only by rounding: ~1e-15 relative per step.
EXACT = 1e-9
# Central differences with eps = 1e-6: truncation error ~ eps^2 |d3L/dw3| ~ 1e-12 and rounding
# ~ 1e-16 |L| / eps ~ 1e-10, both far below 1e-7 of a gradient whose norm is O(0.1..1); a wrong
# term in the gradient would show up at O(1e-2) or more.
FD_EPS, FD_TOL = 1e-6, 1e-7


def make_problem(seed, activation, bias, T=T, B=B):
    """Weights with rich dynamics, random inputs, targets in the activation's range with ~30% NaN."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 0.5, size=(N, M + int(bias) + N))
    X = rng.normal(size=(T, B, M))
    lo = -0.8 if activation == "tanh" else 0.1
    D = rng.uniform(lo, 0.9, size=(T, B, N_OUT))
    D[rng.random(D.shape) < 0.3] = np.nan
    assert np.isnan(D).any() and not np.isnan(D).all()
    return W, X, D


def make_model(W, activation, bias, device, dtype="float64"):
    model = rtrl.FullyRecurrent(N, M, n_outputs=N_OUT, activation=activation, bias=bias,
                                dtype=dtype, device=device, seed=0)
    model.weight = W
    np.testing.assert_array_equal(to_numpy(model.weight), W.astype(dtype))
    return model


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("teacher_forcing", [False, True])
@pytest.mark.parametrize("activation", ["logistic", "tanh"])
def test_rtrl_epoch_gradient_equals_bptt_reference_and_finite_differences(
        device, activation, teacher_forcing, reduction, bias):
    W, X, D = make_problem(10, activation, bias)
    opts = dict(n_outputs=N_OUT, activation=activation, bias=bias,
                teacher_forcing=teacher_forcing, reduction=reduction)

    learner = rtrl.RTRL(make_model(W, activation, bias, device), update="epoch", batch_size=B,
                        teacher_forcing=teacher_forcing, reduction=reduction)
    res = learner.run(X, D)
    g_rtrl = to_numpy(learner.gradients()["weight"])

    bptt = rtrl.BPTT(make_model(W, activation, bias, device), batch_size=B,
                     teacher_forcing=teacher_forcing, reduction=reduction)
    res_bptt = bptt.run(X, D)
    g_bptt = to_numpy(bptt.gradients()["weight"])

    ref = ref_rtrl(W, X, D, **opts)
    ref_loss, ref_grad_bptt = bptt_gradient(W, X, D, **opts)
    g_fd = finite_difference_gradient(W, X, D, eps=FD_EPS, **opts)

    assert g_rtrl.shape == g_bptt.shape == W.shape
    assert np.linalg.norm(ref["grad"]) > 1e-2  # a gradient worth comparing
    assert relative_error(g_rtrl, g_bptt) <= EXACT
    assert relative_error(g_rtrl, ref["grad"]) <= EXACT
    assert relative_error(g_bptt, ref_grad_bptt) <= EXACT
    assert relative_error(g_rtrl, g_fd) <= FD_TOL
    assert relative_error(g_bptt, g_fd) <= FD_TOL

    # outputs and the per-step losses (reduced over streams) are the reference's
    for r in (res, res_bptt):
        assert to_numpy(r.outputs).shape == (T, B, N_OUT)
        assert to_numpy(r.loss).shape == (T,)
        np.testing.assert_allclose(to_numpy(r.outputs), ref["outputs"], rtol=0, atol=1e-13)
        np.testing.assert_allclose(to_numpy(r.loss), ref["loss"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(to_numpy(r.loss), ref_loss, rtol=1e-12, atol=1e-15)
        assert float(np.sum(to_numpy(r.loss))) == pytest.approx(loss_total(W, X, D, **opts), rel=1e-12)
    # the carried state is the reference's final (forced) state; RTRL's sensitivities too
    np.testing.assert_allclose(to_numpy(learner.state), ref["y"], rtol=0, atol=1e-13)
    np.testing.assert_allclose(to_numpy(bptt.state), ref["y"], rtol=0, atol=1e-13)
    assert relative_error(learner.sensitivities, ref["p"]) <= EXACT


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduction_scales_gradient_and_loss_by_batch_size(device, reduction):
    """"sum" over streams is B times "mean" (the loss is a sum over streams either way)."""
    W, X, D = make_problem(11, "logistic", True)
    grads, losses = {}, {}
    for red in ("mean", "sum"):
        learner = rtrl.RTRL(make_model(W, "logistic", True, device), update="epoch", batch_size=B,
                            reduction=red)
        losses[red] = to_numpy(learner.run(X, D).loss)
        grads[red] = to_numpy(learner.gradients()["weight"])
    assert relative_error(grads["sum"], B * grads["mean"]) <= 1e-12
    np.testing.assert_allclose(losses["sum"], B * losses["mean"], rtol=1e-12)


def test_learners_without_optimizer_leave_weights_unchanged(device):
    W, X, D = make_problem(12, "tanh", True)
    learners = [
        rtrl.RTRL(make_model(W, "tanh", True, device), update="epoch", batch_size=B),
        rtrl.RTRL(make_model(W, "tanh", True, device), update="realtime", batch_size=B),
        rtrl.RTRL(make_model(W, "tanh", True, device), update="epoch", batch_size=B,
                  teacher_forcing=True),
        rtrl.BPTT(make_model(W, "tanh", True, device), batch_size=B),
        rtrl.BPTT(make_model(W, "tanh", True, device), truncation=4, batch_size=B),
    ]
    for learner in learners:
        learner.run(X, D)
        learner.step(X[0], D[0])
        np.testing.assert_array_equal(to_numpy(learner.model.weight), W)
        # a gradient was accumulated, just not applied
        assert np.linalg.norm(to_numpy(learner.gradients()["weight"])) > 1e-2


@pytest.mark.parametrize("teacher_forcing", [False, True])
def test_rtrl_epoch_gradient_accumulates_across_runs(device, teacher_forcing):
    """Two runs over the halves of a sequence (no reset) give the gradient of one run over the whole:
    RTRL carries the state and the sensitivities across calls."""
    W, X, D = make_problem(13, "logistic", True, T=14)
    opts = dict(n_outputs=N_OUT, teacher_forcing=teacher_forcing)

    whole = rtrl.RTRL(make_model(W, "logistic", True, device), update="epoch", batch_size=B,
                      teacher_forcing=teacher_forcing)
    res_whole = whole.run(X, D)
    halves = rtrl.RTRL(make_model(W, "logistic", True, device), update="epoch", batch_size=B,
                       teacher_forcing=teacher_forcing)
    cut = 5
    res_a = halves.run(X[:cut], D[:cut])
    g_first = to_numpy(halves.gradients()["weight"])
    res_b = halves.run(X[cut:], D[cut:])
    g_both = to_numpy(halves.gradients()["weight"])

    ref = ref_rtrl(W, X, D, **opts)
    ref_first = ref_rtrl(W, X[:cut], D[:cut], **opts)
    assert relative_error(g_first, ref_first["grad"]) <= EXACT
    assert relative_error(g_both, ref["grad"]) <= EXACT
    assert relative_error(g_both, to_numpy(whole.gradients()["weight"])) <= 1e-12
    # the second call's gradient is not just its own: it added to the first one
    assert relative_error(g_both, g_first) > 1e-3
    outputs = np.concatenate([to_numpy(res_a.outputs), to_numpy(res_b.outputs)])
    np.testing.assert_allclose(outputs, to_numpy(res_whole.outputs), rtol=0, atol=1e-14)
    np.testing.assert_allclose(outputs, ref["outputs"], rtol=0, atol=1e-13)
    assert relative_error(halves.sensitivities, ref["p"]) <= EXACT
    # the gradient of a sequence that does not start at t0 differs from one that does: the carried
    # sensitivities matter (a learner that restarted them would give the reference's second-half
    # gradient with y0 carried instead)
    restarted = ref_rtrl(W, X[cut:], D[cut:], y0=ref_first["y"], **opts)
    assert relative_error(g_both - g_first, restarted["grad"]) > 1e-3

    # zero_grad clears, and the next run accumulates afresh (state and sensitivities still carried)
    halves.zero_grad()
    assert not np.any(to_numpy(halves.gradients()["weight"]))
    np.testing.assert_array_equal(to_numpy(halves.model.weight), W)


@pytest.mark.parametrize("teacher_forcing", [False, True])
@pytest.mark.parametrize("truncation", [1, 4, 13])
def test_truncated_bptt_equals_reference_over_chunks(device, truncation, teacher_forcing):
    """BPTT with truncation k runs chunks of k steps, carrying the state, with no gradient across
    chunk boundaries: its gradient is the sum over chunks of the exact gradient of each chunk from
    the carried state (the reference's RTRL restarted, sensitivities at zero, at every chunk). k = 1
    is the sum of the per-step immediate gradients; k >= T is full BPTT."""
    T_ = 13
    W, X, D = make_problem(14, "tanh", True, T=T_)
    opts = dict(n_outputs=N_OUT, activation="tanh", teacher_forcing=teacher_forcing)

    truncated = rtrl.BPTT(make_model(W, "tanh", True, device), truncation=truncation, batch_size=B,
                          teacher_forcing=teacher_forcing)
    res = truncated.run(X, D)
    g_trunc = to_numpy(truncated.gradients()["weight"])

    full = rtrl.BPTT(make_model(W, "tanh", True, device), batch_size=B, teacher_forcing=teacher_forcing)
    res_full = full.run(X, D)
    g_full = to_numpy(full.gradients()["weight"])

    expected = np.zeros_like(W)
    y = None
    for start in range(0, T_, truncation):
        chunk = ref_rtrl(W, X[start:start + truncation], D[start:start + truncation], y0=y, **opts)
        expected += chunk["grad"]
        y = chunk["y"]
    ref = ref_rtrl(W, X, D, **opts)

    assert relative_error(g_trunc, expected) <= EXACT
    if truncation >= T_:
        assert relative_error(g_trunc, g_full) <= 1e-12
    else:
        # truncation really cut gradient paths
        assert relative_error(g_trunc, g_full) > 1e-3
    assert relative_error(g_full, ref["grad"]) <= EXACT
    # the forward pass does not depend on the truncation
    np.testing.assert_allclose(to_numpy(res.outputs), ref["outputs"], rtol=0, atol=1e-13)
    np.testing.assert_allclose(to_numpy(res.loss), to_numpy(res_full.loss), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(to_numpy(truncated.state), ref["y"], rtol=0, atol=1e-13)
    np.testing.assert_array_equal(to_numpy(truncated.model.weight), W)


def test_truncation_one_is_sum_of_immediate_gradients(device):
    """k = 1 written out: dJ(t)/dW with y(t) held constant is -scale * sum_s (e * f'(s))^T z(t)."""
    W, X, D = make_problem(15, "logistic", True)
    learner = rtrl.BPTT(make_model(W, "logistic", True, device), truncation=1, batch_size=B)
    learner.run(X, D)

    ref = ref_rtrl(W, X, D, n_outputs=N_OUT)
    outputs = ref["outputs"]
    expected = np.zeros_like(W)
    y = np.zeros((B, N))
    for t in range(T):
        z = np.concatenate([X[t], np.ones((B, 1)), y], axis=1)
        y = 1.0 / (1.0 + np.exp(-z @ W.T))
        np.testing.assert_allclose(y[:, :N_OUT], outputs[t], rtol=0, atol=1e-14)
        e = np.zeros((B, N))
        e[:, :N_OUT] = np.where(np.isnan(D[t]), 0.0, D[t] - y[:, :N_OUT])
        expected += -(1.0 / B) * (e * y * (1 - y)).T @ z
    assert relative_error(learner.gradients()["weight"], expected) <= EXACT
