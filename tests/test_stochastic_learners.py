"""UORO and KF-RTRL (DESIGN §9): unbiased — with the weights fixed, the mean over K seeds of the gradient is within
a few standard errors of exact RTRL's (of per-layer exact RTRL with spatial backprop on a stack, from
tests/reference/diagonal_traces.py), the standard errors taken from batch means because the estimates
are heavy-tailed, while a deliberately biased variant fails the same test; reproducible bit for bit over
thread counts and a checkpoint; learning; memory; bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from reference.diagonal_traces import realtime_traces

import rtrl

K, BATCHES = 2000, 40
Z_ENTRY, Z_PROJECTION = 4.5, 4.0  # |t_39| beyond these: p ~ 3e-4 per entry, ~3e-4 for the projection


def _statistics(estimates, exact):
    """z of the mean estimate for every entry and for its projection on the exact gradient, each
    with the standard error of the mean of BATCHES batch means."""
    means = estimates.reshape(BATCHES, -1, estimates.shape[1]).mean(axis=1)
    se = means.std(axis=0, ddof=1) / np.sqrt(BATCHES)
    fixed = se == 0  # entries no sign reaches (a forced unit's weights at every step): exact
    np.testing.assert_allclose(means.mean(axis=0)[fixed], exact[fixed], atol=1e-12)
    z = (means.mean(axis=0)[~fixed] - exact[~fixed]) / se[~fixed]
    u = exact / np.linalg.norm(exact)
    proj = means @ u
    z_proj = (proj.mean() - np.linalg.norm(exact)) / (proj.std(ddof=1) / np.sqrt(BATCHES))
    return np.abs(z).max(), abs(z_proj)


def _recurrent(grads):
    return np.concatenate([v.ravel() for k, v in sorted(grads.items()) if not k.endswith("_out")])


def _estimates(make, X, Y, scale=1.0, cls=rtrl.UORO, **kw):
    out = []
    for seed in range(K):
        learner = cls(make(), update="epoch", seed=seed, batch_size=X.shape[1], **kw)
        learner._immediate_scale = scale
        learner.run(X, Y)
        out.append(_recurrent(learner.gradients()))
    return np.array(out)


MODELS = {
    "fully_recurrent": lambda: rtrl.FullyRecurrent(4, 3, n_outputs=2, seed=1, dtype="float64", device="cpu"),
    "rnn": lambda: rtrl.RecurrentNet("rnn", 3, 3, 2, seed=1, dtype="float64", device="cpu"),
    "rnn-leaky": lambda: rtrl.RecurrentNet("rnn", 3, 3, 2, alpha=0.5, seed=1, dtype="float64", device="cpu"),
    "lstm": lambda: rtrl.RecurrentNet("lstm", 3, 3, 2, seed=1, dtype="float64", device="cpu"),
    "gru": lambda: rtrl.RecurrentNet("gru", 3, 3, 2, seed=1, dtype="float64", device="cpu"),
    "elstm": lambda: rtrl.RecurrentNet("elstm", 3, 3, 2, seed=1, dtype="float64", device="cpu"),
    "lstm-stacked": lambda: rtrl.RecurrentNet("lstm", 3, 3, 2, num_layers=2, seed=1, dtype="float64", device="cpu"),
    "gru-stacked": lambda: rtrl.RecurrentNet("gru", 3, 3, 2, num_layers=2, seed=1, dtype="float64", device="cpu"),
}


def _data(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 2, 3))
    if name == "fully_recurrent":
        Y = rng.uniform(0.2, 0.8, size=(6, 2, 2))
    else:
        Y = rng.normal(size=(6, 2, 2))
    Y[rng.random(Y.shape) < 0.2] = np.nan
    return X, Y


def _expected(name, X, Y):
    """Exact RTRL's gradient on one layer; per-layer exact RTRL with spatial backprop on a stack."""
    net = MODELS[name]()
    if getattr(net, "num_layers", 1) == 1:
        exact = rtrl.RTRL(net, update="epoch", batch_size=X.shape[1])
        exact.run(X, Y)
        return _recurrent(exact.gradients())
    params = {k: v.copy() for k, v in net.parameters().items()}
    _, _, _, total = realtime_traces(net.cell, params, X, Y, layers=net.num_layers, rule="layer")
    return _recurrent(total)


