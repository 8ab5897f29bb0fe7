"""RecurrentNet (DESIGN §3.2-3.3): the forward pass against an independent float64 NumPy reference and
against PyTorch, and the exact RTRL gradient against full BPTT and central finite differences of the
reference's total loss, for every cell, both losses and both reductions — with a non-zero initial state,
several streams and gaps in the targets."""

import numpy as np
import pytest
from conftest import relative_error, to_numpy

import rtrl
from recurrent_net_helpers import CELL_IDS, CELLS, LOSSES, make_net, set_initial_state
from reference.recurrent_net import (GATES, PARAMETER_NAMES, cell_step, finite_difference_gradients,
                                     forward)

I, O, B, T = 3, 3, 3, 8
REDUCTIONS = ["mean", "sum"]
FD_EPS = 1e-5


def make_problem(cell, nonlinearity, H, loss, seed, *, T=T, B=B, weight_scale=0.6):
    """Random parameters (PyTorch layout), inputs, a non-zero initial state (h0, c0) and targets with gaps:
    mse (T, B, O) with NaN (about 30%, plus one stream with no target at a step and one step with no target
    at all); cross_entropy (T, B) integer classes with -1 in the same places."""
    rng = np.random.default_rng(seed)
    GH = GATES[cell] * H
    shapes = {"weight_ih": (GH, I), "weight_hh": (GH, H), "bias_ih": (GH,), "bias_hh": (GH,),
              "weight_out": (O, H), "bias_out": (O,)}
    params = {k: rng.normal(0.0, weight_scale, shape) for k, shape in shapes.items()}
    if cell == "rnn" and nonlinearity == "relu":  # keep the recurrence contractive
        params["weight_hh"] *= 0.5
    X = rng.normal(size=(T, B, I))
    h0 = rng.uniform(-0.8, 0.8, size=(B, H))
    if nonlinearity == "relu":
        h0 = np.abs(h0)  # a reachable state of a relu net
    c0 = rng.normal(0.0, 0.7, size=(B, H)) if cell == "lstm" else None
    gap = rng.random((T, B)) < 0.3
    gap[2, 1] = True  # one stream without a target at step 2
    gap[4, :] = True  # no target at all at step 4
    if loss == "mse":
        targets = rng.normal(0.0, 1.0, size=(T, B, O))
        targets[rng.random((T, B, O)) < 0.2] = np.nan  # single outputs missing
        targets[gap] = np.nan
    else:
        targets = rng.integers(0, O, size=(T, B))
        targets[gap] = -1
        targets[0, 0] = O - 1  # the last class appears
    return params, X, targets, h0, c0


def relu_margin(params, X, h0):
    """Smallest |pre-activation| of a relu RNN over the sequence (finite differences need the kinks far
    away) and the fraction of active units."""
    ref = forward("rnn", params, X, h0=h0, nonlinearity="relu")
    h_prev = np.concatenate([h0[None], ref["hs"][:-1]])
    a = X @ params["weight_ih"].T + params["bias_ih"] + h_prev @ params["weight_hh"].T + params["bias_hh"]
    return np.abs(a).min(), np.mean(a > 0)


# ---------------------------------------------------------------------------------------------
# the NumPy reference itself (so that a mistake there cannot hide behind agreement with the library)


