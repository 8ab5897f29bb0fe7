"""The public API surface (API.md): package info, the model, RunResult shapes, exact resume through
state_dict and checkpoints, and atomic, pickle-free checkpoint files.

Tests marked ``LIBRARY BUG`` in a comment fail against the current library on purpose.
"""

from __future__ import annotations

import importlib.metadata
import json
import os

import numpy as np
import pytest
from conftest import to_numpy

import rtrl

N_UNITS, N_INPUTS, N_OUTPUTS = 5, 2, 2


def logistic(s):
    return 1.0 / (1.0 + np.exp(-s))


ACTIVATIONS = {"logistic": logistic, "tanh": np.tanh}


# ------------------------------------------------------------------------------------------------
# package


def test_version():
    assert isinstance(rtrl.__version__, str) and rtrl.__version__
    assert rtrl.__version__ == rtrl.info()["version"]
    assert rtrl.__version__ == importlib.metadata.version("rtrl")


def test_info_keys():
    info = rtrl.info()
    assert {"version", "cpu", "cuda"} <= set(info)
    cpu, cuda = info["cpu"], info["cuda"]
    assert {"blas", "threads", "simd"} <= set(cpu)
    assert isinstance(cpu["blas"], str) and cpu["blas"]
    assert isinstance(cpu["simd"], str) and cpu["simd"]
    assert isinstance(cpu["threads"], int) and not isinstance(cpu["threads"], bool) and cpu["threads"] >= 1
    # a sanitizer build runs only with the ASan runtime preloaded (.ci/sanitize)
    assert cpu["sanitizers"] in ("", "address,undefined")
    assert bool(cpu["sanitizers"]) == ("libasan" in os.environ.get("LD_PRELOAD", ""))
    assert isinstance(cuda["built"], bool) and isinstance(cuda["available"], bool)
    if not cuda["available"]:
        assert isinstance(cuda["reason"], str) and cuda["reason"]
    else:
        assert cuda["built"]
    json.dumps(info)  # plain data, printable by `rtrl info`


def test_cuda_available_is_bool():
    available = rtrl.cuda_available()
    assert type(available) is bool
    assert available == rtrl.info()["cuda"]["available"]


# ------------------------------------------------------------------------------------------------
# FullyRecurrent


@pytest.mark.parametrize("n, m, bias", [(1, 0, True), (3, 2, True), (3, 2, False), (7, 4, True)])
def test_weight_shape(device, n, m, bias):
    net = rtrl.FullyRecurrent(n, m, bias=bias, seed=0, device=device)
    assert tuple(net.weight.shape) == (n, m + int(bias) + n)
    assert net.parameters().keys() == {"weight"}
    assert net.parameters()["weight"] is net.weight


def test_default_init_scale(device):
    net = rtrl.FullyRecurrent(6, 3, seed=0, dtype="float64", device=device)
    w = to_numpy(net.weight)
    bound = 1 / np.sqrt(3 + 1 + 6)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.5 * bound
    net = rtrl.FullyRecurrent(6, 3, init_scale=0.01, seed=0, dtype="float64", device=device)
    assert 0 < np.abs(to_numpy(net.weight)).max() <= 0.01


@pytest.mark.parametrize("activation", ["logistic", "tanh"])
def test_bias_column_comes_after_the_inputs(device, activation):
    n, m = 4, 3
    net = rtrl.FullyRecurrent(n, m, activation=activation, seed=0, dtype="float64", device=device)
    bias = np.array([0.3, -0.7, 1.1, -0.2])
    w = np.zeros((n, m + 1 + n))
    w[:, m] = bias  # [inputs | bias | units]: the bias is column m
    net.weight = w
    out = rtrl.RTRL(net).step(np.zeros(m))
    np.testing.assert_allclose(to_numpy(out), ACTIVATIONS[activation](bias), rtol=1e-15, atol=0)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", ["logistic", "tanh"])
