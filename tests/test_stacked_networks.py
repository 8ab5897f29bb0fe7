"""Stacked RecurrentNet layers (DESIGN §10) and the leaky rnn: exact RTRL and BPTT (full and
truncated) against torch autograd of the same loss (float64), and the stacked model's construction
and validation."""

import numpy as np
import pytest

import rtrl

torch = pytest.importorskip("torch")


def _torch_loss_grad(net, X, Y, loss="mse", truncation=None):
    """d/dtheta of the summed per-step loss, mean over the B streams, written from DESIGN §3.2/§10:
    mse 1/2 ||y_t - d_t||^2 (NaN: no target) or cross-entropy of class d_t (-1: none). With a
    truncation the state is cut from the graph every that many steps."""
    dt = torch.float64
    p = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in net.parameters().items()}
    L, H = net.num_layers, net.hidden_size
    T, B, _ = X.shape
    name = (lambda k, l: k) if L == 1 else (lambda k, l: f"{k}_l{l}")
    h = [torch.zeros(B, H, dtype=dt) for _ in range(L)]
    c = [torch.zeros(B, H, dtype=dt) for _ in range(L)]
    total = 0
    for t in range(T):
        if truncation and t % truncation == 0:
            h, c = [v.detach() for v in h], [v.detach() for v in c]
        inp = torch.tensor(X[t])
        for l in range(L):
            wi, wh, bi, bh = (p[name(k, l)] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            gi, gh = inp @ wi.T + bi, h[l] @ wh.T + bh
            if net.cell == "rnn":
                f = torch.tanh(gi + gh) if net.nonlinearity == "tanh" else torch.relu(gi + gh)
                h[l] = (1 - net.alpha) * h[l] + net.alpha * f
            elif net.cell == "lstm":
                i, ff, gg, o = (gi + gh).chunk(4, 1)
                c[l] = torch.sigmoid(ff) * c[l] + torch.sigmoid(i) * torch.tanh(gg)
                h[l] = torch.sigmoid(o) * torch.tanh(c[l])
            else:
                r = torch.sigmoid(gi[:, :H] + gh[:, :H])
                z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
                n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
                h[l] = (1 - z) * n + z * h[l]
            inp = h[l]
        y = inp @ p["weight_out"].T + p["bias_out"]
        if loss == "mse":
            d = torch.tensor(Y[t])
            total = total + 0.5 * ((torch.where(torch.isnan(d), y, d) - y) ** 2).sum() / B
        else:
            has = torch.tensor(Y[t] >= 0)
            ce = torch.nn.functional.cross_entropy(y, torch.tensor(np.maximum(Y[t], 0)), reduction="none")
            total = total + torch.where(has, ce, torch.zeros_like(ce)).sum() / B
    total.backward()
    return {k: v.grad.numpy() for k, v in p.items()}


@pytest.mark.parametrize("cell,nonlinearity,alpha", [("rnn", "tanh", 1.0), ("rnn", "relu", 1.0),
                                                     ("rnn", "tanh", 0.3), ("lstm", "tanh", 1.0),
                                                     ("gru", "tanh", 1.0)])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_stacked_rtrl_gradient_equals_torch_bptt(cell, nonlinearity, alpha, layers):
    rng = np.random.default_rng(layers)
    net = rtrl.RecurrentNet(cell, 3, 4, 2, num_layers=layers, nonlinearity=nonlinearity, alpha=alpha,
                            seed=5, dtype="float64", device="cpu")
    X = rng.standard_normal((9, 3, 3))
    Y = rng.standard_normal((9, 3, 2))
    Y[::3, :, 0] = np.nan
    learner = rtrl.RTRL(net, update="epoch", batch_size=3)
    learner.run(X, Y)
    ours, ref = learner.gradients(), _torch_loss_grad(net, X, Y)
    assert set(ours) == set(ref)
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-10, atol=1e-12 * np.abs(ref[k]).max(), err_msg=k)


def _assert_grads_close(ours, ref):
    assert set(ours) == set(ref)
    for k in ref:
        np.testing.assert_allclose(ours[k], ref[k], rtol=1e-10, atol=1e-12 * np.abs(ref[k]).max(), err_msg=k)


