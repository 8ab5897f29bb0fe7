"""Bad input to every public entry point: a ValueError/TypeError whose message names the argument
(and, for shapes, the expected shape), and a rejected call on a learner leaves every piece of its
state untouched (DESIGN.md §5).

Tests marked ``LIBRARY BUG`` in a comment fail against the current library on purpose; they
describe the behaviour the contract asks for.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import to_numpy

import rtrl

N_UNITS, N_INPUTS, N_OUTPUTS, BATCH = 4, 2, 2, 3
WIDTH = N_INPUTS + 1 + N_UNITS

LEARNER_KINDS = ["rtrl-realtime-adam", "rtrl-epoch-sgd", "bptt-truncated-adam"]


def make_learner(kind: str, device: str, batch_size: int = BATCH, warm: int = 20):
    """A learner in a non-trivial state: state, sensitivities, gradient and optimizer state all
    nonzero after ``warm`` steps."""
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=3, device=device)
    if kind == "rtrl-realtime-adam":
        learner = rtrl.RTRL(net, optimizer=rtrl.optim.Adam(0.01), batch_size=batch_size)
    elif kind == "rtrl-epoch-sgd":
        learner = rtrl.RTRL(net, optimizer=rtrl.optim.SGD(0.1, momentum=0.9), update="epoch",
                            batch_size=batch_size)
    elif kind == "bptt-truncated-adam":
        learner = rtrl.BPTT(net, optimizer=rtrl.optim.Adam(0.01), truncation=7, batch_size=batch_size)
    else:
        raise AssertionError(kind)
    if warm:
        rng = np.random.default_rng(0)
        X = rng.normal(size=(warm, batch_size, N_INPUTS))
        D = rng.uniform(0.2, 0.8, size=(warm, batch_size, N_OUTPUTS))
        learner.run(X, D)
        if kind == "rtrl-epoch-sgd":  # momentum buffer nonzero, then a pending gradient on top
            learner.apply()
            learner.run(X, D)
    return learner


def snapshot(learner) -> dict:
    """Host copies of every piece of learner state reachable through the public API."""
    sd = learner.state_dict()
    snap = {f"parameters/{k}": to_numpy(v).copy() for k, v in sd["parameters"].items()}
    for k, v in sd.items():
        if k != "parameters":
            snap[f"state_dict/{k}"] = to_numpy(v).copy() if hasattr(v, "shape") else v
    snap["model.weight"] = to_numpy(learner.model.weight).copy()
    snap["learner.state"] = to_numpy(learner.state).copy()
    if hasattr(learner, "sensitivities"):
        snap["learner.sensitivities"] = to_numpy(learner.sensitivities).copy()
    snap.update({f"gradients/{k}": to_numpy(v).copy() for k, v in learner.gradients().items()})
    snap["learner.steps"] = learner.steps
    return snap


def assert_untouched(learner, before: dict) -> None:
    after = snapshot(learner)
    assert after.keys() == before.keys()
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            assert after[key].shape == value.shape, key
            assert np.array_equal(after[key], value), f"{key} changed by a rejected call"
        else:
            assert after[key] == value, f"{key} changed by a rejected call"


def expect_rejected(learner, call, exc, pattern):
    """``call(learner)`` raises ``exc`` with a message matching ``pattern`` and changes nothing."""
    before = snapshot(learner)
    with pytest.raises(exc) as info:
        call(learner)
    assert_untouched(learner, before)  # first: a wrong message is the lesser fault
    if not re.search(pattern, str(info.value)):
        pytest.fail(f"message {str(info.value)!r} does not match {pattern!r}")


def _nan_at(shape, index, value=np.nan):
    a = np.zeros(shape)
    a[index] = value
    return a


X_OK = np.zeros((5, BATCH, N_INPUTS))
D_OK = np.full((5, BATCH, N_OUTPUTS), 0.5)
X_SHAPE = re.escape(f"(5, {BATCH}, {N_INPUTS})")
D_SHAPE = re.escape(f"(5, {BATCH}, {N_OUTPUTS})")

# (id, call, exception, regex the message must match)
RUN_CASES = [
    ("X-ndim1", lambda L: L.run(np.zeros(5)), ValueError, rf"^X: .*\(T, {BATCH}, {N_INPUTS}\)"),
    ("X-ndim4", lambda L: L.run(np.zeros((5, BATCH, N_INPUTS, 1))), ValueError,
     rf"^X: .*\(T, {BATCH}, {N_INPUTS}\)"),
    ("X-scalar", lambda L: L.run(1.0), ValueError, r"^X: "),
    ("X-width", lambda L: L.run(np.zeros((5, BATCH, N_INPUTS + 1))), ValueError, rf"^X: .*{X_SHAPE}"),
    ("X-batch", lambda L: L.run(np.zeros((5, BATCH - 1, N_INPUTS))), ValueError, rf"^X: .*{X_SHAPE}"),
    ("X-unbatched", lambda L: L.run(np.zeros((5, N_INPUTS))), ValueError,
     rf"^X: .*\(T, {BATCH}, {N_INPUTS}\).*batch_size"),
    ("X-complex", lambda L: L.run(np.zeros((5, BATCH, N_INPUTS), complex)), TypeError, r"^X: .*real"),
    ("X-string-array", lambda L: L.run(np.full((5, BATCH, N_INPUTS), "a")), TypeError, r"^X: "),
    ("X-object-array", lambda L: L.run(np.full((5, BATCH, N_INPUTS), None, dtype=object)), TypeError,
     r"^X: "),
    ("X-object-numbers", lambda L: L.run(np.zeros((5, BATCH, N_INPUTS)).astype(object)), TypeError,
     r"^X: "),
    ("X-str", lambda L: L.run("abc"), TypeError, r"^X: "),
    ("X-None", lambda L: L.run(None), TypeError, r"^X: "),
    ("X-ragged", lambda L: L.run([[0.0], [0.0, 1.0]]), (TypeError, ValueError), r"^X: "),
    ("X-nan", lambda L: L.run(_nan_at((5, BATCH, N_INPUTS), (2, 1, 0))), ValueError,
     r"^X: .*step 2, stream 1"),
    ("X-inf", lambda L: L.run(_nan_at((5, BATCH, N_INPUTS), (4, 2, 1), np.inf)), ValueError,
     r"^X: .*step 4, stream 2"),
    ("X-neg-inf", lambda L: L.run(_nan_at((5, BATCH, N_INPUTS), (0, 0, 0), -np.inf)), ValueError,
     r"^X: .*step 0, stream 0"),
    ("targets-width", lambda L: L.run(X_OK, np.zeros((5, BATCH, N_OUTPUTS + 1))), ValueError,
     rf"^targets: .*{D_SHAPE}"),
    ("targets-T", lambda L: L.run(X_OK, np.zeros((4, BATCH, N_OUTPUTS))), ValueError,
     rf"^targets: .*{D_SHAPE}"),
    ("targets-batch", lambda L: L.run(X_OK, np.zeros((5, BATCH + 1, N_OUTPUTS))), ValueError,
     rf"^targets: .*{D_SHAPE}"),
    ("targets-ndim1", lambda L: L.run(X_OK, np.zeros(5)), ValueError, r"^targets: "),
    ("targets-unbatched", lambda L: L.run(X_OK, np.zeros((5, N_OUTPUTS))), ValueError,
     r"^targets: .*batch_size"),
    ("targets-inf", lambda L: L.run(X_OK, _nan_at((5, BATCH, N_OUTPUTS), (3, 2, 1), np.inf)),
     ValueError, r"^targets: .*step 3, stream 2"),
    ("targets-neg-inf", lambda L: L.run(X_OK, _nan_at((5, BATCH, N_OUTPUTS), (1, 0, 0), -np.inf)),
     ValueError, r"^targets: .*step 1, stream 0"),
    ("targets-complex", lambda L: L.run(X_OK, D_OK.astype(complex)), TypeError, r"^targets: "),
    ("targets-string", lambda L: L.run(X_OK, np.full((5, BATCH, N_OUTPUTS), "x")), TypeError,
     r"^targets: "),
    ("targets-object", lambda L: L.run(X_OK, np.full((5, BATCH, N_OUTPUTS), None, dtype=object)),
     TypeError, r"^targets: "),
]

STEP_CASES = [
    ("x-ndim3", lambda L: L.step(np.zeros((1, BATCH, N_INPUTS))), ValueError,
     rf"^x: .*\({BATCH}, {N_INPUTS}\)"),
    ("x-unbatched", lambda L: L.step(np.zeros(N_INPUTS)), ValueError, r"^x: .*batch_size"),
    ("x-None", lambda L: L.step(None), TypeError, r"^x: "),
    ("x-complex", lambda L: L.step(np.zeros((BATCH, N_INPUTS), complex)), TypeError, r"^x: "),
    ("x-string", lambda L: L.step("a"), TypeError, r"^x: "),
    ("target-unbatched", lambda L: L.step(np.zeros((BATCH, N_INPUTS)), np.zeros(N_OUTPUTS)),
     ValueError, r"^target: .*batch_size"),
    ("target-complex", lambda L: L.step(np.zeros((BATCH, N_INPUTS)), np.zeros((BATCH, N_OUTPUTS), complex)),
     TypeError, r"^target: "),
]

# LIBRARY BUG (reported): step() forwards to run(), so the native check names "X"/"targets" and a
# (1, B, .) sequence shape instead of the argument the user passed ("x"/"target", shape (B, .)).
STEP_CASES_NAMING_BUG = [
    ("x-width", lambda L: L.step(np.zeros((BATCH, N_INPUTS + 1))), ValueError,
     rf"^x: .*\({BATCH}, {N_INPUTS}\)"),
    ("x-batch", lambda L: L.step(np.zeros((BATCH + 1, N_INPUTS))), ValueError,
     rf"^x: .*\({BATCH}, {N_INPUTS}\)"),
    ("x-nan", lambda L: L.step(_nan_at((BATCH, N_INPUTS), (1, 0))), ValueError, r"^x: .*stream 1"),
    ("target-width", lambda L: L.step(np.zeros((BATCH, N_INPUTS)), np.zeros((BATCH, N_OUTPUTS + 1))),
     ValueError, rf"^target: .*\({BATCH}, {N_OUTPUTS}\)"),
    ("target-inf", lambda L: L.step(np.zeros((BATCH, N_INPUTS)), _nan_at((BATCH, N_OUTPUTS), (2, 1), np.inf)),
     ValueError, r"^target: .*stream 2"),
]


def _set_weight(value):
    def call(learner):
        learner.model.weight = value
    return call


MODEL_CASES = [
    ("weight-shape", _set_weight(np.zeros((N_UNITS, WIDTH - 1))), ValueError,
     rf"^weight: .*\({N_UNITS}, {WIDTH}\)"),
    ("weight-transposed", _set_weight(np.zeros((WIDTH, N_UNITS))), ValueError,
     rf"^weight: .*\({N_UNITS}, {WIDTH}\)"),
    ("weight-nan", _set_weight(_nan_at((N_UNITS, WIDTH), (1, 2))), ValueError, r"^weight: .*finite"),
    ("weight-inf", _set_weight(_nan_at((N_UNITS, WIDTH), (0, 0), np.inf)), ValueError, r"^weight: .*finite"),
    ("weight-None", _set_weight(None), TypeError, r"^weight: "),
    ("weight-complex", _set_weight(np.zeros((N_UNITS, WIDTH), complex)), TypeError, r"^weight: "),
    ("weight-string", _set_weight("w"), TypeError, r"^weight: "),
    ("load_parameters-missing", lambda L: L.model.load_parameters({}), ValueError,
     r"^params: .*missing.*weight"),
    ("load_parameters-unknown",
     lambda L: L.model.load_parameters({"weight": np.ones((N_UNITS, WIDTH)), "bias": np.ones(N_UNITS)}),
     ValueError, r"^params: .*unknown.*bias"),
    ("load_parameters-shape", lambda L: L.model.load_parameters({"weight": np.ones((N_UNITS, 3))}),
     ValueError, rf"^weight: .*\({N_UNITS}, {WIDTH}\)"),
    ("load_parameters-not-mapping", lambda L: L.model.load_parameters([np.ones((N_UNITS, WIDTH))]),
     TypeError, r"^params: "),
]

RESET_CASES = [
    ("streams-99", lambda L: L.reset(streams=[99]), ValueError, rf"^streams: .*\[0, {BATCH}\).*99"),
    ("streams-valid-and-99", lambda L: L.reset(streams=[0, 99]), ValueError, r"^streams: "),
    ("streams-int-out-of-range", lambda L: L.reset(streams=BATCH), ValueError, r"^streams: "),
    ("streams-too-negative", lambda L: L.reset(streams=[-BATCH - 1]), ValueError, r"^streams: "),
    ("streams-float", lambda L: L.reset(streams=1.5), TypeError, r"^streams: "),
    ("streams-string", lambda L: L.reset(streams="0"), TypeError, r"^streams: "),
    ("streams-2d", lambda L: L.reset(streams=[[0]]), TypeError, r"^streams: "),
]


def _bad_state_dict(mutate):
    def call(learner):
        d = learner.state_dict()
        mutate(d)
        learner.load_state_dict(d)
    return call


def _set(key, value):
    def mutate(d):
        d[key] = value
    return mutate


def _delete(key):
    def mutate(d):
        del d[key]
    return mutate


STATE_DICT_CASES = [
    ("state-shape", _bad_state_dict(_set("state", np.zeros((BATCH + 1, N_UNITS)))), ValueError,
     rf"^state: .*\({BATCH}, {N_UNITS}\)"),
    ("grad-shape", _bad_state_dict(_set("grad", np.zeros((N_UNITS, WIDTH + 1)))), ValueError,
     rf"^grad: .*\({N_UNITS}, {WIDTH}\)"),
    ("optimizer_state-shape", _bad_state_dict(_set("optimizer_state", np.zeros((2, 1, 1)))), ValueError,
     r"^optimizer_state: expected shape"),
    ("parameters-shape", _bad_state_dict(_set("parameters", {"weight": np.zeros((N_UNITS, 1))})), ValueError,
     rf"^weight: .*\({N_UNITS}, {WIDTH}\)"),
    ("parameters-missing", _bad_state_dict(_set("parameters", {})), ValueError, r"^params: .*weight"),
    ("missing-state", _bad_state_dict(_delete("state")), ValueError, r"^state_dict: .*state"),
    ("missing-steps", _bad_state_dict(_delete("steps")), ValueError, r"^state_dict: .*steps"),
    ("not-a-mapping", lambda L: L.load_state_dict([1, 2]), TypeError, r"^state_dict: "),
    ("state-complex", _bad_state_dict(_set("state", np.zeros((BATCH, N_UNITS), complex))), TypeError,
     r"^state: "),
]

RTRL_STATE_DICT_CASES = [
    ("sensitivities-shape",
     _bad_state_dict(_set("sensitivities", np.zeros((BATCH, N_UNITS, N_UNITS, WIDTH)))), ValueError,
     rf"^sensitivities: .*\({N_UNITS}, {BATCH}, {N_UNITS}, {WIDTH}\)"),
    ("missing-sensitivities", _bad_state_dict(_delete("sensitivities")), ValueError,
     r"^state_dict: .*sensitivities"),
]


def _ids(cases):
    return [c[0] for c in cases]


def _params(cases):
    return [c[1:] for c in cases]


@pytest.fixture(params=LEARNER_KINDS)
def learner(request, device):
    return make_learner(request.param, device)


@pytest.mark.parametrize("call, exc, pattern", _params(RUN_CASES), ids=_ids(RUN_CASES))
def test_run_rejects_bad_input(learner, call, exc, pattern):
    expect_rejected(learner, call, exc, pattern)


@pytest.mark.parametrize("call, exc, pattern", _params(STEP_CASES), ids=_ids(STEP_CASES))
def test_step_rejects_bad_input(learner, call, exc, pattern):
    expect_rejected(learner, call, exc, pattern)


# LIBRARY BUG (reported): see STEP_CASES_NAMING_BUG (one learner kind: the code path is shared).
@pytest.mark.parametrize("call, exc, pattern", _params(STEP_CASES_NAMING_BUG), ids=_ids(STEP_CASES_NAMING_BUG))
def test_step_errors_name_x_and_target(device, call, exc, pattern):
    expect_rejected(make_learner("rtrl-realtime-adam", device), call, exc, pattern)


@pytest.mark.parametrize("call, exc, pattern", _params(MODEL_CASES), ids=_ids(MODEL_CASES))
def test_model_parameter_assignment_rejects_bad_values(learner, call, exc, pattern):
    expect_rejected(learner, call, exc, pattern)


@pytest.mark.parametrize("call, exc, pattern", _params(RESET_CASES), ids=_ids(RESET_CASES))
def test_reset_rejects_bad_streams(learner, call, exc, pattern):
    expect_rejected(learner, call, exc, pattern)


# LIBRARY BUG (reported): np.asarray([]) is float64, so an empty list of streams is refused with
# "streams: expected an int or a sequence of ints, got []" instead of resetting nothing.
def test_reset_empty_streams_is_a_no_op(learner):
    before = snapshot(learner)
    learner.reset(streams=[])
    assert_untouched(learner, before)


@pytest.mark.parametrize("call, exc, pattern", _params(STATE_DICT_CASES), ids=_ids(STATE_DICT_CASES))
def test_load_state_dict_rejects_bad_dicts(learner, call, exc, pattern):
    if "optimizer_state" in pattern and "optimizer_state" not in learner.state_dict():
        pytest.skip("this learner's optimizer keeps no state")
    expect_rejected(learner, call, exc, pattern)


@pytest.mark.parametrize("call, exc, pattern", _params(RTRL_STATE_DICT_CASES), ids=_ids(RTRL_STATE_DICT_CASES))
@pytest.mark.parametrize("kind", ["rtrl-realtime-adam", "rtrl-epoch-sgd"])
def test_load_state_dict_rejects_bad_sensitivities(device, kind, call, exc, pattern):
    expect_rejected(make_learner(kind, device), call, exc, pattern)


def test_load_state_dict_from_learner_with_other_batch_size(device):
    learner = make_learner("rtrl-realtime-adam", device)
    other = make_learner("rtrl-realtime-adam", device, batch_size=BATCH + 1)
    expect_rejected(learner, lambda L: L.load_state_dict(other.state_dict()), ValueError,
                    rf"^(state|sensitivities): .*{BATCH}")


# LIBRARY BUG (reported): the counters are converted with int() only after the arrays were copied
# in, so a bad counter leaves the learner half-loaded (its state overwritten).
@pytest.mark.parametrize("key", ["steps", "optimizer_step"])
def test_load_state_dict_bad_counter_leaves_state_untouched(device, key):
    learner = make_learner("rtrl-realtime-adam", device)

    def call(L):
        d = L.state_dict()
        d["state"] = d["state"] + 1  # would be visible if copied in
        d[key] = "not a number"
        L.load_state_dict(d)

    expect_rejected(learner, call, (TypeError, ValueError), rf"{key}")


# LIBRARY BUG (reported): load_state_dict accepts non-finite state/sensitivities, which then make
# every later output NaN (load_parameters does reject non-finite parameters).
@pytest.mark.parametrize("key", ["state", "sensitivities", "optimizer_state"])
def test_load_state_dict_rejects_non_finite_arrays(device, key):
    learner = make_learner("rtrl-realtime-adam", device)

    def call(L):
        d = L.state_dict()
        arr = to_numpy(d[key]).copy()
        arr.reshape(-1)[0] = np.nan
        d[key] = arr
        L.load_state_dict(d)

    expect_rejected(learner, call, ValueError, rf"^{key}: .*finite")


# ------------------------------------------------------------------------------------------------
# a bad value deep inside a long sequence: rejected before anything is updated


DEEP_KINDS = {
    "rtrl-realtime-lr": lambda net: rtrl.RTRL(net, lr=0.5, batch_size=BATCH),
    "rtrl-epoch-lr": lambda net: rtrl.RTRL(net, lr=0.5, update="epoch", batch_size=BATCH),
    "bptt-lr": lambda net: rtrl.BPTT(net, lr=0.5, batch_size=BATCH),
    # LIBRARY BUG (reported): BPTT with truncation validates chunk by chunk, so the chunks before
    # the bad one are run and applied (weights, state, steps change) and the error names the step
    # within the chunk (0) instead of the step within X (150).
    "bptt-truncated-lr": lambda net: rtrl.BPTT(net, lr=0.5, truncation=50, batch_size=BATCH),
}


def _deep_learner(kind, device):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=7, device=device)
    learner = DEEP_KINDS[kind](net)
    rng = np.random.default_rng(1)
    learner.run(rng.normal(size=(10, BATCH, N_INPUTS)), rng.uniform(0.2, 0.8, (10, BATCH, N_OUTPUTS)))
    return learner


@pytest.mark.parametrize("kind", list(DEEP_KINDS))
def test_nan_deep_in_X_rejected_before_any_update(device, kind):
    learner = _deep_learner(kind, device)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, BATCH, N_INPUTS))
    D = rng.uniform(0.2, 0.8, (200, BATCH, N_OUTPUTS))
    X[150, 1, 0] = np.nan
    expect_rejected(learner, lambda L: L.run(X, D), ValueError, r"^X: .*step 150\b.*stream 1\b")


@pytest.mark.parametrize("kind", list(DEEP_KINDS))
def test_inf_deep_in_targets_rejected_before_any_update(device, kind):
    learner = _deep_learner(kind, device)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, BATCH, N_INPUTS))
    D = rng.uniform(0.2, 0.8, (200, BATCH, N_OUTPUTS))
    D[rng.random(D.shape) < 0.3] = np.nan  # NaN (no target) is fine ...
    D[173, 2, 1] = -np.inf  # ... inf is not
    expect_rejected(learner, lambda L: L.run(X, D), ValueError, r"^targets: .*step 173\b.*stream 2\b")


@pytest.mark.parametrize("kind", ["rtrl", "bptt"])
def test_nan_targets_mean_no_target(device, kind):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=7, device=device)
    learner = (rtrl.RTRL(net, update="epoch", batch_size=BATCH) if kind == "rtrl"
               else rtrl.BPTT(net, batch_size=BATCH))
    X = np.random.default_rng(4).normal(size=(30, BATCH, N_INPUTS))
    result = learner.run(X, np.full((30, BATCH, N_OUTPUTS), np.nan))
    assert np.array_equal(to_numpy(result.loss), np.zeros(30))
    assert not np.any(to_numpy(learner.gradients()["weight"]))
    assert np.all(np.isfinite(to_numpy(result.outputs)))
    D = np.full((30, BATCH, N_OUTPUTS), np.nan)
    D[5, 1, 0] = 0.9
    result = learner.run(X, D)
    loss = to_numpy(result.loss)
    assert loss[5] > 0 and np.count_nonzero(loss) == 1
    assert np.any(to_numpy(learner.gradients()["weight"]))


def test_unbatched_input_with_batch_size_one_checks_width(device):
    learner = make_learner("rtrl-realtime-adam", device, batch_size=1)
    expect_rejected(learner, lambda L: L.run(np.zeros((5, N_INPUTS + 1))), ValueError,
                    rf"^X: .*{N_INPUTS}\)")
    expect_rejected(learner, lambda L: L.run(np.zeros((5, N_INPUTS)), np.zeros((5, N_OUTPUTS + 1))),
                    ValueError, rf"^targets: .*{N_OUTPUTS}\)")
    expect_rejected(learner, lambda L: L.run(np.zeros((5, N_INPUTS)), np.zeros((6, N_OUTPUTS))),
                    ValueError, rf"^targets: .*\(5, 1, {N_OUTPUTS}\)")


# ------------------------------------------------------------------------------------------------
# constructors


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(activation="relu"), ValueError, r"^activation: .*logistic"),
    (dict(activation=None), ValueError, r"^activation: "),
    (dict(n_outputs=N_UNITS + 1), ValueError, r"^n_outputs: "),
    (dict(n_outputs=-1), ValueError, r"^n_outputs: "),
    (dict(n_outputs=1.5), ValueError, r"^n_outputs: "),
    (dict(dtype="float16"), TypeError, r"^dtype: .*float32"),
    (dict(dtype="int32"), TypeError, r"^dtype: "),
    (dict(dtype="bogus"), TypeError, r"^dtype: "),
    (dict(dtype=np.complex64), TypeError, r"^dtype: "),
    (dict(device="gpu"), ValueError, r"^device: .*cpu"),
    (dict(device=None), ValueError, r"^device: "),
    (dict(device=0), ValueError, r"^device: "),
    (dict(init_scale=-1.0), ValueError, r"^init_scale: "),
    (dict(init_scale=float("nan")), ValueError, r"^init_scale: "),
], ids=lambda v: ",".join(f"{k}={v[k]!r}" for k in v) if isinstance(v, dict) else "")
def test_model_constructor_rejects(kwargs, exc, pattern):
    base = dict(n_outputs=N_OUTPUTS, device="cpu")
    with pytest.raises(exc, match=pattern):
        rtrl.FullyRecurrent(N_UNITS, N_INPUTS, **{**base, **kwargs})


@pytest.mark.parametrize("args, exc, pattern", [
    ((0, 2), ValueError, r"^n_units: "),
    ((-3, 2), ValueError, r"^n_units: "),
    ((2.5, 2), TypeError, r"^n_units: "),
    (("4", 2), TypeError, r"^n_units: "),
    ((True, 2), TypeError, r"^n_units: "),
    ((4, -1), ValueError, r"^n_inputs: "),
    ((4, None), TypeError, r"^n_inputs: "),
], ids=lambda v: repr(v) if isinstance(v, tuple) else "")
def test_model_constructor_rejects_sizes(args, exc, pattern):
    with pytest.raises(exc, match=pattern):
        rtrl.FullyRecurrent(*args, device="cpu")


# LIBRARY BUG (reported): np.dtype(None) is float64, so dtype=None silently gives a float64 model
# although the documented default is float32.
def test_model_dtype_none_is_not_silently_float64():
    try:
        net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, dtype=None, device="cpu")
    except TypeError as exc:
        assert str(exc).startswith("dtype: ")
    else:
        assert net.dtype == np.float32


LEARNER_CTOR_CASES = [
    ("loss", dict(loss="l1"), ValueError, r"^loss: .*mse"),
    ("loss-cross-entropy", dict(loss="cross_entropy"), ValueError, r"loss"),
    ("reduction", dict(reduction="max"), ValueError, r"^reduction: .*mean"),
    ("lr-and-optimizer", dict(lr=0.1, optimizer=rtrl.optim.SGD(0.1)), ValueError, r"^lr and optimizer"),
    ("lr-negative", dict(lr=-0.1), ValueError, r"^lr: "),
    ("lr-zero", dict(lr=0), ValueError, r"^lr: "),
    ("lr-nan", dict(lr=float("nan")), ValueError, r"^lr: "),
    ("lr-inf", dict(lr=float("inf")), ValueError, r"^lr: "),
    ("lr-string", dict(lr="0.1"), TypeError, r"^lr: "),
    ("lr-bool", dict(lr=True), TypeError, r"^lr: "),
    ("clip-negative", dict(clip_grad_norm=-1.0), ValueError, r"^clip_grad_norm: "),
    ("clip-zero", dict(clip_grad_norm=0.0), ValueError, r"^clip_grad_norm: "),
    ("clip-nan", dict(clip_grad_norm=float("nan")), ValueError, r"^clip_grad_norm: "),
    ("clip-inf", dict(clip_grad_norm=float("inf")), ValueError, r"^clip_grad_norm: "),
    ("clip-string", dict(clip_grad_norm="1"), TypeError, r"^clip_grad_norm: "),
    ("batch_size-zero", dict(batch_size=0), ValueError, r"^batch_size: "),
    ("batch_size-negative", dict(batch_size=-2), ValueError, r"^batch_size: "),
    ("batch_size-float", dict(batch_size=1.5), (TypeError, ValueError), r"^batch_size: "),
    ("batch_size-string", dict(batch_size="2"), (TypeError, ValueError), r"^batch_size: "),
    ("batch_size-bool", dict(batch_size=True), (TypeError, ValueError), r"^batch_size: "),
    ("optimizer-string", dict(optimizer="adam"), TypeError, r"^optimizer: "),
]


@pytest.mark.parametrize("cls", ["RTRL", "BPTT"])
@pytest.mark.parametrize("kwargs, exc, pattern", _params(LEARNER_CTOR_CASES), ids=_ids(LEARNER_CTOR_CASES))
def test_learner_constructor_rejects(cls, kwargs, exc, pattern):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=0, device="cpu")
    weight = net.weight.copy()
    with pytest.raises(exc, match=pattern):
        getattr(rtrl, cls)(net, **kwargs)
    assert np.array_equal(net.weight, weight)


# LIBRARY BUG (reported, minor): flags go through bool(), so teacher_forcing="no" or bias="false"
# silently mean True.
@pytest.mark.parametrize("make, name", [
    (lambda net: rtrl.RTRL(net, teacher_forcing="no"), "teacher_forcing"),
    (lambda net: rtrl.BPTT(net, teacher_forcing="no"), "teacher_forcing"),
    (lambda net: rtrl.FullyRecurrent(N_UNITS, N_INPUTS, bias="false", device="cpu"), "bias"),
], ids=["rtrl-teacher_forcing", "bptt-teacher_forcing", "model-bias"])
def test_flags_must_be_bool(make, name):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, device="cpu")
    with pytest.raises(TypeError, match=rf"^{name}: "):
        make(net)


@pytest.mark.parametrize("update", ["never", "Realtime", None])
def test_rtrl_rejects_unknown_update(update):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, device="cpu")
    with pytest.raises(ValueError, match=r"^update: .*realtime"):
        rtrl.RTRL(net, update=update)


@pytest.mark.parametrize("truncation", [0, -1, 2.5, "5", True])
def test_bptt_rejects_bad_truncation(truncation):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, device="cpu")
    with pytest.raises(ValueError, match=r"^truncation: "):
        rtrl.BPTT(net, truncation=truncation)


@pytest.mark.parametrize("model", [None, "net", np.zeros((4, 7))])
@pytest.mark.parametrize("cls", ["RTRL", "BPTT"])
def test_learner_rejects_non_model(cls, model):
    with pytest.raises(TypeError, match=r"^model: "):
        getattr(rtrl, cls)(model)


@pytest.mark.parametrize("make, exc, pattern", [
    (lambda: rtrl.optim.SGD(-0.1), ValueError, r"^lr: "),
    (lambda: rtrl.optim.SGD(0.1, momentum=1.0), ValueError, r"^momentum: "),
    (lambda: rtrl.optim.SGD(0.1, momentum=-0.5), ValueError, r"^momentum: "),
    (lambda: rtrl.optim.Adam(0), ValueError, r"^lr: "),
    (lambda: rtrl.optim.Adam(0.1, betas=(0.9, 1.0)), ValueError, r"^betas: "),
    (lambda: rtrl.optim.Adam(0.1, betas=0.9), TypeError, r"^betas: "),
    (lambda: rtrl.optim.Adam(0.1, eps=0), ValueError, r"^eps: "),
    (lambda: rtrl.optim.Adam("fast"), TypeError, r"^lr: "),
], ids=["sgd-lr", "sgd-momentum-1", "sgd-momentum-neg", "adam-lr", "adam-beta2", "adam-betas-scalar",
        "adam-eps", "adam-lr-string"])
def test_optimizer_constructor_rejects(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


# LIBRARY BUG (reported): _positive() accepts only Python int/float, so NumPy scalars other than
# float64 (a float subclass) are refused: lr=np.float32(0.1) raises "lr: expected a number, got float32".
@pytest.mark.parametrize("value", [np.float32(0.25), np.int64(1)], ids=["float32", "int64"])
def test_numpy_scalar_hyperparameters_accepted(value):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, device="cpu")
    learner = rtrl.RTRL(net, lr=value, clip_grad_norm=value)
    assert learner.optimizer.lr == float(value)
    assert rtrl.optim.Adam(value).lr == float(value)


def test_apply_without_optimizer_raises_and_keeps_gradient(device):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=0, device=device)
    learner = rtrl.RTRL(net, update="epoch", batch_size=BATCH)
    learner.run(np.ones((5, BATCH, N_INPUTS)), np.full((5, BATCH, N_OUTPUTS), 0.9))
    expect_rejected(learner, lambda L: L.apply(), RuntimeError, r"optimizer")
    assert np.any(to_numpy(learner.gradients()["weight"]))


# ------------------------------------------------------------------------------------------------
# devices


def test_device_cuda_unavailable_says_why():
    if rtrl.cuda_available():
        pytest.skip("a CUDA device is available here")
    reason = rtrl.info()["cuda"]["reason"]
    assert reason
    with pytest.raises(RuntimeError) as info:
        rtrl.FullyRecurrent(N_UNITS, N_INPUTS, device="cuda")
    message = str(info.value)
    assert "cuda" in message and reason in message and "cpu" in message
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, device="cpu")
    with pytest.raises(RuntimeError, match="cuda"):
        net.to("cuda")


def test_device_auto_runs_where_available():
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=0)
    assert net.device == ("cuda" if rtrl.cuda_available() else "cpu")
    learner = rtrl.RTRL(net, lr=0.1)
    out = learner.run(np.zeros((3, N_INPUTS))).outputs
    assert out.shape == (3, N_OUTPUTS)
    if net.device == "cpu":
        assert isinstance(out, np.ndarray)


def test_cpu_model_refuses_device_arrays():
    class FakeDeviceArray:
        __cuda_array_interface__ = {"shape": (5, N_INPUTS), "typestr": "<f4", "data": (0, False),
                                    "version": 3}

    learner = make_learner("rtrl-realtime-adam", "cpu", batch_size=1)
    expect_rejected(learner, lambda L: L.run(FakeDeviceArray()), TypeError, r"^X: .*CUDA")
