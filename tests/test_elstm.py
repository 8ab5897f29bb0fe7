"""The eLSTM cell (Irie et al. 2023; DESIGN §9): RecurrentNet("elstm", ...) with an element-wise
recurrence. Exact RTRL and BPTT equal torch autograd through the cell's equations written out; SnAp-1
on it is exact RTRL (in real time too); e-prop and SnAp-1 equal the reference (test_diagonal_traces)."""

from __future__ import annotations

import numpy as np
import pytest

import rtrl

torch = pytest.importorskip("torch")


def _torch_loss_grad(net, X, Y, loss="mse", truncation=None):
    """The summed loss over X from a zero state and its gradient by autograd, for the parameters of
    ``net``; with ``truncation`` the state is detached every ``truncation`` steps (truncated BPTT)."""
    P = {k: torch.tensor(np.asarray(v), requires_grad=True) for k, v in net.parameters().items()}
    T, B, _ = X.shape
    H, L = net.hidden_size, net.num_layers
    h = [torch.zeros(B, H, dtype=torch.float64) for _ in range(L)]
    scale = 1.0 / B
    total = 0.0
    for t in range(T):
        if truncation and t % truncation == 0:
            h = [v.detach() for v in h]
        x = torch.tensor(X[t])
        for l in range(L):
            s = "" if L == 1 else f"_l{l}"
            a = x @ P["weight_ih" + s].T + P["bias_ih" + s] + P["bias_hh" + s] + torch.cat([h[l], h[l]], 1) * P["weight_hh" + s]
            z, f = torch.tanh(a[:, :H]), torch.sigmoid(a[:, H:])
            h[l] = f * h[l] + (1 - f) * z
            x = h[l]
        y = x @ P["weight_out"].T + P["bias_out"]
        if loss == "mse":
            d = torch.tensor(Y[t])
            m = ~torch.isnan(d)
            total = total + scale * 0.5 * (((torch.where(m, d, torch.zeros_like(d)) - y) ** 2) * m).sum()
        else:
            target = torch.tensor(Y[t])
            keep = target >= 0
            if keep.any():
                total = total + scale * torch.nn.functional.cross_entropy(y[keep], target[keep], reduction="sum")
    total.backward()
    return float(total.detach()), {k: v.grad.numpy() for k, v in P.items()}


def _data(rng, T, B, loss):
    X = rng.normal(size=(T, B, 3))
    if loss == "mse":
        Y = rng.normal(size=(T, B, 2))
        Y[rng.random(Y.shape) < 0.3] = np.nan
    else:
        Y = rng.integers(-1, 2, size=(T, B))
    return X, Y


def test_parameters_have_the_element_wise_shapes():
    net = rtrl.RecurrentNet("elstm", 3, 5, 2, num_layers=2, seed=0, device="cpu")
    shapes = net.parameter_shapes()
    assert shapes["weight_ih_l0"] == (10, 3) and shapes["weight_ih_l1"] == (10, 5)
    assert shapes["weight_hh_l0"] == (10,) and shapes["bias_hh_l1"] == (10,)
    assert net._flat.size == 10 * (3 + 3) + 10 * (5 + 3) + 2 * 5 + 2
    with pytest.raises(ValueError, match="alpha"):
        rtrl.RecurrentNet("elstm", 3, 5, 2, alpha=0.5, device="cpu")
    assert rtrl.RecurrentNet("rnn", 1, 1, 1, device="cpu").weight_hh.shape == (1, 1)  # a matrix still


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("learner", ["rtrl", "bptt", "bptt-truncated"])
def test_gradient_equals_torch_autograd(layers, loss, learner):
    rng = np.random.default_rng(layers)
    X, Y = _data(rng, 9, 3, loss)
    net = rtrl.RecurrentNet("elstm", 3, 4, 2, num_layers=layers, seed=layers, dtype="float64", device="cpu")
    if learner == "rtrl":
        ours = rtrl.RTRL(net, update="epoch", batch_size=3, loss=loss)
        truncation = None
    else:
        truncation = 4 if learner == "bptt-truncated" else None
        ours = rtrl.BPTT(net, truncation=truncation, batch_size=3, loss=loss)
    total, ref = _torch_loss_grad(net, X, Y, loss, truncation)
    result = ours.run(X, Y)
    assert abs(float(result.loss.sum()) - total) <= 1e-12 * max(1.0, abs(total))
    for k, v in ours.gradients().items():
        np.testing.assert_allclose(v, ref[k], rtol=1e-10, atol=1e-13, err_msg=k)
    assert max(np.abs(v).max() for v in ref.values()) > 1e-3


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_snap_is_exact_rtrl_in_real_time(loss):
    rng = np.random.default_rng(5)
    X, Y = _data(rng, 40, 4, loss)
    runs, nets = [], []
    for cls in (rtrl.RTRL, rtrl.SnAp):
        net = rtrl.RecurrentNet("elstm", 3, 6, 2, seed=7, dtype="float64", device="cpu")
        runs.append(cls(net, optimizer=rtrl.optim.Adam(0.02), batch_size=4, loss=loss).run(X, Y))
        nets.append(net)
    np.testing.assert_allclose(runs[1].outputs, runs[0].outputs, rtol=1e-10, atol=1e-12)
    for k, v in nets[0].parameters().items():
        np.testing.assert_allclose(nets[1].parameters()[k], v, rtol=1e-10, atol=1e-12, err_msg=k)


def test_snap_memory_is_the_parameter_count_per_stream():
    est = rtrl.memory.estimate("elstm", 32, 256, 4, batch_size=16, learner="snap")
    exact = rtrl.memory.estimate("elstm", 32, 256, 4, batch_size=16, learner="rtrl")
    theta = 2 * 256 * (32 + 1 + 1)  # w_ih row, w_hh, one bias column per gate row
    assert est["sensitivities"] == 16 * theta * 4
    assert exact["sensitivities"] == 16 * 256 * theta * 4


@pytest.mark.parametrize("cls", [rtrl.SnAp, rtrl.BPTT])
def test_learns_a_delayed_sum(cls):
    rng = np.random.default_rng(10)
    T, B = 3000, 4
    x = rng.normal(size=(T, B, 1))
    y = np.zeros((T, B, 1))
    y[2:] = x[1:-1] + x[:-2]
    net = rtrl.RecurrentNet("elstm", 1, 24, 1, seed=3, device="cpu")
    kwargs = {"truncation": 10} if cls is rtrl.BPTT else {}
    loss = cls(net, optimizer=rtrl.optim.Adam(3e-3), batch_size=B, **kwargs).run(x, y).loss
    assert loss[-T // 4:].mean() < 0.6 * loss[:T // 4].mean()


def test_checkpoint_round_trip_is_bit_identical(tmp_path):
    rng = np.random.default_rng(2)
    X, Y = _data(rng, 10, 2, "mse")
    make = lambda: rtrl.SnAp(rtrl.RecurrentNet("elstm", 3, 5, 2, num_layers=2, seed=1, device="cpu"),  # noqa: E731
                             optimizer=rtrl.optim.Adam(1e-2), batch_size=2)
    whole = make()
    out = whole.run(X, Y).outputs
    first = make()
    head = first.run(X[:4], Y[:4]).outputs
    first.save(tmp_path / "e.npz")
    tail = rtrl.load(tmp_path / "e.npz").run(X[4:], Y[4:]).outputs
    np.testing.assert_array_equal(np.concatenate([head, tail]), out)