def test_column_order_inputs_bias_units(device, activation, bias):
    """A forward pass written out with z = [x; 1; y] matches the model over several steps."""
    n, m, T = 4, 3, 6
    rng = np.random.default_rng(5)
    net = rtrl.FullyRecurrent(n, m, activation=activation, bias=bias, dtype="float64", device=device)
    w = rng.normal(0, 0.8, size=(n, m + int(bias) + n))
    net.weight = w
    X = rng.normal(size=(T, m))
    outputs = to_numpy(rtrl.RTRL(net).run(X).outputs)
    f, y = ACTIVATIONS[activation], np.zeros(n)
    for t in range(T):
        z = np.concatenate([X[t], [1.0] if bias else [], y])
        y = f(w @ z)
        np.testing.assert_allclose(outputs[t], y, rtol=1e-12, atol=1e-14)


def test_n_outputs_default_is_all_units(device):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, seed=0, device=device)
    assert net.n_outputs == N_UNITS
    assert rtrl.RTRL(net).run(np.zeros((3, N_INPUTS))).outputs.shape == (3, N_UNITS)
    X = np.random.default_rng(0).normal(size=(3, N_INPUTS))
    every = to_numpy(rtrl.RTRL(net).run(X).outputs)
    visible = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=2, seed=0, device=device)
    result = rtrl.RTRL(visible).run(X)
    assert result.outputs.shape == (3, 2)
    # the visible outputs are the first units
    assert np.array_equal(to_numpy(result.outputs), every[:, :2])


def test_seed(device):
    a = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, seed=123, device=device)
    b = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, seed=123, device=device)
    c = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, seed=124, device=device)
    assert np.array_equal(to_numpy(a.weight), to_numpy(b.weight))
    assert not np.array_equal(to_numpy(a.weight), to_numpy(c.weight))
    d64 = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, seed=123, dtype="float64", device=device)
    assert np.array_equal(to_numpy(d64.weight).astype(np.float32), to_numpy(a.weight))
    u1 = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, device=device)
    u2 = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, device=device)
    assert not np.array_equal(to_numpy(u1.weight), to_numpy(u2.weight))


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.float64])
def test_dtype_respected(device, dtype):
    expected = np.dtype(dtype)
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=0, dtype=dtype, device=device)
    assert net.dtype == expected and net.weight.dtype == expected
    for learner in (rtrl.RTRL(net, lr=0.1, batch_size=2), rtrl.BPTT(net, lr=0.1, batch_size=2)):
        X = np.ones((4, 2, N_INPUTS), dtype=np.float64 if expected == np.float32 else np.float32)
        result = learner.run(X, np.full((4, 2, N_OUTPUTS), 0.5))
        assert result.outputs.dtype == expected and result.loss.dtype == expected
        assert learner.step(np.ones((2, N_INPUTS), dtype=int)).dtype == expected
        assert learner.state.dtype == expected
        assert all(g.dtype == expected for g in learner.gradients().values())
        assert net.weight.dtype == expected
    assert rtrl.RTRL(net).sensitivities.dtype == expected


def test_default_dtype_is_float32(device):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, seed=0, device=device)
    assert net.dtype == np.float32
    assert rtrl.RTRL(net).run(np.zeros((2, N_INPUTS))).outputs.dtype == np.float32


def test_parameters_are_live(device):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, seed=0, device=device)
    params = net.parameters()
    params["weight"][0, 0] = 0.5
    params["weight"][-1, -1] = -0.25
    w = to_numpy(net.weight)
    assert w[0, 0] == 0.5 and w[-1, -1] == -0.25
    # and the arrays stay live across assignment through the model
    net.weight = np.zeros(net.weight.shape)
    assert not np.any(to_numpy(params["weight"]))


def test_load_parameters_copies(device):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, seed=0, device=device)
    live = net.weight
    src = np.random.default_rng(0).normal(size=live.shape).astype(np.float32)
    net.load_parameters({"weight": src})
    assert net.weight is live
    assert np.array_equal(to_numpy(net.weight), src)
    src[...] = 7.0
    assert not np.any(to_numpy(net.weight) == 7.0)
    assigned = np.ones(live.shape, dtype=np.float32)
    net.weight = assigned
    assigned[...] = 3.0
    assert np.all(to_numpy(net.weight) == 1.0) and net.weight is live


