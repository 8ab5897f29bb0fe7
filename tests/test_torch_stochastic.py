"""The torch-ops UORO and KF-RTRL of ``rtrl bench --only approximate`` compute what rtrl.UORO and
rtrl.KFRTRL compute, given the same seed (float64, real-time Adam, B > 1, target gaps, the leaky rnn)."""

import numpy as np
import pytest

import rtrl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["UORO", "KFRTRL"])
@pytest.mark.parametrize("alpha", [1.0, 0.4])
@pytest.mark.parametrize("seed", [3, 2**40 + 7])
def test_torch_stochastic_learner_equals_the_library(name, alpha, seed):
    from rtrl.bench import torch_stochastic

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(15, 3, 4)), rng.normal(size=(15, 3, 2))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    net = rtrl.RecurrentNet("rnn", 4, 5, 2, alpha=alpha, seed=1, dtype="float64", device="cpu")
    ref = getattr(torch_stochastic, f"Torch{name}")({k: v.copy() for k, v in net.parameters().items()}, seed,
                                                    batch=3, lr=0.02, alpha=alpha, dtype="float64")
    outputs = np.stack([ref.step(X[t], Y[t]).numpy() for t in range(15)])
    learner = getattr(rtrl, name)(net, seed=seed, optimizer=rtrl.optim.Adam(0.02), batch_size=3)
    result = learner.run(X, Y)
    np.testing.assert_allclose(outputs, result.outputs, rtol=1e-10, atol=1e-12)
    for k, v in net.parameters().items():
        np.testing.assert_allclose(ref.p[k].numpy(), v, rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("name", ["UORO", "KFRTRL"])
def test_other_signs_give_another_run(name):
    """The comparison above can fail: another seed's signs move the weights elsewhere."""
    from rtrl.bench import torch_stochastic
    from rtrl.bench.torch_stochastic import philox_signs

    assert not np.array_equal(philox_signs(3, 0, 2, 8), philox_signs(4, 0, 2, 8))
    assert not np.array_equal(philox_signs(3, 0, 2, 8), philox_signs(3, 1, 2, 8))
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2, 4)), rng.normal(size=(6, 2, 2))
    net = rtrl.RecurrentNet("rnn", 4, 5, 2, seed=1, dtype="float64", device="cpu")
    ref = getattr(torch_stochastic, f"Torch{name}")({k: v.copy() for k, v in net.parameters().items()}, 4,
                                                    batch=2, lr=0.02, dtype="float64")
    for t in range(6):
        ref.step(X[t], Y[t])
    getattr(rtrl, name)(net, seed=3, optimizer=rtrl.optim.Adam(0.02), batch_size=2).run(X, Y)
    assert not np.allclose(ref.p["weight_hh"].numpy(), net.parameters()["weight_hh"], rtol=1e-6)
