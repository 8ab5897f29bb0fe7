"""Check windows (DESIGN §11, cpp/include/rtrl/algo/check_window.hpp): on a context that defers its
non-finite checks — the CUDA backend, and the SIMT host backend that mirrors it here — the online
loop checks once per window of steps and runs a window that held a non-finite value again with a
check at every step. Every learner's results are then the same bits as with a check at every step
(window of 1): outputs, losses, parameters, gradients, state, sensitivities and the non-finite
statistics, with NaN inputs, overflowing updates, clipping, epoch mode and on_nonfinite="raise"."""

from __future__ import annotations

import numpy as np
import pytest

import rtrl
from rtrl import _rtrl_simt
from rtrl._backend import Backend

SIMT = Backend("cpu", _rtrl_simt, np)
T_STEPS = 23


@pytest.fixture
def window():
    """Sets the SIMT backend's check window for a test; puts the default back after it."""
    previous = _rtrl_simt._set_check_window(32)
    yield lambda steps: _rtrl_simt._set_check_window(steps)
    _rtrl_simt._set_check_window(previous)


def _models():
    yield "fully_recurrent", lambda: rtrl.FullyRecurrent(5, 3, n_outputs=2, seed=1, dtype="float64")
    yield "rnn", lambda: rtrl.RecurrentNet("rnn", 3, 4, 2, seed=2, dtype="float64")
    yield "lstm-2", lambda: rtrl.RecurrentNet("lstm", 3, 4, 2, num_layers=2, seed=2, dtype="float64")
    yield "gru", lambda: rtrl.RecurrentNet("gru", 3, 4, 2, seed=2, dtype="float64")
    yield "elstm-2", lambda: rtrl.RecurrentNet("elstm", 3, 4, 2, num_layers=2, seed=2, dtype="float64")
    yield "leaky", lambda: rtrl.RecurrentNet("rnn", 3, 4, 2, alpha=0.5, seed=2, dtype="float64")


LEARNERS = {
    "rtrl": lambda m, **kw: rtrl.RTRL(m, **kw),
    "snap": lambda m, **kw: rtrl.SnAp(m, **kw),
    "eprop": lambda m, **kw: rtrl.EProp(m, **kw),
    "rflo": lambda m, **kw: rtrl.RFLO(m, seed=3, **kw),
    "uoro": lambda m, **kw: rtrl.UORO(m, seed=3, **kw),
    "kf": lambda m, **kw: rtrl.KFRTRL(m, seed=3, **kw),
}

SETTINGS = {
    "adam": dict(optimizer=lambda: rtrl.optim.Adam(1e-2)),
    "sgd-momentum-clipped": dict(optimizer=lambda: rtrl.optim.SGD(0.05, momentum=0.9), clip_grad_norm=0.1),
    "epoch": dict(optimizer=lambda: rtrl.optim.SGD(0.1), update="epoch"),
    "overflowing-updates": dict(optimizer=lambda: rtrl.optim.SGD(1e300)),
}


def _data(model, nan_at=None, huge_target_at=None):
    rng = np.random.default_rng(0)
    inputs = model.n_inputs if isinstance(model, rtrl.FullyRecurrent) else model.input_size
    outputs = model.n_outputs if isinstance(model, rtrl.FullyRecurrent) else model.output_size
    X = rng.standard_normal((T_STEPS, 2, inputs))
    Y = rng.uniform(-0.9, 0.9, (T_STEPS, 2, outputs))
    Y[5, 0] = np.nan  # a missing target: not an event
    for t, s in nan_at or ():
        X[t, s, 0] = np.nan
    if huge_target_at is not None:  # finite, but its error overflows: the step's gradient is not finite
        Y[huge_target_at, 1] = 1.7e308
    return X, Y


