"""The non-finite policy of the learners (on_nonfinite="raise" | "skip").

"skip" is checked against an emulation through the public API: at the offending step the bad
stream's input is replaced by a finite value, the step runs, then the weights (plain SGD: no optimizer
state) or the accumulated gradient are put back and the bad stream is reset. The skipped run must
give the same weights, states, gradients and outputs of the good streams. "raise" must stop at the
offending step with the weights of the step before and a usable learner."""

import numpy as np
import pytest
from conftest import to_numpy

import rtrl

T, B, I, O = 12, 3, 2, 1
BAD_STEP, BAD_STREAM = 5, 1

MODELS = [
    pytest.param(lambda device: rtrl.FullyRecurrent(4, I, n_outputs=O, seed=1, dtype="float64", device=device),
                 id="fully_recurrent"),
    *[pytest.param(lambda device, c=cell: rtrl.RecurrentNet(c, I, 5, O, seed=1, dtype="float64", device=device),
                   id=cell) for cell in ("rnn", "lstm", "gru")],
]


def problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(T, B, I))
    D = rng.uniform(0.2, 0.8, size=(T, B, O))
    return X, D


def corrupt(X, D, where):
    X, D = X.copy(), D.copy()
    if where == "input_nan":
        X[BAD_STEP, BAD_STREAM, 0] = np.nan
    elif where == "input_inf":
        X[BAD_STEP, BAD_STREAM, 1] = -np.inf
    else:
        D[BAD_STEP, BAD_STREAM, 0] = np.inf
    return X, D


