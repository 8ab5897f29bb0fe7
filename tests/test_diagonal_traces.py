"""SnAp-1, e-prop and RFLO (DESIGN §9): exact where the recurrence is element-wise, equal to the
independent float64 reference of tests/reference/diagonal_traces.py (single and stacked, B > 1, target
gaps, real time with Adam and clipping, epoch mode), resumable bit-identically, bit-identical over
thread counts, learning on a small task, and refusing what they do not support."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import to_numpy
from reference.diagonal_traces import fully_recurrent_traces, realtime_traces
from reference.optimizers import NumpyAdam, NumpySGD, clip_like_torch

import rtrl

CELLS = [("rnn", "tanh", 1.0), ("rnn", "relu", 1.0), ("rnn", "tanh", 0.4), ("lstm", "tanh", 1.0),
         ("gru", "tanh", 1.0), ("elstm", "tanh", 1.0)]
CELL_IDS = [f"{c}-{nl}-a{a}" for c, nl, a in CELLS]
LEARNERS = {"snap": (rtrl.SnAp, "snap1", {}), "eprop": (rtrl.EProp, "eprop", {}),
            "eprop-random": (rtrl.EProp, "eprop", {"feedback": "random", "seed": 7})}


def _data(rng, T, B, I, O, loss, gaps=0.3):
    X = rng.normal(size=(T, B, I))
    if loss == "mse":
        Y = rng.normal(size=(T, B, O))
        Y[rng.random(Y.shape) < gaps] = np.nan
    else:
        Y = rng.integers(-1, O, size=(T, B))
    return X, Y


def _diagonal_net(cell, nonlinearity, alpha, H=4):
    net = rtrl.RecurrentNet(cell, 3, H, 2, nonlinearity=nonlinearity, alpha=alpha, seed=2, dtype="float64",
                            device="cpu")
    p = net.parameters()
    w = p["weight_hh"].copy()
    for g in range(net.gates if w.ndim == 2 else 0):  # the eLSTM's is element-wise already
        w[g * H:(g + 1) * H] = np.diag(np.diag(w[g * H:(g + 1) * H])) * 2.0
    p["weight_hh"] = w
    net.load_parameters(p)
    return net


@pytest.mark.parametrize("cell,nonlinearity,alpha", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_snap_equals_exact_rtrl_when_the_recurrent_weights_are_diagonal(cell, nonlinearity, alpha, loss):
    rng = np.random.default_rng(1)
    X, Y = _data(rng, 12, 3, 3, 2, loss)
    grads, runs = [], []
    for cls in (rtrl.RTRL, rtrl.SnAp):
        learner = cls(_diagonal_net(cell, nonlinearity, alpha), update="epoch", batch_size=3, loss=loss)
        runs.append(learner.run(X, Y))
        grads.append(learner.gradients())
    np.testing.assert_array_equal(runs[0].outputs, runs[1].outputs)
    for k in grads[0]:
        np.testing.assert_allclose(grads[1][k], grads[0][k], rtol=1e-12, atol=1e-13, err_msg=k)
    assert max(np.abs(g).max() for g in grads[0].values()) > 1e-3


def test_snap_differs_from_exact_rtrl_on_a_full_recurrent_matrix():
    rng = np.random.default_rng(1)
    X, Y = _data(rng, 12, 2, 3, 2, "mse")
    net = rtrl.RecurrentNet("lstm", 3, 4, 2, seed=2, dtype="float64", device="cpu")
    exact, snap = rtrl.RTRL(net, update="epoch", batch_size=2), rtrl.SnAp(net, update="epoch", batch_size=2)
    exact.run(X, Y)
    snap.run(X, Y)
    assert np.abs(exact.gradients()["weight_hh"] - snap.gradients()["weight_hh"]).max() > 1e-4


@pytest.mark.parametrize("teacher_forcing", [False, True])
def test_snap_equals_exact_rtrl_on_a_fully_recurrent_net_with_a_diagonal_recurrent_block(teacher_forcing):
    rng = np.random.default_rng(2)
    net = rtrl.FullyRecurrent(5, 2, n_outputs=2, seed=3, dtype="float64", device="cpu")
    W = net.weight.copy()
    W[:, 3:] = np.diag(np.diag(W[:, 3:])) * 3.0
    net.weight = W
    X, Y = rng.normal(size=(15, 3, 2)), rng.uniform(0.2, 0.8, size=(15, 3, 2))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    grads = []
    for cls in (rtrl.RTRL, rtrl.SnAp):
        learner = cls(net, update="epoch", batch_size=3, teacher_forcing=teacher_forcing)
        learner.run(X, Y)
        grads.append(learner.gradients()["weight"])
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-14)


def _reference_run(kind, net, X, Y, *, rule, optimizer, loss, feedback=None, clip=None):
    params = {k: to_numpy(v).copy() for k, v in net.parameters().items()}
    if clip is not None:
        inner = optimizer

        class Clipped:
            def step(self, p, g):
                return inner.step(p, clip_like_torch(g, clip)[0])
        optimizer = Clipped()
    return realtime_traces(net.cell, params, X, Y, layers=net.num_layers, rule=rule, optimizer=optimizer,
                           nonlinearity=net.nonlinearity, alpha=net.alpha, loss=loss, feedback=feedback)


@pytest.mark.parametrize("learner", list(LEARNERS))
@pytest.mark.parametrize("cell,nonlinearity,alpha", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_realtime_adam_equals_the_reference(learner, cell, nonlinearity, alpha, layers, loss):
    cls, rule, extra = LEARNERS[learner]
    rng = np.random.default_rng(3)
    X, Y = _data(rng, 7, 2, 3, 2, loss)
    net = rtrl.RecurrentNet(cell, 3, 3, 2, num_layers=layers, nonlinearity=nonlinearity, alpha=alpha, seed=4,
                            dtype="float64", device="cpu")
    ours = cls(net, optimizer=rtrl.optim.Adam(0.05), batch_size=2, loss=loss, **extra)
    feedback = to_numpy(ours.state_dict()["feedback"]) if "feedback" in extra else None
    out, losses, params, _ = _reference_run(cell, net, X, Y, rule=rule, optimizer=NumpyAdam(0.05), loss=loss,
                                            feedback=feedback)
    result = ours.run(X, Y)
    np.testing.assert_allclose(result.outputs, out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(result.loss, losses, rtol=1e-10, atol=1e-12)
    for k, v in params.items():
        np.testing.assert_allclose(net.parameters()[k], v, rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("learner", list(LEARNERS))
@pytest.mark.parametrize("cell", ["lstm", "gru", "elstm"])
def test_stacked_epoch_gradient_and_clipped_sgd_equal_the_reference(learner, cell):
    cls, rule, extra = LEARNERS[learner]
    rng = np.random.default_rng(5)
    X, Y = _data(rng, 6, 3, 3, 2, "mse")
    net = rtrl.RecurrentNet(cell, 3, 3, 2, num_layers=3, seed=6, dtype="float64", device="cpu")
    epoch = cls(net, update="epoch", batch_size=3, **extra)
    epoch.run(X, Y)
    feedback = to_numpy(epoch.state_dict()["feedback"]) if "feedback" in extra else None
    _, _, _, total = _reference_run(cell, net, X, Y, rule=rule, optimizer=None, loss="mse", feedback=feedback)
    for k, v in epoch.gradients().items():
        np.testing.assert_allclose(v, total[k], rtol=1e-10, atol=1e-13, err_msg=k)
    clipped = cls(net, optimizer=rtrl.optim.SGD(0.5), clip_grad_norm=0.05, batch_size=3, **extra)
    _, _, params, _ = _reference_run(cell, net, X, Y, rule=rule, optimizer=NumpySGD(0.5), loss="mse",
                                     feedback=feedback, clip=0.05)
    clipped.run(X, Y)
    for k, v in params.items():
        np.testing.assert_allclose(net.parameters()[k], v, rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("rule,cls", [("snap1", rtrl.SnAp), ("eprop", rtrl.EProp)])
@pytest.mark.parametrize("teacher_forcing", [False, True])
@pytest.mark.parametrize("activation", ["logistic", "tanh"])
def test_fully_recurrent_equals_the_reference(rule, cls, teacher_forcing, activation):
    rng = np.random.default_rng(6)
    net = rtrl.FullyRecurrent(4, 2, n_outputs=2, activation=activation, seed=7, dtype="float64", device="cpu")
    X, Y = rng.normal(size=(20, 3, 2)), rng.uniform(0.2, 0.8, size=(20, 3, 2))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    W0 = to_numpy(net.weight).copy()
    out, losses, W, _ = fully_recurrent_traces(W0, X, Y, n_outputs=2, rule=rule, activation=activation,
                                               teacher_forcing=teacher_forcing, optimizer=NumpyAdam(0.05))
    result = cls(net, optimizer=rtrl.optim.Adam(0.05), batch_size=3, teacher_forcing=teacher_forcing).run(X, Y)
    np.testing.assert_allclose(result.outputs, out, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(result.loss, losses, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(net.weight, W, rtol=1e-11, atol=1e-13)
    net.weight = W0
    epoch = cls(net, update="epoch", batch_size=3, teacher_forcing=teacher_forcing)
    epoch.run(X, Y)
    _, _, _, total = fully_recurrent_traces(W0, X, Y, n_outputs=2, rule=rule, activation=activation,
                                            teacher_forcing=teacher_forcing)
    np.testing.assert_allclose(epoch.gradients()["weight"], total, rtol=1e-11, atol=1e-14)


def test_rflo_is_eprop_on_the_leaky_rnn_with_random_feedback_by_default():
    rng = np.random.default_rng(7)
    X, Y = _data(rng, 10, 2, 3, 2, "mse")
    make = lambda: rtrl.RecurrentNet("rnn", 3, 5, 2, alpha=0.3, seed=8, dtype="float64", device="cpu")  # noqa: E731
    rflo = rtrl.RFLO(make(), seed=11, lr=0.1, batch_size=2)
    eprop = rtrl.EProp(make(), feedback="random", seed=11, lr=0.1, batch_size=2)
    assert rflo.feedback == "random"
    assert rflo.run(X, Y) == eprop.run(X, Y)
    symmetric = rtrl.RFLO(make(), feedback="symmetric", lr=0.1, batch_size=2)
    assert symmetric.run(X, Y) != rflo.run(X, Y)


def _make(kind, net, **kw):
    cls, _, extra = LEARNERS[kind]
    return cls(net, **{**extra, **kw})


@pytest.mark.parametrize("kind", list(LEARNERS))
@pytest.mark.parametrize("cell,layers", [("lstm", 2), ("gru", 1), ("rnn", 3)])
def test_step_equals_run_and_resume_is_bit_identical(tmp_path, kind, cell, layers):
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((9, 2, 3)), rng.standard_normal((9, 2, 2))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    make = lambda: _make(kind, rtrl.RecurrentNet(cell, 3, 6, 2, num_layers=layers, seed=1, device="cpu"),  # noqa: E731
                         optimizer=rtrl.optim.Adam(1e-2), batch_size=2)
    whole = make()
    out = whole.run(X, Y).outputs
    stepped = make()
    steps = [stepped.step(X[t], Y[t]) for t in range(4)]
    stepped.save(tmp_path / "k.npz")
    resumed = rtrl.load(tmp_path / "k.npz")
    assert type(resumed) is type(whole)
    rest = resumed.run(X[4:], Y[4:]).outputs
    np.testing.assert_array_equal(np.concatenate([np.stack(steps), rest]), out)
    for k, v in whole.model.parameters().items():
        np.testing.assert_array_equal(resumed.model.parameters()[k], v)
    for k, v in whole.state_dict().items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(resumed.state_dict()[k], v, err_msg=k)


def test_rflo_resume_is_bit_identical(tmp_path):
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((9, 2, 3)), rng.standard_normal((9, 2, 2))
    make = lambda: rtrl.RFLO(rtrl.RecurrentNet("rnn", 3, 6, 2, alpha=0.3, num_layers=2, seed=1, device="cpu"),  # noqa: E731
                             seed=5, optimizer=rtrl.optim.Adam(1e-2), batch_size=2)
    whole = make()
    out = whole.run(X, Y).outputs
    first = make()
    head = first.run(X[:4], Y[:4]).outputs
    first.save(tmp_path / "r.npz")
    resumed = rtrl.load(tmp_path / "r.npz")
    assert type(resumed) is rtrl.RFLO and resumed.feedback == "random" and resumed.seed == 5
    np.testing.assert_array_equal(np.concatenate([head, resumed.run(X[4:], Y[4:]).outputs]), out)


def test_fully_recurrent_resume_is_bit_identical(tmp_path):
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(12, 2, 2)), rng.uniform(0.2, 0.8, size=(12, 2, 1))
    make = lambda: rtrl.SnAp(rtrl.FullyRecurrent(6, 2, n_outputs=1, seed=2, device="cpu"),  # noqa: E731
                             optimizer=rtrl.optim.Adam(1e-2), batch_size=2, teacher_forcing=True)
    whole = make()
    out = whole.run(X, Y).outputs
    first = make()
    head = first.run(X[:5], Y[:5]).outputs
    first.save(tmp_path / "f.npz")
    tail = rtrl.load(tmp_path / "f.npz").run(X[5:], Y[5:]).outputs
    np.testing.assert_array_equal(np.concatenate([head, tail]), out)


PROGRAM = r"""
import hashlib
import numpy as np
import rtrl

