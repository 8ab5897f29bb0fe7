"""The torch-ops SnAp-1, e-prop and RFLO of ``rtrl bench --only approximate`` compute what rtrl.SnAp,
rtrl.EProp and rtrl.RFLO compute (float64, real-time Adam, B > 1, target gaps)."""

import numpy as np
import pytest

import rtrl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("rule,cls", [("snap1", rtrl.SnAp), ("eprop", rtrl.EProp)])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_torch_snap_equals_the_library(cell, rule, cls):
    from rtrl.bench.torch_snap import TorchSnAp

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(12, 3, 4)), rng.normal(size=(12, 3, 2))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    net = rtrl.RecurrentNet(cell, 4, 5, 2, seed=1, dtype="float64", device="cpu")
    ref = TorchSnAp(cell, {k: v.copy() for k, v in net.parameters().items()}, batch=3, rule=rule, lr=0.02,
                    dtype="float64")
    outputs = np.stack([ref.step(X[t], Y[t]).numpy() for t in range(12)])
    result = cls(net, optimizer=rtrl.optim.Adam(0.02), batch_size=3).run(X, Y)
    np.testing.assert_allclose(outputs, result.outputs, rtol=1e-10, atol=1e-12)
    for k, v in net.parameters().items():
        np.testing.assert_allclose(ref.p[k].numpy(), v, rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_torch_rflo_equals_the_library(alpha):
    from rtrl.bench.torch_snap import TorchSnAp

    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(12, 3, 4)), rng.normal(size=(12, 3, 2))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    net = rtrl.RecurrentNet("rnn", 4, 5, 2, alpha=alpha, seed=1, dtype="float64", device="cpu")
    learner = rtrl.RFLO(net, seed=4, optimizer=rtrl.optim.Adam(0.02), batch_size=3)
    feedback = np.asarray(learner.state_dict()["feedback"])
    assert not np.allclose(feedback, net.parameters()["weight_out"])  # the random matrix, not the readout's
    ref = TorchSnAp("rnn", {k: v.copy() for k, v in net.parameters().items()}, batch=3, rule="eprop", lr=0.02,
                    dtype="float64", alpha=alpha, feedback=feedback)
    outputs = np.stack([ref.step(X[t], Y[t]).numpy() for t in range(12)])
    result = learner.run(X, Y)
    np.testing.assert_allclose(outputs, result.outputs, rtol=1e-10, atol=1e-12)
    for k, v in net.parameters().items():
        np.testing.assert_allclose(ref.p[k].numpy(), v, rtol=1e-10, atol=1e-12, err_msg=k)