def test_to_same_device_returns_self(device):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, seed=0, device=device)
    assert net.to(device) is net
    cpu = net.to("cpu")
    assert cpu.device == "cpu"
    assert np.array_equal(to_numpy(cpu.weight), to_numpy(net.weight))


# ------------------------------------------------------------------------------------------------
# RunResult and step shapes


@pytest.mark.parametrize("cls", ["RTRL", "BPTT"])
@pytest.mark.parametrize("batch", [1, 3])
def test_run_result_shapes(device, cls, batch):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=0, device=device)
    learner = getattr(rtrl, cls)(net, lr=0.1, batch_size=batch)
    T = 7
    result = learner.run(np.zeros((T, batch, N_INPUTS)), np.full((T, batch, N_OUTPUTS), 0.5))
    assert isinstance(result, rtrl.RunResult)
    assert result.outputs.shape == (T, batch, N_OUTPUTS) and result.loss.shape == (T,)
    assert learner.step(np.zeros((batch, N_INPUTS))).shape == (batch, N_OUTPUTS)
    assert learner.state.shape == (batch, N_UNITS)
    if cls == "RTRL":
        width = N_INPUTS + 1 + N_UNITS
        assert learner.sensitivities.shape == (batch, N_UNITS, N_UNITS, width)
    if batch == 1:
        result = learner.run(np.zeros((T, N_INPUTS)), np.full((T, N_OUTPUTS), 0.5))
        assert result.outputs.shape == (T, N_OUTPUTS) and result.loss.shape == (T,)
        assert learner.run(np.zeros((T, N_INPUTS))).outputs.shape == (T, N_OUTPUTS)
        assert learner.step(np.zeros(N_INPUTS), np.full(N_OUTPUTS, 0.5)).shape == (N_OUTPUTS,)
        assert learner.step([0.0] * N_INPUTS).shape == (N_OUTPUTS,)
    empty = learner.run(np.zeros((0, batch, N_INPUTS)))
    assert empty.outputs.shape == (0, batch, N_OUTPUTS) and empty.loss.shape == (0,)


@pytest.mark.parametrize("cls", ["RTRL", "BPTT"])
def test_any_real_array_layout_is_accepted_and_never_modified(device, cls):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=0, device=device)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(10, 3, 2 * N_INPUTS)).astype(np.float32)
    D = rng.uniform(0.1, 0.9, size=(10, 3, N_OUTPUTS)).astype(np.float32)
    X = np.ascontiguousarray(base[:, :, ::2])
    expected = to_numpy(getattr(rtrl, cls)(net, batch_size=3).run(X, D).outputs)
    strided = base[:, :, ::2]
    strided.flags.writeable = False
    D.flags.writeable = False
    layouts = [strided, np.asfortranarray(X), X.astype(">f4"), X.astype(np.float64), X.tolist()]
    for variant in layouts:
        result = getattr(rtrl, cls)(net, batch_size=3).run(variant, D)
        assert np.array_equal(to_numpy(result.outputs), expected)
    assert np.array_equal(strided, X)  # inputs untouched
    ints = np.arange(10 * 3 * N_INPUTS).reshape(10, 3, N_INPUTS) % 3
    assert getattr(rtrl, cls)(net, batch_size=3).run(ints).outputs.shape == (10, 3, N_OUTPUTS)
    assert getattr(rtrl, cls)(net, batch_size=3).run(ints.astype(bool)).outputs.shape == (10, 3, N_OUTPUTS)


@pytest.mark.parametrize("kind", ["rtrl-realtime", "rtrl-epoch", "bptt"])
def test_step_by_step_equals_run(device, kind):
    def make():
        net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, seed=2, device=device)
        if kind == "bptt":
            return rtrl.BPTT(net, truncation=1, lr=0.2, batch_size=2)
        return rtrl.RTRL(net, lr=0.2, update=kind.split("-")[1], batch_size=2)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2, N_INPUTS)).astype(np.float32)
    D = rng.uniform(0.1, 0.9, size=(12, 2, N_OUTPUTS)).astype(np.float32)
    a, b = make(), make()
    whole = to_numpy(a.run(X, D).outputs)
    stepped = np.stack([to_numpy(b.step(X[t], D[t])) for t in range(len(X))])
    assert np.array_equal(whole, stepped)
    assert np.array_equal(to_numpy(a.model.weight), to_numpy(b.model.weight))
    assert a.steps == b.steps == 12