rng = np.random.default_rng(0)
out = []
fr = rtrl.SnAp(rtrl.FullyRecurrent(150, 4, n_outputs=2, seed=1, device="cpu"), optimizer=rtrl.optim.Adam(1e-3),
               batch_size=5)
r = fr.run(rng.normal(size=(20, 5, 4)).astype(np.float32), rng.uniform(size=(20, 5, 2)).astype(np.float32))
out += [r.outputs, r.loss, fr.model.weight, fr.state_dict()["traces"]]
for cls, extra in ((rtrl.SnAp, {}), (rtrl.EProp, {"feedback": "random", "seed": 3})):
    for cell in ("lstm", "gru", "rnn"):
        net = rtrl.RecurrentNet(cell, 6, 64, 3, num_layers=2, seed=5, device="cpu")  # parallel passes
        learner = cls(net, optimizer=rtrl.optim.Adam(1e-2), batch_size=7, **extra)
        rd = learner.run(rng.normal(size=(8, 7, 6)).astype(np.float32), rng.normal(size=(8, 7, 3)).astype(np.float32))
        state = learner.state_dict()
        out += [rd.outputs, rd.loss, net._flat] + [state[k] for k in sorted(state) if k.startswith("traces")]
for dtype in ("float64", "float32"):  # rows of ~100 columns: the threads' runs end mid-row, mid-vector
    for cell in ("rnn", "gru", "lstm", "elstm"):
        for cls in (rtrl.SnAp, rtrl.EProp):
            net = rtrl.RecurrentNet(cell, 6, 95, 3, seed=5, dtype=dtype, device="cpu")
            learner = cls(net, optimizer=rtrl.optim.Adam(1e-2), batch_size=9)
            rd = learner.run(rng.normal(size=(6, 9, 6)).astype(dtype), rng.normal(size=(6, 9, 3)).astype(dtype))
            state = learner.state_dict()
            out += [rd.outputs, net._flat] + [state[k] for k in sorted(state) if k.startswith("traces")]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


