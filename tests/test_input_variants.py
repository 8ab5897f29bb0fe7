"""Every entry point gives the same answer for an array argument and for its plain contiguous copy:
Fortran-ordered, strided, read-only, ndarray-subclass (subclass, masked, memmap), big-endian and
unaligned variants of the same values, and scalar spellings (Python float, NumPy scalars) of a 0-d
array. "The same" means bit-identical results, or the same exception type and message.
(hypothesis, derandomized for reproducible CI)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

import rtrl

SETTINGS = dict(derandomize=True, deadline=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class Sub(np.ndarray):
    """A user's ndarray subclass."""


ARRAY_VARIANTS = ["fortran", "strided", "readonly", "subclass", "masked", "memmap", "big-endian", "unaligned"]
SCALAR_VARIANTS = ["float", "np.float32", "np.float64", "big-endian-0d", "readonly-0d"]


def variant(arr: np.ndarray, kind: str, tmp_dir) -> object:
    """``arr`` (a plain C-contiguous array) spelled as ``kind``: the same values, another layout."""
    if kind == "fortran":
        return np.asfortranarray(arr)
    if kind == "strided":
        wide = np.empty(arr.shape + (3,), dtype=arr.dtype)
        wide[...] = arr[..., None]
        return wide[..., 1]
    if kind in ("readonly", "readonly-0d"):
        out = arr.copy()
        out.flags.writeable = False
        return out
    if kind == "subclass":
        return arr.copy().view(Sub)
    if kind == "masked":
        return np.ma.masked_array(arr.copy(), mask=np.zeros(arr.shape, bool))
    if kind == "memmap":
        out = np.lib.format.open_memmap(tmp_dir / f"m{np.random.default_rng().integers(1 << 60)}.npy",
                                        mode="w+", dtype=arr.dtype, shape=arr.shape)
        out[...] = arr
        return out
    if kind in ("big-endian", "big-endian-0d"):
        return arr.astype(arr.dtype.newbyteorder(">"))
    if kind == "unaligned":
        raw = np.zeros(arr.nbytes + 1, np.uint8)
        out = np.frombuffer(raw.data, dtype=arr.dtype, offset=1, count=arr.size).reshape(arr.shape)
        out[...] = arr
        return out
    if kind == "float":
        return float(arr)
    if kind == "np.float32":
        return np.float32(arr)
    if kind == "np.float64":
        return np.float64(arr)
    raise AssertionError(kind)


def outcome(call):
    """What a call gives: its results as host arrays, or (exception type, message)."""
    try:
        result = call()
    except (ValueError, TypeError) as exc:
        return ("raised", type(exc).__name__, str(exc))
    return ("returned", _flatten(result))


def _flatten(value):
    if isinstance(value, (tuple, list)):
        return [_flatten(v) for v in value]
    if isinstance(value, dict):
        return {k: _flatten(v) for k, v in sorted(value.items())}
    if isinstance(value, rtrl.RunResult):
        return [_flatten(value.outputs), _flatten(value.loss)]
    if value is None or isinstance(value, (int, float, bool)):
        return value
    return np.array(value)


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


# Each entry point: (the plain arguments from a seed, a call that builds fresh objects from the
# seed and runs on the given arguments). Arguments are plain C-contiguous arrays (or 0-d arrays).
def _rng(seed):
    return np.random.default_rng(seed)


def _rtrl_run(seed, dtype):
    X, D = _rng(seed).normal(size=(5, 2, 2)), _rng(seed + 1).uniform(size=(5, 2, 2))

    def call(X, D):
        learner = rtrl.RTRL(rtrl.FullyRecurrent(3, 2, n_outputs=2, seed=seed, dtype=dtype, device="cpu"),
                            optimizer=rtrl.optim.Adam(0.01), batch_size=2)
        return learner.run(X, D), learner.state_dict()
    return {"X": X.astype(dtype), "D": D.astype(dtype)}, call