# ------------------------------------------------------------------------------------------------
# exact resume


def _data(seed, T=200, batch=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(T, batch, N_INPUTS)).astype(np.float32)
    D = rng.uniform(0.1, 0.9, size=(T, batch, N_OUTPUTS)).astype(np.float32)
    D[rng.random(D.shape) < 0.2] = np.nan
    return X, D


LEARNERS = {
    "rtrl-realtime-adam": lambda net: rtrl.RTRL(net, optimizer=rtrl.optim.Adam(0.01), batch_size=2),
    "rtrl-epoch-sgd-momentum": lambda net: rtrl.RTRL(net, optimizer=rtrl.optim.SGD(0.05, momentum=0.9),
                                                     update="epoch", clip_grad_norm=1.0, batch_size=2),
    "rtrl-teacher-forcing": lambda net: rtrl.RTRL(net, lr=0.1, teacher_forcing=True, reduction="sum",
                                                  batch_size=2),
    "bptt-truncated-adam": lambda net: rtrl.BPTT(net, truncation=30, optimizer=rtrl.optim.Adam(0.01),
                                                 batch_size=2),
    "bptt-sgd": lambda net: rtrl.BPTT(net, lr=0.05, batch_size=2),
}


def _make(kind, device, seed=11):
    net = rtrl.FullyRecurrent(N_UNITS, N_INPUTS, n_outputs=N_OUTPUTS, activation="tanh", seed=seed,
                              device=device)
    return LEARNERS[kind](net)


def _first_half(learner, X, D):
    learner.run(X[:100], D[:100])
    if learner.config().get("update") == "epoch":
        learner.apply()
        learner.run(X[50:100], D[50:100])  # leaves a pending gradient in the checkpoint


def _assert_same(a, b):
    for key in ("weight",):
        assert np.array_equal(to_numpy(a.model.parameters()[key]), to_numpy(b.model.parameters()[key]))
    assert np.array_equal(to_numpy(a.state), to_numpy(b.state))
    assert np.array_equal(to_numpy(a.gradients()["weight"]), to_numpy(b.gradients()["weight"]))
    if hasattr(a, "sensitivities"):
        assert np.array_equal(to_numpy(a.sensitivities), to_numpy(b.sensitivities))
    assert a.steps == b.steps


def _second_half(learner, X, D):
    result = learner.run(X[100:], D[100:])
    if learner.config().get("update") == "epoch":
        learner.apply()
    return result


@pytest.mark.parametrize("kind", list(LEARNERS))
def test_state_dict_resumes_exactly(device, kind):
    X, D = _data(0)
    original = _make(kind, device)
    _first_half(original, X, D)
    sd = original.state_dict()
    A = _second_half(original, X, D)

    fresh = _make(kind, device, seed=99)  # different initial weights: everything must come from sd
    assert not np.array_equal(to_numpy(fresh.model.weight), to_numpy(sd["parameters"]["weight"]))
    fresh.load_state_dict(sd)
    B = _second_half(fresh, X, D)
    assert np.array_equal(to_numpy(A.outputs), to_numpy(B.outputs))
    assert np.array_equal(to_numpy(A.loss), to_numpy(B.loss))
    _assert_same(original, fresh)
    assert fresh.steps == 200 + (50 if "epoch" in kind else 0)