def _digest(threads: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_results_do_not_depend_on_the_thread_count():
    one = _digest(1)
    assert _digest(2) == one
    assert _digest(3) == one


@pytest.mark.parametrize("kind,cell", [("snap", "lstm"), ("snap", "gru"), ("eprop", "lstm"),
                                       ("eprop-random", "gru"), ("rflo", "rnn")])
def test_learns_a_delayed_sum(kind, cell):
    """Target: x(t-1) + x(t-2) of a noise input; the loss of the last quarter falls well below the
    first quarter's (and below the variance of the target, 2, that predicting zero gives)."""
    rng = np.random.default_rng(10)
    T, B = 3000, 4
    x = rng.normal(size=(T, B, 1))
    y = np.zeros((T, B, 1))
    y[2:] = x[1:-1] + x[:-2]
    alpha = 0.5 if cell == "rnn" else 1.0
    net = rtrl.RecurrentNet(cell, 1, 24, 1, alpha=alpha, seed=3, device="cpu")
    if kind == "rflo":
        learner = rtrl.RFLO(net, feedback="symmetric", optimizer=rtrl.optim.Adam(3e-3), batch_size=B)
    else:
        learner = _make(kind, net, optimizer=rtrl.optim.Adam(3e-3), batch_size=B)
    loss = learner.run(x, y).loss
    first, last = loss[:T // 4].mean(), loss[-T // 4:].mean()
    assert last < 0.6 * first, (first, last)


@pytest.mark.parametrize("cls", [rtrl.SnAp, rtrl.EProp])
def test_fully_recurrent_learns_a_one_step_recall(cls):
    """Target: 0.2 + 0.6 x(t-1) of a random bit x; predicting the mean gives 0.045 per step."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, size=(3000, 1)).astype(float)
    D = np.full((3000, 1), np.nan)
    D[1:, 0] = 0.2 + 0.6 * x[:-1, 0]
    learner = cls(rtrl.FullyRecurrent(6, 1, n_outputs=1, seed=0, device="cpu"), optimizer=rtrl.optim.Adam(0.03))
    loss = learner.run(x, D).loss
    assert loss[-500:].mean() < 0.7 * loss[1:300].mean()


@pytest.mark.parametrize("kind", list(LEARNERS))
@pytest.mark.parametrize("model", ["fully_recurrent", "lstm", "gru", "elstm"])
@pytest.mark.parametrize("optimizer,update", [("adam", "realtime"), ("sgd", "epoch"), ("none", "epoch")])
def test_memory_bytes_is_the_estimate_of_the_declared_layout(kind, model, optimizer, update):
    if kind == "eprop-random" and model == "fully_recurrent":
        pytest.skip("random feedback needs a readout")
    if model == "fully_recurrent":
        net = rtrl.FullyRecurrent(7, 3, n_outputs=2, seed=0, device="cpu")
    else:
        net = rtrl.RecurrentNet(model, 3, 7, 2, num_layers=2, seed=0, device="cpu")
    opt = {"adam": rtrl.optim.Adam(1e-3), "sgd": rtrl.optim.SGD(1e-3), "none": None}[optimizer]
    learner = _make(kind, net, optimizer=opt, update=update, batch_size=3)
    name = {"snap": "snap", "eprop": "eprop", "eprop-random": "eprop"}[kind]
    est = rtrl.memory.of_learner(net, name, 3, learner._native_optimizer.state_rows if opt else None, update=update)
    feedback = 7 * 2 * 4 if kind == "eprop-random" else 0
    assert learner.memory_bytes() == est["learner"] + feedback
    parts = 2 if model == "lstm" else 1
    if model == "fully_recurrent":
        n = net._flat.size
    else:  # a trace column per weight and one per bias (two for the GRU, whose b_hn sits inside r)
        G, nb, R = net.gates, 2 if model == "gru" else 1, 1 if model == "elstm" else 7
        n = G * 7 * (3 + R + nb) + G * 7 * (7 + R + nb)
    assert est["sensitivities"] == parts * 3 * n * 4
    exact = rtrl.memory.of_learner(net, "rtrl", 3, None, update=update)
    assert est["sensitivities"] < exact["sensitivities"] / 3


def test_nonfinite_stream_is_reset_and_skipped():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((6, 3, 3)), rng.standard_normal((6, 3, 2))
    X[2, 1, 0] = np.inf
    net = rtrl.RecurrentNet("lstm", 3, 4, 2, num_layers=2, seed=2, dtype="float64", device="cpu")
    learner = rtrl.SnAp(net, update="epoch", batch_size=3, on_nonfinite="skip")
    learner.run(X, Y)
    assert learner.stats["skipped_steps"] == 1 and learner.stats["reset_streams"] == 1
    assert all(np.isfinite(v).all() for v in learner.traces.values())
    assert np.isfinite(learner.gradients()["weight_hh_l1"]).all()
    with pytest.raises(ValueError, match="X: non-finite value at step 2, stream 1"):
        rtrl.SnAp(net, update="epoch", batch_size=3).run(X, Y)


def test_unsupported_models_feedback_and_seeds_are_refused():
    fr = rtrl.FullyRecurrent(3, 1, device="cpu")
    lstm = rtrl.RecurrentNet("lstm", 2, 3, 1, device="cpu")
    with pytest.raises(ValueError, match="RFLO runs on RecurrentNet\\('rnn'"):
        rtrl.RFLO(lstm)
    with pytest.raises(ValueError, match="RFLO runs on RecurrentNet\\('rnn'"):
        rtrl.RFLO(fr)
    with pytest.raises(ValueError, match="feedback='random'.*symmetric"):
        rtrl.EProp(fr, feedback="random")
    with pytest.raises(ValueError, match="feedback: expected one of"):
        rtrl.EProp(lstm, feedback="transposed")
    with pytest.raises(TypeError, match="feedback"):
        rtrl.EProp(lstm, feedback=None)
    for bad in (1.5, "3", True, np.float64(2.0)):
        with pytest.raises(TypeError, match="seed"):
            rtrl.EProp(lstm, feedback="random", seed=bad)
    with pytest.raises(ValueError, match="seed"):
        rtrl.RFLO(rtrl.RecurrentNet("rnn", 2, 3, 1, device="cpu"), seed=-1)
    with pytest.raises(ValueError, match="update"):
        rtrl.SnAp(lstm, update="online")
    with pytest.raises(ValueError, match="cross_entropy"):
        rtrl.SnAp(fr, loss="cross_entropy")
    with pytest.raises(ValueError, match="teacher_forcing"):
        rtrl.SnAp(lstm, teacher_forcing=True)
    with pytest.raises(TypeError, match="model"):
        rtrl.SnAp("lstm")
    learner = rtrl.SnAp(lstm)
    with pytest.raises(ValueError, match="X: expected shape"):
        learner.run(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="learner"):
        rtrl.memory.estimate("lstm", 2, 3, 1, learner="snap2")
    with pytest.raises(ValueError, match="rflo"):
        rtrl.memory.estimate("lstm", 2, 3, 1, learner="rflo")


def test_a_seed_keys_the_random_feedback():
    net = rtrl.RecurrentNet("gru", 2, 5, 3, seed=0, device="cpu")
    a = rtrl.EProp(net, feedback="random", seed=1).state_dict()["feedback"]
    b = rtrl.EProp(net, feedback="random", seed=1).state_dict()["feedback"]
    c = rtrl.EProp(net, feedback="random", seed=2).state_dict()["feedback"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(a).max() <= 1 / np.sqrt(5)
    assert "feedback" not in rtrl.EProp(net).state_dict()