def emulated_skip(make, device, X, D, update, learner_class=rtrl.RTRL, **kwargs):
    """The step-by-step emulation of skipping BAD_STEP for BAD_STREAM."""
    model = make(device)
    learner = learner_class(model, lr=0.3, batch_size=B, update=update, **kwargs)
    outputs = []
    for t in range(T):
        if t != BAD_STEP:
            outputs.append(to_numpy(learner.step(X[t], D[t])))
            continue
        before = learner.state_dict()
        x, d = X[t].copy(), D[t].copy()
        x[BAD_STREAM], d[BAD_STREAM] = 0.0, np.nan
        outputs.append(to_numpy(learner.step(x, d)))
        after = learner.state_dict()
        after["parameters"], after["grad"] = before["parameters"], before["grad"]
        after["optimizer_step"] = before["optimizer_step"]
        learner.load_state_dict(after)
        learner.reset([BAD_STREAM])
    return learner, np.stack(outputs)


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("where", ["input_nan", "input_inf", "target_inf"])
@pytest.mark.parametrize("update", ["realtime", "epoch"])
def test_skip_equals_emulation(make, where, update, device):
    X, D = problem()
    Xb, Db = corrupt(X, D, where)
    learner = rtrl.RTRL(make(device), lr=0.3, batch_size=B, update=update, on_nonfinite="skip")
    result = learner.run(Xb, Db)
    expected, expected_outputs = emulated_skip(make, device, Xb, Db, update)

    assert learner.stats == {"skipped_steps": 1, "reset_streams": 1, "last_skipped_step": BAD_STEP}
    assert learner.steps == T
    for name, value in learner.model.parameters().items():
        np.testing.assert_allclose(to_numpy(value), to_numpy(expected.model.parameters()[name]),
                                   rtol=1e-12, atol=1e-14, err_msg=name)
    for name, value in learner.gradients().items():
        np.testing.assert_allclose(to_numpy(value), to_numpy(expected.gradients()[name]),
                                   rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(to_numpy(learner.state), to_numpy(expected.state), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(to_numpy(learner.sensitivities), to_numpy(expected.sensitivities),
                               rtol=1e-12, atol=1e-14)
    outputs = to_numpy(result.outputs)
    good = np.ones((T, B), bool)
    good[BAD_STEP, BAD_STREAM] = False
    np.testing.assert_allclose(outputs[good], expected_outputs[good], rtol=1e-12, atol=1e-14)
    assert np.isfinite(to_numpy(learner.model._flat)).all()


APPROXIMATE = [
    pytest.param(rtrl.SnAp, {}, id="snap"),
    pytest.param(rtrl.EProp, {}, id="eprop"),
    pytest.param(rtrl.UORO, {"seed": 3}, id="uoro"),
    pytest.param(rtrl.KFRTRL, {"seed": 3}, id="kf"),
]


STACKED = [pytest.param(lambda device, c=cell: rtrl.RecurrentNet(c, I, 5, O, num_layers=2, seed=1, dtype="float64",
                                                             device=device), id=f"{cell}-2")
           for cell in ("lstm", "elstm")]


@pytest.mark.parametrize("make", MODELS + STACKED)
@pytest.mark.parametrize("learner_class, kwargs", APPROXIMATE)
@pytest.mark.parametrize("update", ["realtime", "epoch"])
def test_approximate_skip_equals_emulation(make, learner_class, kwargs, update, device):
    """Within one call a learner carries what it derives from its state from step to step (UORO: the
    rows' norms of theta~); the reset of a skipped stream must reach that too, so that the run equals
    the emulation, which starts a call at every step."""
    model = make(device)
    if learner_class is rtrl.KFRTRL and getattr(model, "cell", None) in ("gru", "elstm"):
        pytest.skip("KF-RTRL does not run on the GRU or the eLSTM")
    X, D = corrupt(*problem(), "input_nan")
    learner = learner_class(model, lr=0.3, batch_size=B, update=update, on_nonfinite="skip", **kwargs)
    result = learner.run(X, D)
    expected, expected_outputs = emulated_skip(make, device, X, D, update, learner_class, **kwargs)

    assert learner.stats == {"skipped_steps": 1, "reset_streams": 1, "last_skipped_step": BAD_STEP}
    ours, theirs = learner.state_dict(), expected.state_dict()
    for name in ("grad", *learner._kernels.arrays):
        np.testing.assert_allclose(to_numpy(ours[name]), to_numpy(theirs[name]), rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    for name, value in ours["parameters"].items():
        np.testing.assert_allclose(to_numpy(value), to_numpy(theirs["parameters"][name]), rtol=1e-12,
                                   atol=1e-14, err_msg=name)
    good = np.ones((T, B), bool)
    good[BAD_STEP, BAD_STREAM] = False
    np.testing.assert_allclose(to_numpy(result.outputs)[good], expected_outputs[good], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", MODELS)
def test_raise_refuses_nonfinite_input_untouched(make, device):
    X, D = corrupt(*problem(), "input_nan")
    learner = rtrl.RTRL(make(device), lr=0.3, batch_size=B)
    before = learner.state_dict()
    with pytest.raises(ValueError, match=f"X: non-finite value at step {BAD_STEP}, stream {BAD_STREAM}"):
        learner.run(X, D)
    after = learner.state_dict()
    for name in ("grad", *learner._kernels.arrays):
        np.testing.assert_array_equal(to_numpy(after[name]), to_numpy(before[name]))
    for name, value in after["parameters"].items():
        np.testing.assert_array_equal(to_numpy(value), to_numpy(before["parameters"][name]))
    assert learner.steps == 0 and learner.stats["skipped_steps"] == 0


def huge_lr(model):
    """A learning rate that makes the cells' state or gradient overflow within a few steps; the
    fully recurrent net's logistic units saturate instead (their gradient vanishes), so there it is
    the update itself that overflows."""
    return 1e308 if isinstance(model, rtrl.FullyRecurrent) else 1e300


def diverging(make, device, policy):
    model = make(device)
    return rtrl.RTRL(model, optimizer=rtrl.optim.SGD(huge_lr(model)), batch_size=B, on_nonfinite=policy)


@pytest.mark.parametrize("make", MODELS)
def test_raise_on_divergence_keeps_previous_weights(make, device):
    X, D = problem(1)
    D = D * 1e3
    learner = diverging(make, device, "raise")
    with pytest.raises(rtrl.NonFiniteError) as info:
        learner.run(X, D)
    err = info.value
    assert isinstance(err, FloatingPointError)
    step = err.step
    assert 0 <= step < T and learner.steps == step + 1
    assert f"step {step}" in str(err)
    assert to_numpy(err.result.outputs).shape == (step + 1, B, O)
    # The weights are those after the steps before the offending one.
    reference = diverging(make, device, "raise")
    reference.run(X[:step], D[:step])
    for name, value in learner.model.parameters().items():
        np.testing.assert_array_equal(to_numpy(value), to_numpy(reference.model.parameters()[name]), err_msg=name)
    assert np.isfinite(to_numpy(learner.state)).all()
    for s in err.streams:
        assert not to_numpy(learner.state)[s].any()
    # Still consistent: with sane weights it runs on (without targets: no update).
    learner.model.load_parameters(make(device).parameters())
    assert np.isfinite(to_numpy(learner.run(X[:3]).outputs)).all()
    assert np.isfinite(to_numpy(learner.sensitivities)).all()


@pytest.mark.parametrize("make", MODELS)
def test_skip_on_divergence_counts_and_keeps_weights_finite(make, device):
    X, D = problem(1)
    learner = diverging(make, device, "skip")
    learner.run(X, D * 1e3)
    assert learner.steps == T
    assert learner.stats["skipped_steps"] >= 1
    assert learner.stats["last_skipped_step"] < T
    assert np.isfinite(to_numpy(learner.model._flat)).all()
    assert np.isfinite(to_numpy(learner.state)).all()
    assert np.isfinite(to_numpy(learner.sensitivities)).all()


@pytest.mark.parametrize("make", MODELS)
@pytest.mark.parametrize("where", ["input_nan", "target_inf"])
def test_bptt_skip_drops_the_chunk(make, where, device):
    k = 4  # BAD_STEP = 5 lies in the second chunk [4, 8)
    X, D = corrupt(*problem(), where)
    learner = rtrl.BPTT(make(device), truncation=k, lr=0.3, batch_size=B, on_nonfinite="skip")
    learner.run(X, D)
    assert learner.stats == {"skipped_steps": 1, "reset_streams": 1, "last_skipped_step": 2 * k - 1}

    expected = rtrl.BPTT(make(device), truncation=k, lr=0.3, batch_size=B)
    expected.run(X[:k], D[:k])
    weights = {k_: v.copy() for k_, v in expected.model.parameters().items()}
    x, d = X[k:2 * k].copy(), D[k:2 * k].copy()
    x[:, BAD_STREAM], d[:, BAD_STREAM] = 0.0, np.nan
    expected.run(x, d)
    expected.model.load_parameters(weights)
    expected.reset([BAD_STREAM])
    expected.run(X[2 * k:], D[2 * k:])
    for name, value in learner.model.parameters().items():
        np.testing.assert_allclose(to_numpy(value), to_numpy(expected.model.parameters()[name]),
                                   rtol=1e-12, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(to_numpy(learner.state), to_numpy(expected.state), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", MODELS)
def test_bptt_raise_on_divergence(make, device):
    X, D = problem(1)
    model = make(device)
    learner = rtrl.BPTT(model, truncation=2, optimizer=rtrl.optim.SGD(huge_lr(model)), batch_size=B)
    with pytest.raises(rtrl.NonFiniteError) as info:
        learner.run(X, D * 1e3)
    assert np.isfinite(to_numpy(learner.model._flat)).all()
    assert learner.steps - 2 <= info.value.step < learner.steps


def test_step_skip_accepts_nonfinite_input():
    learner = rtrl.RTRL(rtrl.FullyRecurrent(3, 2, seed=0, device="cpu"), lr=0.1, on_nonfinite="skip")
    weight = learner.model.weight.copy()
    learner.step(np.array([np.nan, 1.0]), np.array([0.5, np.nan, np.nan]))
    np.testing.assert_array_equal(learner.model.weight, weight)
    assert learner.stats == {"skipped_steps": 1, "reset_streams": 1, "last_skipped_step": 0}
    assert not learner.state.any()
    learner.step(np.array([0.0, 1.0]), np.array([0.5, np.nan, np.nan]))
    assert learner.stats["skipped_steps"] == 1 and not np.array_equal(learner.model.weight, weight)


def test_policy_is_validated_and_saved(tmp_path):
    net = rtrl.FullyRecurrent(3, 1, seed=0, device="cpu")
    with pytest.raises(ValueError, match="on_nonfinite: expected one of"):
        rtrl.RTRL(net, on_nonfinite="ignore")
    with pytest.raises(ValueError, match="on_nonfinite"):
        rtrl.BPTT(net, on_nonfinite=None)
    learner = rtrl.RTRL(net, lr=0.1, on_nonfinite="skip")
    learner.run(np.array([[np.inf], [0.0]]), np.full((2, 3), 0.5))
    learner.save(tmp_path / "c.npz")
    loaded = rtrl.load(tmp_path / "c.npz")
    assert loaded.on_nonfinite == "skip"
    assert loaded.stats == learner.stats == {"skipped_steps": 1, "reset_streams": 1, "last_skipped_step": 0}
    bad = learner.state_dict()
    bad["stats"] = {"skipped_steps": -1, "reset_streams": 0, "last_skipped_step": None}
    with pytest.raises(ValueError, match="stats"):
        learner.load_state_dict(bad)


@pytest.mark.parametrize("policy", ["raise", "skip"])
def test_an_update_that_would_overflow_the_optimizer_state_is_undone(policy, device):
    """float32 Adam: a finite but huge gradient squares to inf in the second moment while the weights
    would stay finite; the update must be undone, optimizer state and gradient included."""
    net = rtrl.RecurrentNet("rnn", I, 4, O, seed=0, device=device)
    learner = rtrl.RTRL(net, optimizer=rtrl.optim.Adam(1e-3), batch_size=B, on_nonfinite=policy)
    X, D = problem(2)
    learner.run(X[:3], D[:3])
    before = learner.state_dict()
    huge = D[3:4] + 1e30
    if policy == "raise":
        with pytest.raises(rtrl.NonFiniteError) as info:
            learner.run(X[3:4], huge)
        assert info.value.step == 3 and info.value.streams == []
    else:
        learner.run(X[3:4], huge)
    after = learner.state_dict()
    assert learner.stats["skipped_steps"] == 1 and learner.stats["reset_streams"] == 0
    assert np.isfinite(to_numpy(after["optimizer_state"])).all()
    np.testing.assert_array_equal(to_numpy(after["optimizer_state"]), to_numpy(before["optimizer_state"]))
    for name, value in after["parameters"].items():
        np.testing.assert_array_equal(to_numpy(value), to_numpy(before["parameters"][name]))
    assert after["optimizer_step"] == before["optimizer_step"]
    learner.load_state_dict(after)  # still a loadable state
    learner.run(X[4:], D[4:])  # and it still learns
    assert learner.state_dict()["optimizer_step"] == after["optimizer_step"] + T - 4
    assert not np.array_equal(to_numpy(learner.model.weight_hh), to_numpy(after["parameters"]["weight_hh"]))


def test_an_undone_update_puts_back_the_gradient_that_clipping_scaled(device):
    """With clipping the update scales the gradient in place first; when the update is undone (float32
    SGD whose step overflows the weights), the gradient is the step's own again: the same as a
    learner that does not clip reports."""
    learners = []
    for clip in (10.0, None):
        net = rtrl.RecurrentNet("rnn", I, 4, O, seed=0, device=device)
        learner = rtrl.RTRL(net, optimizer=rtrl.optim.SGD(1e38), batch_size=B, on_nonfinite="skip",
                            clip_grad_norm=clip)
        X, D = problem(2)
        learner.run(X[:1], D[:1] + 100.0)
        assert learner.stats["skipped_steps"] == 1
        learners.append(learner)
    clipped, plain = (np.concatenate([np.ravel(to_numpy(g)) for g in l.gradients().values()]) for l in learners)
    assert np.linalg.norm(clipped.astype(np.float64)) > 100.0  # clipping would have changed it
    np.testing.assert_array_equal(clipped, plain)
    for name, value in learners[0].model.parameters().items():  # and the weights are the initial ones
        np.testing.assert_array_equal(to_numpy(value), to_numpy(learners[1].model.parameters()[name]))


@pytest.mark.parametrize("make", MODELS)
def test_bptt_goes_on_after_an_update_that_overflowed(make, device):
    model = make(device)
    learner = rtrl.BPTT(model, truncation=2, optimizer=rtrl.optim.SGD(huge_lr(model)), batch_size=B)
    X, D = problem(1)
    with pytest.raises(rtrl.NonFiniteError) as info:
        learner.run(X, D * 1e3)
    err = info.value
    assert to_numpy(err.result.outputs).shape[0] == learner.steps
    # the chunk's gradient was dropped, not left pending for every later chunk to trip over
    for value in learner.gradients().values():
        assert not to_numpy(value).any()
    learner.model.load_parameters(make(device).parameters())
    weights = {k: v.copy() for k, v in learner.model.parameters().items()}
    learner.run(X[:4])  # no targets: a zero gradient, applied without complaint
    for name, value in learner.model.parameters().items():
        np.testing.assert_array_equal(to_numpy(value), to_numpy(weights[name]))


def test_nonfinite_error_pickles():
    import pickle

    err = rtrl.NonFiniteError("step 3: streams [1]", 3, [1], rtrl.RunResult(np.zeros((4, 2, 1)), np.zeros(4)))
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, rtrl.NonFiniteError) and str(back) == str(err)
    assert back.step == 3 and back.streams == [1] and back.result.outputs.shape == (4, 2, 1)