KF_MODELS = ("fully_recurrent", "rnn", "rnn-leaky", "lstm", "lstm-stacked")
CASES = [(rtrl.UORO, name) for name in MODELS] + [(rtrl.KFRTRL, name) for name in KF_MODELS]


@pytest.mark.parametrize("cls,name", CASES, ids=[f"{c.__name__}-{n}" for c, n in CASES])
def test_is_unbiased_and_a_biased_variant_is_caught(cls, name):
    X, Y = _data(name)
    expected = _expected(name, X, Y)
    z_entry, z_proj = _statistics(_estimates(MODELS[name], X, Y, cls=cls), expected)
    assert z_entry < Z_ENTRY and z_proj < Z_PROJECTION, (z_entry, z_proj)
    z_entry, z_proj = _statistics(_estimates(MODELS[name], X, Y, scale=0.8, cls=cls), expected)
    assert z_entry > Z_ENTRY or z_proj > Z_PROJECTION, (z_entry, z_proj)


@pytest.mark.parametrize("cls", [rtrl.UORO, rtrl.KFRTRL])
def test_with_teacher_forcing_is_unbiased(cls):
    X, Y = _data("fully_recurrent")
    net = MODELS["fully_recurrent"]()
    exact = rtrl.RTRL(net, update="epoch", batch_size=2, teacher_forcing=True)
    exact.run(X, Y)
    z_entry, z_proj = _statistics(_estimates(MODELS["fully_recurrent"], X, Y, cls=cls, teacher_forcing=True),
                                  _recurrent(exact.gradients()))
    assert z_entry < Z_ENTRY and z_proj < Z_PROJECTION, (z_entry, z_proj)


def test_kf_rtrl_has_less_variance_than_uoro():
    X, Y = _data("lstm")
    spread = [_estimates(MODELS["lstm"], X, Y, cls=cls)[:200].std(axis=0).mean() for cls in (rtrl.UORO, rtrl.KFRTRL)]
    assert spread[1] < spread[0]


@pytest.mark.parametrize("cls", [rtrl.UORO, rtrl.KFRTRL])
def test_the_estimate_is_not_exact(cls):
    X, Y = _data("lstm")
    a, b = (cls(MODELS["lstm"](), update="epoch", seed=s, batch_size=2) for s in (1, 2))
    a.run(X, Y)
    b.run(X, Y)
    assert np.abs(_recurrent(a.gradients()) - _recurrent(b.gradients())).max() > 1e-3


RESUME = [(rtrl.UORO, "lstm", 2), (rtrl.UORO, "gru", 1), (rtrl.UORO, "elstm", 2), (rtrl.UORO, "rnn", 1),
          (rtrl.KFRTRL, "lstm", 2), (rtrl.KFRTRL, "rnn", 1)]


@pytest.mark.parametrize("cls,cell,layers", RESUME, ids=[f"{c.__name__}-{n}-{l}" for c, n, l in RESUME])
def test_step_equals_run_and_resume_is_bit_identical(tmp_path, cls, cell, layers):
    rng = np.random.default_rng(8)
    X, Y = rng.standard_normal((9, 2, 3)), rng.standard_normal((9, 2, 2))
    make = lambda: cls(rtrl.RecurrentNet(cell, 3, 6, 2, num_layers=layers, seed=1, device="cpu"),  # noqa: E731
                       seed=12, optimizer=rtrl.optim.Adam(1e-2), batch_size=2)
    whole = make()
    out = whole.run(X, Y).outputs
    stepped = make()
    steps = [stepped.step(X[t], Y[t]) for t in range(4)]
    stepped.save(tmp_path / "u.npz")
    resumed = rtrl.load(tmp_path / "u.npz")
    assert type(resumed) is cls and resumed.seed == 12 and resumed.steps == 4
    rest = resumed.run(X[4:], Y[4:]).outputs
    np.testing.assert_array_equal(np.concatenate([np.stack(steps), rest]), out)
    for k, v in whole.state_dict().items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(resumed.state_dict()[k], v, err_msg=k)