def test_state_dict_arrays_are_copies(device):
    X, D = _data(1)
    learner = _make("rtrl-realtime-adam", device)
    learner.run(X[:10], D[:10])
    sd = learner.state_dict()
    before = {k: to_numpy(v).copy() for k, v in sd.items() if hasattr(v, "shape")}
    w = to_numpy(learner.model.weight).copy()
    for k in before:
        sd[k][...] = 0
    sd["parameters"]["weight"][...] = 0
    assert np.array_equal(to_numpy(learner.model.weight), w)
    assert np.array_equal(to_numpy(learner.state), before["state"])
    assert np.array_equal(to_numpy(learner.sensitivities), to_numpy(before["sensitivities"]).transpose(1, 0, 2, 3))


@pytest.mark.parametrize("kind", list(LEARNERS))
def test_save_load_resumes_exactly(device, tmp_path, kind):
    X, D = _data(2)
    original = _make(kind, device)
    _first_half(original, X, D)
    path = tmp_path / "learner.npz"
    original.save(path)
    A = _second_half(original, X, D)

    loaded = rtrl.load(path)
    assert type(loaded) is type(original)
    assert loaded.config() == original.config()
    assert loaded.model.config() == original.model.config()
    assert loaded.model.device == device
    B = _second_half(loaded, X, D)
    assert np.array_equal(to_numpy(A.outputs), to_numpy(B.outputs))
    assert np.array_equal(to_numpy(A.loss), to_numpy(B.loss))
    _assert_same(original, loaded)


def test_save_accepts_str_path_and_file_loads_without_pickle(tmp_path):
    learner = _make("rtrl-realtime-adam", "cpu")
    learner.run(*_data(3, T=5))
    path = str(tmp_path / "plain")  # no .npz suffix: saved exactly where asked
    learner.save(path)
    assert os.listdir(tmp_path) == ["plain"]
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(bytes(arrays["__header__"]).decode())
    assert header["version"] >= 1
    assert np.array_equal(arrays["parameters/weight"], learner.model.weight)
    assert rtrl.load(path).steps == 5


# ------------------------------------------------------------------------------------------------
# unreadable checkpoints


@pytest.fixture
def checkpoint(tmp_path):
    learner = _make("rtrl-realtime-adam", "cpu")
    learner.run(*_data(4, T=20))
    path = tmp_path / "good.npz"
    learner.save(path)
    return path


def _rewrite(src, dst, header=None, drop=(), extra=None):
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k not in drop}
    if header is not None:
        arrays["__header__"] = np.frombuffer(header, dtype=np.uint8)
    arrays.update(extra or {})
    np.savez(dst, **arrays)
    return dst


def _header(path):
    with np.load(path, allow_pickle=False) as data:
        return json.loads(bytes(data["__header__"]).decode())


def _assert_clear(exc_info, path):
    message = str(exc_info.value)
    assert os.fspath(path) in message and "rtrl checkpoint" in message, message


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.99])
def test_load_truncated_file(checkpoint, tmp_path, fraction):
    data = checkpoint.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError) as info:
        rtrl.load(bad)
    _assert_clear(info, bad)


# LIBRARY BUG (reported): random bytes reach np.load's pickle branch, whose ValueError says "This file
# contains pickled (object) data ... load it unsafely using allow_pickle=" — neither the path nor
# "not an rtrl checkpoint", and it suggests an unsafe workaround.
def test_load_random_bytes(tmp_path):
    bad = tmp_path / "random.npz"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError) as info:
        rtrl.load(bad)
    _assert_clear(info, bad)


def test_load_npz_without_header(tmp_path):
    bad = tmp_path / "plain.npz"
    np.savez(bad, weight=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="header") as info:
        rtrl.load(bad)
    _assert_clear(info, bad)


def test_load_newer_version(checkpoint, tmp_path):
    header = _header(checkpoint)
    header["version"] += 1
    bad = _rewrite(checkpoint, tmp_path / "future.npz", json.dumps(header).encode())
    with pytest.raises(ValueError, match=rf"version {header['version']}.*newer") as info:
        rtrl.load(bad)
    assert os.fspath(bad) in str(info.value)


def test_load_other_format(checkpoint, tmp_path):
    header = _header(checkpoint)
    header["format"] = "something-else"
    bad = _rewrite(checkpoint, tmp_path / "other.npz", json.dumps(header).encode())
    with pytest.raises(ValueError) as info:
        rtrl.load(bad)
    _assert_clear(info, bad)


