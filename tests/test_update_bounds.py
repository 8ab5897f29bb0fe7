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
from rtrl._backend import backend

T, B, I, O = 8, 2, 3, 2
CORE = backend("cpu").core


def make_learner(cell, dtype, optimizer, device="cpu", clip=None):
    if cell == "fully_recurrent":
        model = rtrl.FullyRecurrent(4, I, n_outputs=O, seed=2, dtype=dtype, device=device)
    else:
        model = rtrl.RecurrentNet(cell, I, 4, O, seed=2, dtype=dtype, device=device)
    return rtrl.RTRL(model, optimizer=optimizer, batch_size=B, on_nonfinite="skip", clip_grad_norm=clip)


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


def in_one_call_and_step_by_step(cell, dtype, optimizer, X, D, device="cpu", clip=None):
    whole = make_learner(cell, dtype, optimizer, device, clip)
    outputs = to_numpy(whole.run(X, D).outputs)
    stepwise = make_learner(cell, dtype, optimizer, device, clip)
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
       scale_exponent=st.integers(0, 170),
       betas=st.tuples(st.sampled_from([0.0, 0.5, 0.9, 0.999999]), st.sampled_from([0.0, 0.9, 0.999, 0.999999])),
       eps_exponent=st.integers(-300, 0),
       cell=st.sampled_from(["rnn", "lstm", "gru", "fully_recurrent"]),
       clip=st.sampled_from([None, 1.0]))
def test_one_call_equals_one_call_per_step_near_overflow(kind, dtype, lr_exponent, scale_exponent, betas,
                                                         eps_exponent, cell, clip):
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
    in_one_call_and_step_by_step(cell, dtype, optimizer, X, D, clip=clip)


# The proof itself (update_stays_finite, bound for the tests as the CPU module's _update_stays_finite).

def config(kind, lr, momentum=0.0, betas=(0.9, 0.999), eps=1e-8, clip=0.0):
    return CORE.OptimizerConfig(kind, lr, momentum=momentum, beta1=betas[0], beta2=betas[1], eps=eps,
                                max_grad_norm=clip)


def proves(optimizer, step, state_bound, grad_bound, dtype):
    return CORE._update_stays_finite(optimizer, step, float(state_bound), float(grad_bound),
                                     np.dtype(dtype).itemsize)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ordinary_updates_are_proven_finite(dtype):
    for optimizer in (config("adam", 1e-3), config("sgd", 0.1), config("sgd", 0.1, momentum=0.9)):
        for step in (1, 10, 10 ** 6):
            assert proves(optimizer, step, 10.0, 1e3, dtype)
    tiny = np.finfo(dtype).tiny  # the smallest normal eps still proves an update of nothing
    assert proves(config("adam", 1e-3, eps=tiny), 1, 0.0, 0.0, dtype)


INF = float("inf")
REFUSED = [
    ("no bound on the state yet", "float32", config("adam", 1e-3), 1.0 * INF, 1.0),
    ("no bound on the gradient", "float64", config("sgd", 0.1), 1.0, INF),
    ("a NaN bound", "float64", config("sgd", 0.1), float("nan"), 1.0),
    ("the gradient's square overflows", "float32", config("adam", 1e-3), 1.0, 1e19),
    ("the gradient's square overflows", "float64", config("adam", 1e-3), 1.0, 1e154),
    ("a weight near the largest float", "float32", config("sgd", 0.1), 1e38, 1.0),
    ("lr g overflows", "float32", config("sgd", 1e30), 1.0, 1e9),
    ("momentum v + g overflows", "float32", config("sgd", 1e-3, momentum=0.9), 3e37, 3e37),
    ("an lr beyond the type", "float32", config("sgd", 1e39), 1.0, 0.0),
    ("a subnormal eps (flushed to zero on some CPUs)", "float64", config("adam", 1e-3, eps=1e-310), 0.0, 0.0),
    ("a subnormal eps (flushed to zero on some CPUs)", "float32", config("adam", 1e-3, eps=1e-40), 0.0, 0.0),
    ("beta1 = 1: no bias correction", "float64", config("adam", 1e-3, betas=(1.0, 0.999)), 1.0, 1.0),
    ("beta2 = 1: no bias correction", "float64", config("adam", 1e-3, betas=(0.9, 1.0)), 1.0, 1.0),
    ("a tiny eps scales the step past the type", "float32", config("adam", 1.0, eps=1e-37), 1.0, 1.0),
]


@pytest.mark.parametrize("why, dtype, optimizer, state_bound, grad_bound", REFUSED,
                         ids=[f"{c[0]}-{c[1]}" for c in REFUSED])
def test_what_could_overflow_is_not_proven(why, dtype, optimizer, state_bound, grad_bound):
    assert not proves(optimizer, 1, state_bound, grad_bound, dtype), why


def worst_case_arrays(state_bound, grad_bound, dtype, state_rows):
    """Every combination of the extremes an update could read within the bounds: parameter and
    state +-bound (and 0), v in {bound, 0}, gradient +-bound and 0."""
    s, g = dtype(state_bound), dtype(grad_bound)
    grid = np.array(np.meshgrid([s, -s], [s, -s, 0], [s, 0], [g, -g, 0], indexing="ij"), dtype=dtype)
    p, m, v, grad = (np.ascontiguousarray(a.ravel()) for a in grid)
    state = np.ascontiguousarray(np.stack([m, v])[:state_rows]) if state_rows else None
    return p, grad, state


@settings(derandomize=True, deadline=None, max_examples=400)
@given(kind=st.sampled_from(["sgd", "momentum", "adam"]),
       dtype=st.sampled_from([np.float32, np.float64]),
       lr=st.floats(1e-6, 1e300),
       eps=st.floats(1e-310, 1e3),
       betas=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
       step=st.integers(1, 10 ** 9),
       state_exponent=st.floats(-40, 308), grad_exponent=st.floats(-40, 308),
       clip=st.sampled_from([0.0, 1.0]))
def test_a_proven_update_stays_finite_on_the_worst_case_values(kind, dtype, lr, eps, betas, step, state_exponent,
                                                                grad_exponent, clip):
    """Whenever the proof holds, the update of every extreme the bounds allow leaves finite values
    (the core's own update, which reports any non-finite result)."""
    big = float(np.finfo(dtype).max)
    state_bound = float(dtype(min(10.0 ** state_exponent, big)))
    grad_bound = float(dtype(min(10.0 ** grad_exponent, big)))
    optimizer = config("adam" if kind == "adam" else "sgd", lr, momentum=0.9 if kind == "momentum" else 0.0,
                       betas=betas, eps=eps, clip=clip)
    if not proves(optimizer, step, state_bound, grad_bound, dtype):
        return
    param, grad, state = worst_case_arrays(state_bound, grad_bound, dtype, optimizer.state_rows)
    assert CORE.optimizer_step(optimizer, step, param, grad, state)
    assert np.isfinite(param).all() and (state is None or np.isfinite(state).all())