def _run(make_model, learner, setting, window_steps, window, X, Y, policy):
    window(window_steps)
    model = make_model()
    model._backend = SIMT
    kw = dict(setting, optimizer=setting["optimizer"]())
    lr = LEARNERS[learner](model, batch_size=2, on_nonfinite=policy, **kw)
    replayed = _rtrl_simt._check_windows_replayed()
    try:
        result = lr.run(X, Y)
        raised = None
    except rtrl.NonFiniteError as exc:
        result, raised = exc.result, (exc.step, list(exc.streams))
    if getattr(lr, "update", "realtime") == "epoch" and raised is None:
        lr.apply()
    state = {k: np.asarray(v) for k, v in lr.state_dict().items() if isinstance(v, np.ndarray)}
    return dict(outputs=result.outputs, loss=result.loss, raised=raised, stats=dict(lr.stats),
                params={k: np.asarray(v) for k, v in lr.model.parameters().items()},
                grads={k: np.asarray(v) for k, v in lr.gradients().items()}, state=state,
                replayed=_rtrl_simt._check_windows_replayed() - replayed)


def _assert_same_bits(a, b):
    assert a["raised"] == b["raised"] and a["stats"] == b["stats"]
    for part in ("outputs", "loss"):
        if a[part] is None:
            assert b[part] is None
        else:
            np.testing.assert_array_equal(a[part], b[part], err_msg=part)
    for part in ("params", "grads", "state"):
        assert a[part].keys() == b[part].keys()
        for k in a[part]:
            np.testing.assert_array_equal(a[part][k], b[part][k], err_msg=f"{part} {k}")


def _cases():
    for name, make in _models():
        for learner in LEARNERS:
            if (learner == "kf" and name in ("gru", "elstm-2")) or (learner == "rflo" and name not in ("rnn", "leaky")):
                continue
            yield pytest.param(make, learner, id=f"{name}-{learner}")


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("make,learner", list(_cases()))
def test_windows_give_the_per_step_checks_bits(make, learner, setting, window):
    nan_at = [(9, 1), (17, 0)]  # one window of 4 clean, others not
    X, Y = _data(make(), nan_at)
    every_step = _run(make, learner, SETTINGS[setting], 1, window, X, Y, "skip")
    assert every_step["replayed"] == 0
    for steps in (4, 32):
        windowed = _run(make, learner, SETTINGS[setting], steps, window, X, Y, "skip")
        _assert_same_bits(windowed, every_step)
        assert windowed["replayed"] >= 1  # the windows holding the NaN inputs ran twice
    assert every_step["stats"]["skipped_steps"] >= 2


@pytest.mark.parametrize("make,learner", list(_cases()))
def test_a_clean_run_takes_no_second_pass_and_raise_stops_where_it_did(make, learner, window):
    X, Y = _data(make())
    every_step = _run(make, learner, SETTINGS["adam"], 1, window, X, Y, "raise")
    windowed = _run(make, learner, SETTINGS["adam"], 8, window, X, Y, "raise")
    _assert_same_bits(windowed, every_step)
    assert windowed["replayed"] == 0 and every_step["raised"] is None
    X, Y = _data(make(), huge_target_at=11)  # in the middle of the window [8, 16)
    every_step = _run(make, learner, SETTINGS["adam"], 1, window, X, Y, "raise")
    windowed = _run(make, learner, SETTINGS["adam"], 8, window, X, Y, "raise")
    assert every_step["raised"] is not None and every_step["raised"][0] == 11
    _assert_same_bits(windowed, every_step)
    assert windowed["replayed"] == 1


def test_the_window_copy_is_counted_in_the_workspace():
    args = ("lstm", "tanh", 3, 8, 2, 4, "mse", "mean")
    cpu = rtrl._rtrl_cpu.CellNetConfig(*args, layers=2).layout("exact", True, 2)
    simt = _rtrl_simt.CellNetConfig(*args, layers=2).layout("exact", True, 2)
    n = cpu["n_params"]
    carried = cpu["state"] + cpu["sensitivities"] + 2 * n + 2 * n  # state, P; params, grad; Adam's two rows
    assert simt["workspace"] - cpu["workspace"] == carried
    assert {k: v for k, v in simt.items() if k != "workspace"} == {k: v for k, v in cpu.items() if k != "workspace"}