def _bptt_run(seed, dtype):
    X, D = _rng(seed).normal(size=(6, 2)), _rng(seed + 1).uniform(size=(6, 1))

    def call(X, D):
        learner = rtrl.BPTT(rtrl.RecurrentNet("gru", 2, 3, 1, seed=seed, dtype=dtype, device="cpu"),
                            truncation=4, lr=0.1)
        return learner.run(X, D), learner.gradients(), learner.model.parameters()
    return {"X": X.astype(dtype), "D": D.astype(dtype)}, call


def _step(seed, dtype):
    x, d = _rng(seed).normal(size=(2,)), _rng(seed + 1).uniform(size=(2,))

    def call(x, d):
        learner = rtrl.RTRL(rtrl.RecurrentNet("lstm", 2, 3, 2, seed=seed, dtype=dtype, device="cpu"), lr=0.1)
        return learner.step(x, d), learner.state_dict()
    return {"x": x.astype(dtype), "d": d.astype(dtype)}, call


def _step_scalar(seed, dtype):
    """0-d x and target: refused (no axes) whatever their spelling."""
    x, d = np.array(_rng(seed).normal(), dtype=dtype), np.array(_rng(seed + 1).uniform(), dtype=dtype)

    def call(x, d):
        learner = rtrl.RTRL(rtrl.FullyRecurrent(1, 1, seed=seed, dtype=dtype, device="cpu"), lr=0.1)
        return learner.step(x, d)
    return {"x": x, "d": d}, call


def _load_parameters(seed, dtype):
    W = _rng(seed).normal(size=(12, 3))

    def call(W):
        net = rtrl.RecurrentNet("rnn", 2, 3, 1, num_layers=2, seed=seed, dtype=dtype, device="cpu")
        net.load_parameters({**net.parameters(), "weight_hh_l1": W[:3]})
        net.weight_ih_l0 = W[3:6, :2]
        return net.parameters()
    return {"W": W.astype(dtype)}, call


def _fully_recurrent_weight(seed, dtype):
    W = _rng(seed).normal(size=(3, 6))

    def call(W):
        net = rtrl.FullyRecurrent(3, 2, seed=seed, dtype=dtype, device="cpu")
        net.weight = W
        return rtrl.RTRL(net, lr=0.1).run(np.ones((3, 2), dtype)), net.weight
    return {"W": W.astype(dtype)}, call


def _layer(seed, dtype):
    x, h0, dy = _rng(seed).normal(size=(4, 2, 3)), _rng(seed + 1).normal(size=(2, 2, 4)), _rng(seed + 2).normal(size=(4, 2, 8))

    def call(x, h0, dy):
        lstm = rtrl.nn.LSTM(3, 4, bidirectional=True, seed=seed, dtype=dtype, device="cpu")
        out, state = lstm(x, (h0, h0))
        return out, state, lstm.backward(dy), lstm.grads
    return {"x": x.astype(dtype), "h0": h0.astype(dtype), "dy": dy.astype(dtype)}, call


def _cell(seed, dtype):
    x, h, dh = _rng(seed).normal(size=(2, 3)), _rng(seed + 1).normal(size=(2, 4)), _rng(seed + 2).normal(size=(2, 4))

    def call(x, h, dh):
        cell = rtrl.nn.GRUCell(3, 4, seed=seed, dtype=dtype, device="cpu")
        return cell(x, h), cell.backward(dh), cell.grads
    return {"x": x.astype(dtype), "h": h.astype(dtype), "dh": dh.astype(dtype)}, call


def _cell_scalar(seed, dtype):
    x = np.array(_rng(seed).normal(), dtype=dtype)

    def call(x):
        return rtrl.nn.RNNCell(1, 2, seed=seed, dtype=dtype, device="cpu")(x)
    return {"x": x}, call