def test_reference_cells_satisfy_pytorch_equations_by_hand():
    """One LSTM/GRU/RNN step for one stream written with scalar loops against the vectorised reference."""
    rng = np.random.default_rng(0)
    H = 2
    x, h, c = rng.normal(size=(1, I)), rng.normal(size=(1, H)), rng.normal(size=(1, H))
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    for cell in ("rnn", "lstm", "gru"):
        G = GATES[cell]
        p = {"weight_ih": rng.normal(size=(G * H, I)), "weight_hh": rng.normal(size=(G * H, H)),
             "bias_ih": rng.normal(size=G * H), "bias_hh": rng.normal(size=G * H)}
        ai = [sum(p["weight_ih"][r, k] * x[0, k] for k in range(I)) + p["bias_ih"][r] for r in range(G * H)]
        ah = [sum(p["weight_hh"][r, k] * h[0, k] for k in range(H)) + p["bias_hh"][r] for r in range(G * H)]
        h_new, c_new = cell_step(cell, p, x, h, c if cell == "lstm" else None)
        for j in range(H):
            if cell == "rnn":
                expected = np.tanh(ai[j] + ah[j])
            elif cell == "lstm":
                i_, f_ = sig(ai[j] + ah[j]), sig(ai[H + j] + ah[H + j])
                g_, o_ = np.tanh(ai[2 * H + j] + ah[2 * H + j]), sig(ai[3 * H + j] + ah[3 * H + j])
                cj = f_ * c[0, j] + i_ * g_
                assert abs(c_new[0, j] - cj) < 1e-14
                expected = o_ * np.tanh(cj)
            else:
                r_, z_ = sig(ai[j] + ah[j]), sig(ai[H + j] + ah[H + j])
                n_ = np.tanh(ai[2 * H + j] + r_ * ah[2 * H + j])
                expected = (1 - z_) * n_ + z_ * h[0, j]
            assert abs(h_new[0, j] - expected) < 1e-14
    eye = {"weight_ih": np.eye(H, I), "weight_hh": np.zeros((H, H)), "bias_ih": np.zeros(H), "bias_hh": np.zeros(H)}
    relu, _ = cell_step("rnn", eye, np.array([[1.5, -2.0, 0.0]]), np.zeros((1, H)), nonlinearity="relu")
    np.testing.assert_array_equal(relu, [[1.5, 0.0]])


def test_reference_losses_by_hand():
    y = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    d = np.array([[0.0, np.nan, 1.5], [np.nan, np.nan, np.nan]])
    from reference.recurrent_net import step_loss
    assert step_loss(y, d, "mse", "sum") == pytest.approx(0.5 * (1.0 + 1.0))
    assert step_loss(y, d, "mse", "mean") == pytest.approx(0.5 * (1.0 + 1.0) / 2)
    cls = np.array([1, -1])
    expected = -np.log(np.exp(2.0) / np.exp(y[0]).sum())
    assert step_loss(y, cls, "cross_entropy", "sum") == pytest.approx(expected, rel=1e-14)
    assert step_loss(y, cls, "cross_entropy", "mean") == pytest.approx(expected / 2, rel=1e-14)


def test_finite_differences_of_a_known_function():
    p = {"a": np.array([[0.3, -1.2]]), "b": np.array([0.7])}
    fn = lambda q: float(np.sum(np.sin(q["a"])) * np.exp(q["b"][0]))  # noqa: E731
    g = finite_difference_gradients(fn, p, eps=FD_EPS)
    assert relative_error(g["a"], np.cos(p["a"]) * np.exp(0.7)) <= 1e-9
    assert relative_error(g["b"], [np.sum(np.sin(p["a"])) * np.exp(0.7)]) <= 1e-9


