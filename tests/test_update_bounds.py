"""The update that goes without its backup (DESIGN §8, update_bounds.hpp).

Inside one call of ``run`` the CPU's online loop skips the copy an update would be undone from when
bounds on the gradient and on what the last update left prove the update finite; the first update
of every call takes the copy. So a learner that runs T steps in one call and one that runs them one
call per step take the copy at different steps, and must agree to the last bit in everything: the
weights, the optimizer's state and step count, the skipped steps. An update that overflows inside a
call must be undone exactly as when it runs alone, and a bound that wrongly proved an overflowing
update finite would surface as an error (the loop checks what a proven update left)."""

import numpy as np
import pytest
from conftest import to_numpy
from hypothesis import HealthCheck, given, settings, strategies as st

import rtrl

T, B, I, O = 8, 2, 3, 2


def make_learner(cell, dtype, optimizer, device="cpu"):
    if cell == "fully_recurrent":
        model = rtrl.FullyRecurrent(4, I, n_outputs=O, seed=2, dtype=dtype, device=device)
    else:
        model = rtrl.RecurrentNet(cell, I, 4, O, seed=2, dtype=dtype, device=device)
    return rtrl.RTRL(model, optimizer=optimizer, batch_size=B, on_nonfinite="skip")


def state_of(learner):
    d = learner.state_dict()
    arrays = {name: to_numpy(value) for name, value in d["parameters"].items()}
    if "optimizer_state" in d:  # plain SGD keeps none
        arrays["optimizer_state"] = to_numpy(d["optimizer_state"])
    arrays["state"] = to_numpy(learner.state)
    return arrays, d["optimizer_step"], dict(learner.stats)


def assert_same_learners(a, b):
    arrays_a, step_a, stats_a = state_of(a)
    arrays_b, step_b, stats_b = state_of(b)
    assert step_a == step_b and stats_a == stats_b
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)


def in_one_call_and_step_by_step(cell, dtype, optimizer, X, D, device="cpu"):
    whole = make_learner(cell, dtype, optimizer, device)
    outputs = to_numpy(whole.run(X, D).outputs)
    stepwise = make_learner(cell, dtype, optimizer, device)
    steps = [to_numpy(stepwise.run(X[t:t + 1], D[t:t + 1]).outputs) for t in range(len(X))]
    np.testing.assert_array_equal(outputs, np.concatenate(steps))
    assert_same_learners(whole, stepwise)
    return whole


def problem(dtype, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(T, B, I)).astype(dtype)
    D = (scale * rng.uniform(-1, 1, size=(T, B, O))).astype(dtype)
    return X, D


@pytest.mark.parametrize("cell", ["rnn", "lstm", "fully_recurrent"])
def test_an_update_that_overflows_inside_a_run_is_undone_as_when_it_runs_alone(cell, device):
    """float32 Adam: at step 4 a finite target of 1e30 gives a gradient whose square overflows the
    second moment; steps 1 to 3 were updates the bounds proved finite, step 4 is not provable."""
    X, D = problem(np.float32)
    D[4] += 1e30
    learner = in_one_call_and_step_by_step(cell, "float32", rtrl.optim.Adam(1e-3), X, D, device)
    assert learner.stats["skipped_steps"] == 1 and learner.stats["last_skipped_step"] == 4
    assert learner.state_dict()["optimizer_step"] == T - 1
    assert np.isfinite(to_numpy(learner.state_dict()["optimizer_state"])).all()


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_an_sgd_step_that_overflows_the_weights_inside_a_run_is_undone(momentum, device):
    """float32 SGD at lr 1e38: steps 0 to 3 have no target (a zero gradient: updates the bounds prove
    finite), then every update with a target would overflow the weights and is undone."""
    X, D = problem(np.float32)
    D[:4] = np.nan
    D[4:] *= 1000
    learner = in_one_call_and_step_by_step("rnn", "float32", rtrl.optim.SGD(1e38, momentum=momentum), X, D,
                                           device)
    assert learner.stats["skipped_steps"] == T - 4 and learner.stats["reset_streams"] == 0
    initial = make_learner("rnn", "float32", rtrl.optim.SGD(1e38), device).model.parameters()
    for name, value in learner.model.parameters().items():
        np.testing.assert_array_equal(to_numpy(value), to_numpy(initial[name]), err_msg=name)


def test_a_loaded_negative_second_moment_is_not_trusted(device):
    """A state file may hold a negative Adam v (untrusted input): its root is NaN, so every update it
    spoils is undone, inside a run as alone, and no bound is ever taken from it."""
    learners = []
    X, D = problem(np.float64)
    for _ in range(2):
        learner = make_learner("rnn", "float64", rtrl.optim.Adam(1e-2), device)
        learner.run(X[:2], D[:2])
        state = learner.state_dict()
        v = to_numpy(state["optimizer_state"]).copy()
        v[1, :3] = -1.0  # row 1 holds v
        state["optimizer_state"] = v
        learner.load_state_dict(state)
        learners.append(learner)
    whole, stepwise = learners
    whole.run(X[2:], D[2:])
    for t in range(2, T):
        stepwise.run(X[t:t + 1], D[t:t + 1])
    assert_same_learners(whole, stepwise)
    assert whole.stats["skipped_steps"] == T - 2  # a NaN root spoils every update


SETTINGS = dict(derandomize=True, deadline=None, max_examples=60,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@settings(**SETTINGS)
@given(kind=st.sampled_from(["sgd", "momentum", "adam"]),
       dtype=st.sampled_from(["float32", "float64"]),
       lr_exponent=st.integers(-4, 300),
       scale_exponent=st.integers(0, 150),
       betas=st.tuples(st.sampled_from([0.0, 0.5, 0.9, 0.999999]), st.sampled_from([0.0, 0.9, 0.999, 0.999999])),
       eps_exponent=st.integers(-300, 0),
       cell=st.sampled_from(["rnn", "gru", "fully_recurrent"]))
def test_one_call_equals_one_call_per_step_near_overflow(kind, dtype, lr_exponent, scale_exponent, betas,
                                                         eps_exponent, cell):
    """Learning rates, targets and Adam's eps across the whole range of the type, overflow included:
    the bounds may prove an update finite only when it is, and proving changes no bit."""
    finfo = np.finfo(dtype)
    lr = min(10.0 ** lr_exponent, float(finfo.max))
    eps = max(10.0 ** eps_exponent, float(finfo.tiny))
    scale = min(10.0 ** scale_exponent, float(finfo.max) / 4)
    if kind == "adam":
        optimizer = rtrl.optim.Adam(lr, betas=betas, eps=eps)
    else:
        optimizer = rtrl.optim.SGD(lr, momentum=0.9 if kind == "momentum" else 0.0)
    X, D = problem(dtype, scale, seed=lr_exponent + scale_exponent)
    in_one_call_and_step_by_step(cell, dtype, optimizer, X, D)