@pytest.mark.parametrize("cls", [rtrl.UORO, rtrl.KFRTRL])
def test_fully_recurrent_resume_is_bit_identical(tmp_path, cls):
    rng = np.random.default_rng(9)
    X, Y = rng.normal(size=(12, 2, 2)), rng.uniform(0.2, 0.8, size=(12, 2, 1))
    make = lambda: cls(rtrl.FullyRecurrent(6, 2, n_outputs=1, seed=2, device="cpu"), seed=3,  # noqa: E731
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
fr = rtrl.UORO(rtrl.FullyRecurrent(150, 4, n_outputs=2, seed=1, device="cpu"), seed=4,
               optimizer=rtrl.optim.Adam(1e-3), batch_size=5)
r = fr.run(rng.normal(size=(20, 5, 4)).astype(np.float32), rng.uniform(size=(20, 5, 2)).astype(np.float32))
out += [r.outputs, r.loss, fr.model.weight] + list(fr.state_dict()[k] for k in ("theta_tangent", "tangent"))
for cell in ("lstm", "gru", "rnn", "elstm"):
    net = rtrl.RecurrentNet(cell, 6, 64, 3, num_layers=2, seed=5, device="cpu")
    learner = rtrl.UORO(net, seed=9, optimizer=rtrl.optim.Adam(1e-2), batch_size=7)
    rd = learner.run(rng.normal(size=(8, 7, 6)).astype(np.float32), rng.normal(size=(8, 7, 3)).astype(np.float32))
    state = learner.state_dict()
    out += [rd.outputs, rd.loss, net._flat] + [state[k] for k in sorted(state) if "tangent" in k]
fk = rtrl.KFRTRL(rtrl.FullyRecurrent(150, 4, n_outputs=2, seed=1, device="cpu"), seed=4,
                 optimizer=rtrl.optim.Adam(1e-3), batch_size=5)
r = fk.run(rng.normal(size=(10, 5, 4)).astype(np.float32), rng.uniform(size=(10, 5, 2)).astype(np.float32))
out += [r.outputs, fk.model.weight, fk.state_dict()["kron_A"], fk.state_dict()["kron_u"]]
for cell in ("lstm", "rnn"):
    net = rtrl.RecurrentNet(cell, 6, 64, 3, num_layers=2, seed=5, device="cpu")
    learner = rtrl.KFRTRL(net, seed=9, optimizer=rtrl.optim.Adam(1e-2), batch_size=7)
    rd = learner.run(rng.normal(size=(8, 7, 6)).astype(np.float32), rng.normal(size=(8, 7, 3)).astype(np.float32))
    state = learner.state_dict()
    out += [rd.outputs, rd.loss, net._flat] + [state[k] for k in sorted(state) if "kron" in k]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


def _digest(threads: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_same_seed_reproduces_on_any_thread_count():
    one = _digest(1)
    assert _digest(2) == one
    assert _digest(3) == one


LEARNING = [(rtrl.UORO, "lstm"), (rtrl.UORO, "gru"), (rtrl.UORO, "elstm"), (rtrl.KFRTRL, "lstm"), (rtrl.KFRTRL, "rnn")]


@pytest.mark.parametrize("cls,cell", LEARNING, ids=[f"{c.__name__}-{n}" for c, n in LEARNING])
def test_learns_a_delayed_sum(cls, cell):
    rng = np.random.default_rng(10)
    T, B = 4000, 4
    x = rng.normal(size=(T, B, 1))
    y = np.zeros((T, B, 1))
    y[2:] = x[1:-1] + x[:-2]
    net = rtrl.RecurrentNet(cell, 1, 24, 1, seed=3, device="cpu")
    loss = cls(net, seed=1, optimizer=rtrl.optim.Adam(3e-3), batch_size=B).run(x, y).loss
    assert loss[-T // 4:].mean() < 0.7 * loss[:T // 4].mean()


@pytest.mark.parametrize("model", ["fully_recurrent", "lstm", "elstm"])
@pytest.mark.parametrize("optimizer,update", [("adam", "realtime"), ("none", "epoch")])
def test_memory_bytes_is_the_estimate_of_the_declared_layout(model, optimizer, update):
    if model == "fully_recurrent":
        net = rtrl.FullyRecurrent(7, 3, n_outputs=2, seed=0, device="cpu")
        state = 3 * 7
    else:
        net = rtrl.RecurrentNet(model, 3, 7, 2, num_layers=2, seed=0, device="cpu")
        state = 2 * (2 if model == "lstm" else 1) * 3 * 7
    opt = rtrl.optim.Adam(1e-3) if optimizer == "adam" else None
    learner = rtrl.UORO(net, seed=0, optimizer=opt, update=update, batch_size=3)
    est = rtrl.memory.of_learner(net, "uoro", 3, learner._native_optimizer.state_rows if opt else None, update=update)
    assert learner.memory_bytes() == est["learner"]
    snap = rtrl.memory.of_learner(net, "snap", 3, None, update=update)
    parts = 2 if model == "lstm" else 1
    assert est["sensitivities"] == snap["sensitivities"] // parts + state * 4


@pytest.mark.parametrize("model", ["fully_recurrent", "rnn", "lstm"])
def test_kf_memory_bytes_is_the_estimate_of_the_declared_layout(model):
    if model == "fully_recurrent":
        net = rtrl.FullyRecurrent(7, 3, n_outputs=2, seed=0, device="cpu")
        factors = 3 * (7 * 7 + 11)
    else:
        net = rtrl.RecurrentNet(model, 3, 7, 2, num_layers=2, seed=0, device="cpu")
        G, parts = net.gates, 2 if model == "lstm" else 1
        factors = 3 * (2 * parts * 7 * G * 7 + (3 + 8) + (7 + 8))
    learner = rtrl.KFRTRL(net, seed=0, optimizer=rtrl.optim.Adam(1e-3), batch_size=3)
    est = rtrl.memory.of_learner(net, "kf", 3, learner._native_optimizer.state_rows)
    assert learner.memory_bytes() == est["learner"]
    assert est["sensitivities"] == factors * 4


def test_kf_rtrl_refuses_the_gru_and_the_elstm():
    for cell in ("gru", "elstm"):
        with pytest.raises(ValueError, match="KF-RTRL runs on FullyRecurrent and on RecurrentNet\\('rnn' \\| 'lstm'"):
            rtrl.KFRTRL(rtrl.RecurrentNet(cell, 2, 3, 1, device="cpu"))
        with pytest.raises(ValueError, match="learner='kf'"):
            rtrl.memory.estimate(cell, 2, 3, 1, learner="kf")
    with pytest.raises(TypeError, match="seed"):
        rtrl.KFRTRL(rtrl.FullyRecurrent(3, 1, device="cpu"), seed=2.0)


def test_bad_seeds_and_models_are_refused():
    net = rtrl.RecurrentNet("lstm", 2, 3, 1, device="cpu")
    for bad in (1.5, "3", True, None.__class__):
        with pytest.raises(TypeError, match="seed"):
            rtrl.UORO(net, seed=bad)
    with pytest.raises(ValueError, match="seed"):
        rtrl.UORO(net, seed=-2)
    with pytest.raises(TypeError, match="model"):
        rtrl.UORO(np.zeros(3))
    with pytest.raises(ValueError, match="cross_entropy"):
        rtrl.UORO(rtrl.FullyRecurrent(3, 1, device="cpu"), loss="cross_entropy")
    assert isinstance(rtrl.UORO(net).seed, int)  # None draws one, kept for the checkpoint