# ---------------------------------------------------------------------------------------------
# RTRL == BPTT == finite differences; outputs and losses == the reference


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("cell,nonlinearity,H", CELLS, ids=CELL_IDS)
def test_rtrl_equals_bptt_and_finite_differences(device, cell, nonlinearity, H, loss, reduction):
    seed = 100 + 10 * CELLS.index((cell, nonlinearity, H)) + LOSSES.index(loss)
    params, X, targets, h0, c0 = make_problem(cell, nonlinearity, H, loss, seed)
    if nonlinearity == "relu":
        margin, active = relu_margin(params, X, h0)
        assert margin > 100 * FD_EPS, "pick another seed: a relu kink is too close for finite differences"
        assert 0.2 < active < 0.8  # the relu really cuts

    kw = dict(loss=loss, reduction=reduction, batch_size=B)
    rt = rtrl.RTRL(make_net(cell, nonlinearity, H, params, device), update="epoch", **kw)
    bp = rtrl.BPTT(make_net(cell, nonlinearity, H, params, device), **kw)
    set_initial_state(rt, h0, c0)
    set_initial_state(bp, h0, c0)
    res_rt = rt.run(X, targets)
    res_bp = bp.run(X, targets)

    ref = forward(cell, params, X, targets, h0=h0, c0=c0, loss=loss, reduction=reduction,
                  nonlinearity=nonlinearity)
    assert np.all(ref["loss"] >= 0) and ref["loss"][4] == 0 and ref["total"] > 0.1
    for res in (res_rt, res_bp):
        assert to_numpy(res.outputs).shape == (T, B, O) and to_numpy(res.loss).shape == (T,)
        assert relative_error(res.outputs, ref["outputs"]) <= 1e-13
        assert relative_error(res.loss, ref["loss"]) <= 1e-13
    for learner in (rt, bp):  # the state moved on to h(T), c(T)
        assert relative_error(learner.state, ref["h"]) <= 1e-13
        if cell == "lstm":
            assert relative_error(learner.state_dict()["state_c"], ref["c"]) <= 1e-13

    total = lambda p: forward(cell, p, X, targets, h0=h0, c0=c0, loss=loss, reduction=reduction,  # noqa: E731
                              nonlinearity=nonlinearity)["total"]
    fd = finite_difference_gradients(total, params, eps=FD_EPS)
    g_rt, g_bp = rt.gradients(), bp.gradients()
    assert sorted(g_rt) == sorted(g_bp) == sorted(PARAMETER_NAMES)
    for name in PARAMETER_NAMES:
        assert to_numpy(g_rt[name]).shape == params[name].shape
        assert np.linalg.norm(fd[name]) > 1e-3, name  # not trivially zero
        assert relative_error(g_rt[name], g_bp[name]) <= 1e-9, name
        # central differences: truncation ~eps^2 = 1e-10 and rounding ~1e-16 |L| / eps = 1e-11 (relative
        # to gradients of order 1), so 1e-6 leaves a wide margin yet catches any wrong term
        assert relative_error(g_rt[name], fd[name]) <= 1e-6, name
        assert relative_error(g_bp[name], fd[name]) <= 1e-6, name
    # the weights were not touched (no optimizer)
    for name in PARAMETER_NAMES:
        np.testing.assert_array_equal(to_numpy(rt.model.parameters()[name]), params[name])


@pytest.mark.parametrize("cell,nonlinearity,H", CELLS, ids=CELL_IDS)
def test_sum_reduction_is_batch_times_mean(device, cell, nonlinearity, H):
    params, X, targets, h0, c0 = make_problem(cell, nonlinearity, H, "mse", 7)
    grads, losses = {}, {}
    for reduction in REDUCTIONS:
        rt = rtrl.RTRL(make_net(cell, nonlinearity, H, params, device), update="epoch", batch_size=B,
                       reduction=reduction)
        set_initial_state(rt, h0, c0)
        losses[reduction] = to_numpy(rt.run(X, targets).loss)
        grads[reduction] = rt.gradients()
    assert relative_error(losses["sum"], B * losses["mean"]) <= 1e-14
    for name in PARAMETER_NAMES:
        assert relative_error(grads["sum"][name], B * to_numpy(grads["mean"][name])) <= 1e-13


@pytest.mark.parametrize("cell,nonlinearity,H", CELLS, ids=CELL_IDS)
def test_float32_gradient_tracks_float64(device, cell, nonlinearity, H):
    params, X, targets, h0, c0 = make_problem(cell, nonlinearity, H, "mse", 8)
    grads = {}
    for dtype in ("float32", "float64"):
        rt = rtrl.RTRL(make_net(cell, nonlinearity, H, params, device, dtype), update="epoch", batch_size=B)
        set_initial_state(rt, h0, c0)
        rt.run(X, targets)
        grads[dtype] = rt.gradients()
    for name in PARAMETER_NAMES:
        assert to_numpy(grads["float32"][name]).dtype == np.float32
        # float32 rounding ~6e-8 per operation over 8 steps: observed ~1e-7 relative
        assert relative_error(grads["float32"][name], grads["float64"][name]) <= 1e-5, name