def test_load_header_not_utf8(checkpoint, tmp_path):
    bad = _rewrite(checkpoint, tmp_path / "binary.npz", b"\xff\xfe\x00")
    with pytest.raises(ValueError) as info:
        rtrl.load(bad)
    _assert_clear(info, bad)


# LIBRARY BUG (reported): a header that parses as JSON but is not the expected object leaks
# KeyError ('model') / AttributeError ('list' object has no attribute 'get'); a .npy file leaks
# TypeError ('numpy.ndarray' object does not support the context manager protocol).
@pytest.mark.parametrize("header", [
    {"format": "rtrl-checkpoint", "version": 1},
    [1, 2],
    "rtrl-checkpoint",
], ids=["missing-keys", "list", "string"])
def test_load_malformed_header(checkpoint, tmp_path, header):
    bad = _rewrite(checkpoint, tmp_path / "malformed.npz", json.dumps(header).encode())
    with pytest.raises(ValueError) as info:
        rtrl.load(bad)
    _assert_clear(info, bad)


def test_load_npy_file(tmp_path):  # LIBRARY BUG (reported), see above
    bad = tmp_path / "array.npy"
    np.save(bad, np.zeros(3))
    with pytest.raises(ValueError) as info:
        rtrl.load(bad)
    _assert_clear(info, bad)


def test_load_missing_state_entry(checkpoint, tmp_path):
    bad = _rewrite(checkpoint, tmp_path / "partial.npz", drop=("sensitivities",))
    with pytest.raises(ValueError, match="sensitivities"):
        rtrl.load(bad)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        rtrl.load(tmp_path / "absent.npz")


_unpickled = []


class _Trap:
    def __reduce__(self):
        return (_unpickled.append, ("code ran",))


def test_load_never_unpickles(checkpoint, tmp_path):
    trap = np.empty(1, dtype=object)
    trap[0] = _Trap()
    bad = _rewrite(checkpoint, tmp_path / "trap.npz", extra={"state": trap})
    with pytest.raises(ValueError):
        rtrl.load(bad)
    assert _unpickled == []


# ------------------------------------------------------------------------------------------------
# atomic save


def _broken_savez(file, *args, **kwargs):
    file.write(b"PK\x03\x04 half a zip")
    raise OSError("disk full (simulated)")


def test_save_is_atomic(tmp_path, monkeypatch):
    learner = _make("rtrl-realtime-adam", "cpu")
    X, D = _data(5, T=40)
    learner.run(X[:20], D[:20])
    path = tmp_path / "ckpt.npz"
    learner.save(path)
    original = path.read_bytes()
    learner.run(X[20:], D[20:])

    monkeypatch.setattr(np, "savez", _broken_savez)
    with pytest.raises(OSError, match="simulated"):
        learner.save(path)
    monkeypatch.undo()

    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind
    assert rtrl.load(path).steps == 20

    # a failed first save leaves nothing at all
    with monkeypatch.context() as m:
        m.setattr(np, "savez", _broken_savez)
        with pytest.raises(OSError):
            learner.save(tmp_path / "new.npz")
    assert os.listdir(tmp_path) == ["ckpt.npz"]

    learner.save(path)  # and a good save replaces the file
    assert rtrl.load(path).steps == 40


def test_save_interrupted_by_keyboard_interrupt_cleans_up(tmp_path, monkeypatch):
    def interrupted(file, *args, **kwargs):
        file.write(b"PK")
        raise KeyboardInterrupt

    learner = _make("bptt-sgd", "cpu")
    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        learner.save(tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


# LIBRARY BUG (reported): the checkpoint is written through tempfile.mkstemp (mode 0600) and renamed,
# so it ends up readable by its owner only, unlike any other file the user writes (0666 & ~umask).
def test_saved_file_has_normal_permissions(tmp_path):
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    learner = _make("rtrl-realtime-adam", "cpu")
    learner.save(tmp_path / "ckpt.npz")
    assert (tmp_path / "ckpt.npz").stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