def _load_state_dict(seed, dtype):
    learner = rtrl.RTRL(rtrl.FullyRecurrent(3, 1, seed=seed, dtype=dtype, device="cpu"), lr=0.1)
    learner.run(_rng(seed).normal(size=(4, 1)).astype(dtype), _rng(seed).uniform(size=(4, 3)).astype(dtype))
    state = learner.state_dict()

    def call(sensitivities, weight):
        other = rtrl.RTRL(rtrl.FullyRecurrent(3, 1, seed=seed + 1, dtype=dtype, device="cpu"), lr=0.1)
        other.load_state_dict({**state, "sensitivities": sensitivities, "parameters": {"weight": weight}})
        return other.run(np.ones((2, 1), dtype)), other.state_dict()
    return {"sensitivities": state["sensitivities"], "weight": state["parameters"]["weight"]}, call


def _optimizer_lr(seed, dtype):
    lr = np.array(0.01 * (1 + seed % 7), dtype=dtype)

    def call(lr):
        opt = rtrl.optim.SGD(lr, momentum=0.5)
        opt.lr = lr
        learner = rtrl.RTRL(rtrl.FullyRecurrent(2, 1, seed=seed, dtype=dtype, device="cpu"), optimizer=opt)
        return learner.run(np.ones((3, 1), dtype), np.full((3, 2), 0.5, dtype)), opt.lr
    return {"lr": lr}, call


def _cross_entropy(seed, dtype):
    X, classes = _rng(seed).normal(size=(5, 2, 2)), _rng(seed + 1).integers(-1, 3, size=(5, 2))

    def call(X, classes):
        learner = rtrl.RTRL(rtrl.RecurrentNet("rnn", 2, 3, 3, seed=seed, dtype=dtype, device="cpu"), lr=0.1,
                            loss="cross_entropy", batch_size=2)
        return learner.run(X, classes), learner.model.parameters()
    return {"X": X.astype(dtype), "classes": classes}, call


def _reset(seed, dtype):
    streams = np.array([seed % 3, 2], dtype=np.int64)

    def call(streams):
        learner = rtrl.RTRL(rtrl.FullyRecurrent(2, 1, seed=seed, dtype=dtype, device="cpu"), lr=0.1, batch_size=3)
        learner.run(np.ones((2, 3, 1), dtype))
        learner.reset(streams)
        return learner.state_dict()
    return {"streams": streams}, call


ENTRY_POINTS = {"cross_entropy": _cross_entropy, "reset": _reset, "rtrl.run": _rtrl_run, "bptt.run": _bptt_run, "step": _step, "step-0d": _step_scalar,
                "load_parameters": _load_parameters, "FullyRecurrent.weight": _fully_recurrent_weight,
                "nn.LSTM": _layer, "nn.GRUCell": _cell, "nn.RNNCell-0d": _cell_scalar,
                "load_state_dict": _load_state_dict, "optim.lr-0d": _optimizer_lr}


@settings(**SETTINGS)
@given(entry=st.sampled_from(sorted(ENTRY_POINTS)), dtype=st.sampled_from(["float32", "float64"]),
       seed=st.integers(0, 2**16), data=st.data())
def test_variants_match_the_plain_contiguous_copy(tmp_path_factory, entry, dtype, seed, data):
    args, call = ENTRY_POINTS[entry](seed, dtype)
    name = data.draw(st.sampled_from(sorted(args)), label="argument")
    plain = np.array(args[name], order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    kinds = SCALAR_VARIANTS if plain.ndim == 0 else ARRAY_VARIANTS
    if plain.dtype != np.float32:
        kinds = [k for k in kinds if k != "np.float32"]  # it would round the value
    kind = data.draw(st.sampled_from(kinds), label="variant")
    spelled = variant(plain, kind, tmp_path_factory.getbasetemp())
    expected = outcome(lambda: call(**{**args, name: plain.copy()}))
    got = outcome(lambda: call(**{**args, name: spelled}))
    assert same(got, expected), (entry, name, kind, got if got[0] == "raised" else "different values", expected[:2])
    if isinstance(spelled, np.ndarray) and spelled.flags.writeable and spelled.ndim:
        assert np.array_equal(np.asarray(spelled), plain)  # the caller's array was not written to