# ---------------------------------------------------------------------------------------------
# against PyTorch itself


def _torch_modules(torch, cell, nonlinearity, H, params):
    if cell == "lstm":
        layer = torch.nn.LSTM(I, H)
    elif cell == "gru":
        layer = torch.nn.GRU(I, H)
    else:
        layer = torch.nn.RNN(I, H, nonlinearity=nonlinearity)
    linear = torch.nn.Linear(H, O)
    layer, linear = layer.double(), linear.double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(layer, f"{name}_l0").copy_(torch.from_numpy(params[name]))
        linear.weight.copy_(torch.from_numpy(params["weight_out"]))
        linear.bias.copy_(torch.from_numpy(params["bias_out"]))
    return layer, linear


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("cell,nonlinearity,H", CELLS, ids=CELL_IDS)
def test_forward_and_gradient_match_torch(device, cell, nonlinearity, H, loss):
    torch = pytest.importorskip("torch")
    params, X, targets, h0, c0 = make_problem(cell, nonlinearity, H, loss, 9)
    layer, linear = _torch_modules(torch, cell, nonlinearity, H, params)
    hx = torch.from_numpy(h0)[None]
    if cell == "lstm":
        hx = (hx, torch.from_numpy(c0)[None])
    seq, state = layer(torch.from_numpy(X), hx)
    y = linear(seq)
    if loss == "mse":
        d = torch.from_numpy(targets)
        mask = ~torch.isnan(d)
        total = 0.5 * ((torch.where(mask, d, y) - y) ** 2).sum() / B
    else:
        cls = torch.from_numpy(targets).reshape(-1)
        keep = cls >= 0
        total = torch.nn.functional.cross_entropy(y.reshape(-1, O)[keep], cls[keep], reduction="sum") / B
    total.backward()
    total = total.detach()
    torch_grads = {name: getattr(layer, f"{name}_l0").grad.numpy() for name in
                   ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    torch_grads |= {"weight_out": linear.weight.grad.numpy(), "bias_out": linear.bias.grad.numpy()}

    for make in (lambda net: rtrl.RTRL(net, update="epoch", batch_size=B, loss=loss),
                 lambda net: rtrl.BPTT(net, batch_size=B, loss=loss)):
        learner = make(make_net(cell, nonlinearity, H, params, device))
        set_initial_state(learner, h0, c0)
        res = learner.run(X, targets)
        assert relative_error(res.outputs, y.detach().numpy()) <= 1e-13
        assert float(np.sum(to_numpy(res.loss))) == pytest.approx(total.item(), rel=1e-13)
        h_n = state[0] if cell == "lstm" else state
        assert relative_error(learner.state, h_n[0].detach().numpy()) <= 1e-13
        if cell == "lstm":
            assert relative_error(learner.state_dict()["state_c"], state[1][0].detach().numpy()) <= 1e-13
        for name in PARAMETER_NAMES:
            assert np.linalg.norm(torch_grads[name]) > 1e-3
            assert relative_error(learner.gradients()[name], torch_grads[name]) <= 1e-10, name

    # float32: the same forward within float32 rounding
    learner = rtrl.RTRL(make_net(cell, nonlinearity, H, params, device, "float32"), batch_size=B, loss=loss)
    set_initial_state(learner, h0, c0)
    out32 = to_numpy(learner.run(X, targets).outputs)
    assert out32.dtype == np.float32
    assert np.max(np.abs(out32 - y.detach().numpy())) <= 1e-5