@pytest.mark.parametrize("cell,alpha", [("rnn", 1.0), ("rnn", 0.4), ("lstm", 1.0), ("gru", 1.0)])
@pytest.mark.parametrize("layers", [2, 3])
def test_stacked_cross_entropy_rtrl_equals_torch(cell, alpha, layers):
    rng = np.random.default_rng(10 + layers)
    net = rtrl.RecurrentNet(cell, 3, 4, 3, num_layers=layers, alpha=alpha, seed=6, dtype="float64", device="cpu")
    X = rng.standard_normal((7, 2, 3))
    Y = rng.integers(-1, 3, (7, 2))
    learner = rtrl.RTRL(net, update="epoch", loss="cross_entropy", batch_size=2)
    learner.run(X, Y)
    _assert_grads_close(learner.gradients(), _torch_loss_grad(net, X, Y, loss="cross_entropy"))


@pytest.mark.parametrize("cell,nonlinearity,alpha", [("rnn", "tanh", 1.0), ("rnn", "relu", 1.0),
                                                     ("rnn", "tanh", 0.3), ("lstm", "tanh", 1.0),
                                                     ("gru", "tanh", 1.0)])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("truncation", [None, 4])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_stacked_bptt_gradient_equals_torch(cell, nonlinearity, alpha, layers, truncation, loss):
    rng = np.random.default_rng(layers)
    net = rtrl.RecurrentNet(cell, 3, 4, 2, num_layers=layers, nonlinearity=nonlinearity, alpha=alpha,
                            seed=5, dtype="float64", device="cpu")
    X = rng.standard_normal((10, 3, 3))
    if loss == "mse":
        Y = rng.standard_normal((10, 3, 2))
        Y[::3, :, 0] = np.nan
    else:
        Y = rng.integers(-1, 2, (10, 3))
    learner = rtrl.BPTT(net, truncation=truncation, loss=loss, batch_size=3)
    learner.run(X, Y)
    _assert_grads_close(learner.gradients(), _torch_loss_grad(net, X, Y, loss=loss, truncation=truncation))


def test_stacked_bptt_moves_the_state_on_like_rtrl():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((9, 2, 3)), rng.standard_normal((9, 2, 2))
    net = rtrl.RecurrentNet("lstm", 3, 4, 2, num_layers=3, seed=2, dtype="float64", device="cpu")
    bptt, real = rtrl.BPTT(net, truncation=4, batch_size=2), rtrl.RTRL(net, update="epoch", batch_size=2)
    out_b, out_r = bptt.run(X, Y), real.run(X, Y)
    np.testing.assert_allclose(out_b.outputs, out_r.outputs, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(out_b.loss, out_r.loss, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bptt.state, real.state, rtol=1e-12, atol=1e-14)
    assert bptt.state.shape == (3, 2, 4)


@pytest.mark.parametrize("learner_kind", ["rtrl", "bptt"])
def test_stacked_nonfinite_stream_is_reset_and_skipped(learner_kind):
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((6, 3, 3)), rng.standard_normal((6, 3, 2))
    X[2, 1, 0] = np.inf
    net = rtrl.RecurrentNet("gru", 3, 4, 2, num_layers=2, seed=2, dtype="float64", device="cpu")
    make = (lambda: rtrl.RTRL(net, update="epoch", batch_size=3, on_nonfinite="skip")) if learner_kind == "rtrl" \
        else (lambda: rtrl.BPTT(net, truncation=3, batch_size=3, on_nonfinite="skip"))
    learner = make()
    learner.run(X, Y)
    assert learner.stats["skipped_steps"] == 1 and learner.stats["reset_streams"] == 1
    assert np.isfinite(learner.gradients()["weight_hh_l1"]).all()
    assert np.isfinite(learner.state).all()


def test_stacked_step_equals_run_and_resume_is_bit_identical(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((8, 2, 3)), rng.standard_normal((8, 2, 2))
    make = lambda: rtrl.RTRL(rtrl.RecurrentNet("lstm", 3, 4, 2, num_layers=2, seed=1, device="cpu"),  # noqa: E731
                             optimizer=rtrl.optim.Adam(1e-2), batch_size=2)
    whole = make()
    out = whole.run(X, Y).outputs
    stepped = make()
    steps = [stepped.step(X[t], Y[t]) for t in range(3)]
    stepped.save(tmp_path / "k.npz")
    resumed = rtrl.load(tmp_path / "k.npz")
    rest = resumed.run(X[3:], Y[3:]).outputs
    np.testing.assert_array_equal(np.concatenate([np.stack(steps), rest]), out)
    for k, v in whole.model.parameters().items():
        np.testing.assert_array_equal(resumed.model.parameters()[k], v)


def test_one_layer_is_the_unstacked_network():
    a = rtrl.RecurrentNet("gru", 3, 4, 2, seed=3, device="cpu")
    b = rtrl.RecurrentNet("gru", 3, 4, 2, num_layers=1, seed=3, device="cpu")
    assert list(a.parameters()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_out", "bias_out"]
    for k, v in a.parameters().items():
        np.testing.assert_array_equal(b.parameters()[k], v)
    b.load_parameters({(k + "_l0" if k.endswith(("ih", "hh")) else k): v * 2 for k, v in a.parameters().items()})
    np.testing.assert_array_equal(b.weight_hh, a.weight_hh * 2)
    deep = rtrl.RecurrentNet("gru", 3, 4, 2, num_layers=3, device="cpu")
    assert deep.weight_ih_l0.shape == (12, 3) and deep.weight_ih_l2.shape == (12, 4)
    with pytest.raises(ValueError, match="weight_ih"):
        deep.load_parameters({**deep.parameters(), "weight_ih": deep.weight_ih_l0})
    with pytest.raises(ValueError, match="weight_ih_l1"):  # layer 1 takes H inputs, not I
        deep.load_parameters({**deep.parameters(), "weight_ih_l1": np.zeros((12, 3), np.float32)})
    with pytest.raises(ValueError, match="weight_hh_l3|unknown|expected"):
        deep.load_parameters({**deep.parameters(), "weight_hh_l3": deep.weight_hh_l2})
    before = {k: v.copy() for k, v in deep.parameters().items()}
    with pytest.raises(ValueError):
        deep.load_parameters({**{k: v + 1 for k, v in before.items()}, "bias_hh_l2": np.zeros(5, np.float32)})
    for k, v in deep.parameters().items():  # nothing was copied
        np.testing.assert_array_equal(v, before[k])


@pytest.mark.parametrize("layers,error", [(0, ValueError), (-1, ValueError), (True, TypeError),
                                          (2.0, TypeError), (10**12, MemoryError)])
def test_num_layers_is_checked_before_allocating(layers, error):
    with pytest.raises(error, match="num_layers|parameters"):
        rtrl.RecurrentNet("lstm", 3, 64, 2, num_layers=layers, device="cpu")


@pytest.mark.parametrize("cell,alpha", [("rnn", 0.0), ("rnn", -0.1), ("rnn", 1.5), ("rnn", float("nan")),
                                        ("lstm", 0.5), ("gru", 0.9)])
def test_alpha_out_of_range_or_on_another_cell(cell, alpha):
    with pytest.raises(ValueError, match="alpha"):
        rtrl.RecurrentNet(cell, 3, 4, 2, alpha=alpha, device="cpu")


def test_memory_estimate_sums_the_layers_sensitivities():
    B, I, H, O, L = 3, 2, 5, 2, 3
    est = rtrl.memory.estimate("lstm", I, H, O, num_layers=L, batch_size=B, dtype="float64")
    theta = [4 * H * (I + H + 1)] + [4 * H * (2 * H + 1)] * (L - 1)
    through = np.cumsum(theta)
    assert est["sensitivities"] == 2 * H * B * int(through.sum()) * 8
    learner = rtrl.RTRL(rtrl.RecurrentNet("lstm", I, H, O, num_layers=L, dtype="float64", device="cpu"),
                        lr=0.1, batch_size=B)
    assert learner.memory_bytes() == est["learner"]


def test_from_torch_matches_the_torch_module():
    rng = np.random.default_rng(0)
    for kind in (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU):
        mod, lin = kind(3, 4, num_layers=2).double(), torch.nn.Linear(4, 2).double()
        net = rtrl.RecurrentNet.from_torch(mod, lin, device="cpu")
        assert net.num_layers == 2 and net.dtype == np.float64
        X = rng.standard_normal((6, 2, 3))
        ours = rtrl.RTRL(net, batch_size=2).run(X).outputs
        with torch.no_grad():
            ref = lin(mod(torch.tensor(X))[0]).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="bidirectional"):
        rtrl.RecurrentNet.from_torch(torch.nn.LSTM(3, 4, bidirectional=True), torch.nn.Linear(8, 2))


@pytest.mark.parametrize("cell,nonlinearity,alpha", [("rnn", "tanh", 1.0), ("rnn", "relu", 1.0),
                                                     ("rnn", "tanh", 0.5), ("lstm", "tanh", 1.0),
                                                     ("gru", "tanh", 1.0)])
@pytest.mark.parametrize("layers", [2, 3])
@pytest.mark.parametrize("loss,adam,clip", [("mse", False, None), ("cross_entropy", True, None),
                                            ("mse", True, 0.05)])
def test_stacked_realtime_rtrl_equals_the_complex_step_reference(cell, nonlinearity, alpha, layers, loss, adam,
                                                                 clip):
    from reference.optimizers import NumpyAdam, NumpySGD, clip_like_torch
    from reference.stacked_rtrl import realtime_rtrl

    rng = np.random.default_rng(20 + layers)
    net = rtrl.RecurrentNet(cell, 2, 3, 2, num_layers=layers, nonlinearity=nonlinearity, alpha=alpha,
                            seed=8, dtype="float64", device="cpu")
    X = rng.standard_normal((6, 2, 2))
    if loss == "mse":
        Y = rng.standard_normal((6, 2, 2))
        Y[1, 0, :] = np.nan
    else:
        Y = rng.integers(-1, 2, (6, 2))
    start = {k: v.copy() for k, v in net.parameters().items()}
    learner = rtrl.RTRL(net, optimizer=rtrl.optim.Adam(0.05) if adam else rtrl.optim.SGD(0.3),
                        loss=loss, batch_size=2, clip_grad_norm=clip)
    result = learner.run(X, Y)
    optimizer = update = NumpyAdam(0.05) if adam else NumpySGD(0.3)
    if clip is not None:
        class Clipped:  # torch.nn.utils.clip_grad_norm_ over all parameters, then the update
            def step(self, p, g):
                clipped, was_clipped = clip_like_torch(g, clip)
                self.clipped += was_clipped
                return update.step(p, clipped)
            clipped = 0
        optimizer = Clipped()
    ref_out, ref_loss, ref_params = realtime_rtrl(cell, start, X, Y, layers=layers, nonlinearity=nonlinearity,
                                                  alpha=alpha, loss=loss, optimizer=optimizer)
    np.testing.assert_allclose(result.outputs, ref_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.loss, ref_loss, rtol=1e-10, atol=1e-12)
    for k, v in net.parameters().items():
        np.testing.assert_allclose(v, ref_params[k], rtol=1e-10, atol=1e-12, err_msg=k)
    if clip is not None:
        assert optimizer.clipped >= 3  # the clipping was exercised
    moved = max(float(np.abs(v - start[k]).max()) for k, v in net.parameters().items() if k.endswith("_l0"))
    assert moved > 1e-6  # the first layer learned, through the layers above it


@pytest.mark.parametrize("cell,nonlinearity,alpha", [("rnn", "tanh", 0.6), ("lstm", "tanh", 1.0),
                                                     ("gru", "tanh", 1.0)])
@pytest.mark.parametrize("learner_kind", ["rtrl", "bptt"])
def test_stacked_gradient_equals_central_differences(cell, nonlinearity, alpha, learner_kind):
    from reference.recurrent_net import finite_difference_gradients
    from reference.stacked_rtrl import total_loss

    rng = np.random.default_rng(30)
    net = rtrl.RecurrentNet(cell, 2, 3, 2, num_layers=2, alpha=alpha, seed=9, dtype="float64", device="cpu")
    X, Y = rng.standard_normal((5, 2, 2)), rng.standard_normal((5, 2, 2))
    learner = (rtrl.RTRL(net, update="epoch", batch_size=2) if learner_kind == "rtrl"
               else rtrl.BPTT(net, batch_size=2))
    learner.run(X, Y)
    fd = finite_difference_gradients(
        lambda p: total_loss(cell, p, X, Y, layers=2, nonlinearity=nonlinearity, alpha=alpha), net.parameters())
    # central differences at eps = 1e-5: truncation ~1e-10 f''', rounding ~1e-11
    for k, g in learner.gradients().items():
        np.testing.assert_allclose(g, fd[k], rtol=1e-6, atol=1e-8, err_msg=k)


def test_a_stack_that_does_not_fit_names_each_layers_part():
    net = rtrl.RecurrentNet("lstm", 8, 512, 2, num_layers=3, device="cpu")
    with pytest.raises(MemoryError, match=r"sensitivities by layer: 0 .*, 1 .*, 2 "):
        rtrl.RTRL(net, lr=0.1, batch_size=64)
    parts = rtrl.memory.layer_sensitivities(net, 64)
    H, B, N0 = 512, 64, 4 * 512 * (8 + 512 + 1)
    assert parts[0] == 2 * H * B * N0 * 4 and parts[0] < parts[1] < parts[2]
