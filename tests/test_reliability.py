"""No silent wrong results: each case here once gave a plausible-looking but wrong answer (or an
undocumented exception type). Every test is the reproducer, or its equivalent, of one such case."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rtrl


def _learner(kind="rtrl", dtype="float32", batch_size=1, **kwargs):
    net = rtrl.FullyRecurrent(4, 2, n_outputs=2, seed=1, dtype=dtype, device="cpu")
    cls = rtrl.RTRL if kind == "rtrl" else rtrl.BPTT
    return cls(net, batch_size=batch_size, **kwargs)


def _data(T=12, B=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(T, B, 2)), rng.uniform(0.2, 0.8, size=(T, B, 2))


# -- 1. byte order ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", [">f4", ">f8", "<f4", "=f8"])
def test_non_native_model_dtype_is_normalised(spelling):
    native = np.dtype(spelling).newbyteorder("=")
    for model in (rtrl.FullyRecurrent(3, 2, seed=0, dtype=spelling, device="cpu"),
                  rtrl.RecurrentNet("lstm", 2, 3, 1, seed=0, dtype=spelling, device="cpu")):
        assert model.dtype == native and model.dtype.isnative
        assert all(v.dtype.isnative for v in model.parameters().values())
    layer = rtrl.nn.GRU(2, 3, dtype=spelling, seed=0, device="cpu")
    assert layer.dtype.isnative and layer.weight_ih_l0.dtype.isnative
    reference = rtrl.RTRL(rtrl.FullyRecurrent(3, 2, seed=0, dtype=native.name, device="cpu"), lr=0.1)
    learner = rtrl.RTRL(rtrl.FullyRecurrent(3, 2, seed=0, dtype=spelling, device="cpu"), lr=0.1)
    X = np.random.default_rng(0).normal(size=(10, 2))
    assert np.array_equal(learner.run(X).outputs, reference.run(X).outputs)


def test_big_endian_inputs_give_the_native_result():
    X, D = _data(B=2)
    a, b = _learner(batch_size=2, lr=0.1), _learner(batch_size=2, lr=0.1)
    ra = a.run(X.astype(">f8"), D.astype(">f4"))
    rb = b.run(X, D)
    assert np.array_equal(ra.outputs, rb.outputs) and np.array_equal(ra.loss, rb.loss)
    cell = rtrl.nn.LSTMCell(2, 3, seed=0, device="cpu")
    x = np.random.default_rng(1).normal(size=(2, 2)).astype(np.float32)
    h_native, c_native = cell(x)
    h_big, c_big = cell(x.astype(">f4"), (np.zeros((2, 3), ">f4"), np.zeros((2, 3), ">f4")))
    assert np.array_equal(h_native, h_big) and np.array_equal(c_native, c_big)


def test_core_refuses_big_endian_and_unaligned_arrays():
    """The native boundary itself refuses what it would misread (the Python layer copies first)."""
    core = rtrl._backend._load_cpu_module()
    cell = rtrl.nn.RNNCell(2, 3, seed=0, device="cpu")
    w = cell.parameters()
    x = np.ones((1, 2), np.float32)
    args = ("rnn", "tanh", w["weight_ih"], w["weight_hh"], w["bias_ih"], w["bias_hh"])
    with pytest.raises(ValueError, match="byte order"):
        core.cell_step(*args, x.astype(">f4"), None, None)
    raw = np.zeros(2 * 4 + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float32, offset=1, count=2).reshape(1, 2)
    assert not unaligned.flags.aligned
    with pytest.raises(ValueError, match="aligned"):
        core.cell_step(*args, unaligned, None, None)


def test_checkpoint_header_with_big_endian_dtype_loads_native(tmp_path):
    import json

    learner = _learner(lr=0.1)
    learner.run(*_data())
    path = tmp_path / "a.npz"
    learner.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(bytes(arrays["__header__"]).decode())
    header["model"]["config"]["dtype"] = ">f4"
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    arrays = {k: (v.astype(">f4") if v.dtype == np.float32 else v) for k, v in arrays.items()}
    np.savez(tmp_path / "b.npz", **arrays)
    loaded = rtrl.load(tmp_path / "b.npz")
    assert loaded.model.dtype == np.float32 and loaded.model.dtype.isnative
    X, D = _data(seed=3)
    assert np.array_equal(loaded.run(X, D).outputs, learner.run(X, D).outputs)


# -- unaligned arrays --------------------------------------------------------------------------------
def _unaligned(values):
    values = np.ascontiguousarray(values, dtype=np.float32)
    raw = np.zeros(values.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, dtype=np.float32, offset=1, count=values.size).reshape(values.shape)
    out[...] = values
    assert not out.flags.aligned
    return out


def test_unaligned_float32_inputs_are_copied_to_aligned():
    X, D = _data()
    X = X.astype(np.float32)
    a, b = _learner(lr=0.1), _learner(lr=0.1)
    assert np.array_equal(a.run(_unaligned(X), _unaligned(D)).outputs, b.run(X, D).outputs)
    cell = rtrl.nn.GRUCell(2, 3, seed=0, device="cpu")
    x = X[0]
    assert np.array_equal(cell(_unaligned(x)), cell(x))


# -- 2. parameter assignment -----------------------------------------------------------------------------
def test_assigning_a_layer_parameter_copies_in():
    lstm = rtrl.nn.LSTM(2, 3, num_layers=2, bidirectional=True, seed=0, device="cpu")
    live = lstm.weight_ih_l1_reverse
    new = np.random.default_rng(0).normal(size=live.shape)
    lstm.weight_ih_l1_reverse = new
    assert lstm.weight_ih_l1_reverse is live
    assert np.array_equal(lstm.parameters()["weight_ih_l1_reverse"], new.astype(np.float32))
    out, _ = lstm(np.ones((4, 1, 2), np.float32))
    fresh = rtrl.nn.LSTM(2, 3, num_layers=2, bidirectional=True, seed=0, device="cpu")
    fresh.load_state_dict({**fresh.state_dict(), "weight_ih_l1_reverse": new})
    assert np.array_equal(out, fresh(np.ones((4, 1, 2), np.float32))[0])
    with pytest.raises(ValueError, match=r"weight_ih_l1_reverse: expected shape \(12, 6\)"):
        lstm.weight_ih_l1_reverse = np.zeros((12, 5))
    with pytest.raises(TypeError, match="weight_hh_l0"):
        lstm.weight_hh_l0 = "not an array"
    assert lstm.weight_ih_l1_reverse is live


def test_assigning_a_cell_parameter_copies_in():
    for cell in (rtrl.nn.GRUCell(2, 3, seed=0, device="cpu"), rtrl.nn.RNNCell(2, 3, seed=0, device="cpu"),
                 rtrl.nn.LSTMCell(2, 3, seed=0, device="cpu")):
        x = np.ones(2, np.float32)
        before = cell(x)
        cell.weight_ih = np.zeros_like(cell.weight_ih)
        cell.bias_ih = np.zeros_like(cell.bias_ih)
        assert not cell.parameters()["weight_ih"].any() and not cell.parameters()["bias_ih"].any()
        after = cell(x)
        first = lambda out: out[0] if isinstance(out, tuple) else out  # noqa: E731
        assert not np.array_equal(first(before), first(after))
        with pytest.raises(ValueError, match="weight_hh: expected shape"):
            cell.weight_hh = np.zeros((1, 1))


def test_assigning_a_recurrent_net_parameter_copies_in():
    net = rtrl.RecurrentNet("gru", 2, 3, 1, num_layers=2, seed=0, device="cpu")
    learner = rtrl.RTRL(net, lr=0.1)
    live = net.weight_hh_l1
    net.weight_hh_l1 = np.zeros((9, 3))
    net.bias_out = [0.5]
    assert net.weight_hh_l1 is live and not net.parameters()["weight_hh_l1"].any()
    assert net.parameters()["bias_out"][0] == np.float32(0.5)
    with pytest.raises(ValueError, match=r"weight_out: expected shape \(1, 3\)"):
        net.weight_out = np.zeros((3, 1))
    with pytest.raises(ValueError, match="bias_out: parameters must be finite"):
        net.bias_out = [np.nan]
    learner.run(np.zeros((3, 2)), np.ones((3, 1)))  # the learner trains the assigned values
    assert net.parameters()["bias_out"][0] != 0.5
    with pytest.raises(AttributeError, match="weight_hh_l2: RecurrentNet has no such parameter"):
        net.weight_hh_l2 = np.zeros((9, 3))


def test_one_layer_names_with_the_l0_suffix_and_unknown_names():
    net = rtrl.RecurrentNet("lstm", 2, 3, 1, seed=0, device="cpu")
    net.weight_hh_l0 = np.ones((12, 3))
    assert (net.weight_hh == 1).all() and "weight_hh_l0" not in vars(net)
    gru = rtrl.nn.GRU(2, 3, seed=0, device="cpu")
    with pytest.raises(AttributeError, match="weight_ih_l1: GRU has no such parameter"):
        gru.weight_ih_l1 = np.zeros((9, 3))
    no_bias = rtrl.nn.RNNCell(2, 3, bias=False, seed=0, device="cpu")
    with pytest.raises(AttributeError, match="bias_ih"):
        no_bias.bias_ih = np.zeros(3)


# -- 3. aliasing sources -------------------------------------------------------------------------------
def test_load_state_dict_with_swapped_live_directions():
    gru = rtrl.nn.GRU(2, 3, bidirectional=True, seed=0, device="cpu")
    before = gru.state_dict()
    live = gru.parameters()
    swapped = {k: live[k.replace("_reverse", "") if k.endswith("_reverse") else k + "_reverse"] for k in live}
    gru.load_state_dict(swapped)
    for k, v in gru.parameters().items():
        partner = k.replace("_reverse", "") if k.endswith("_reverse") else k + "_reverse"
        assert np.array_equal(v, before[partner]), k


def test_cell_load_state_dict_with_swapped_live_biases():
    cell = rtrl.nn.LSTMCell(2, 3, seed=0, device="cpu")
    before = cell.state_dict()
    live = cell.parameters()
    cell.load_state_dict({**live, "bias_ih": live["bias_hh"], "bias_hh": live["bias_ih"]})
    assert np.array_equal(cell.bias_ih, before["bias_hh"]) and np.array_equal(cell.bias_hh, before["bias_ih"])


def test_load_parameters_with_rearranged_live_arrays():
    net = rtrl.RecurrentNet("rnn", 3, 3, 3, seed=0, device="cpu")
    before = {k: v.copy() for k, v in net.parameters().items()}
    live = net.parameters()
    net.load_parameters({**live, "weight_ih": live["weight_hh"], "weight_hh": live["weight_ih"],
                         "bias_ih": live["bias_out"], "bias_out": live["bias_ih"]})
    assert np.array_equal(net.weight_ih, before["weight_hh"]) and np.array_equal(net.weight_hh, before["weight_ih"])
    assert np.array_equal(net.bias_ih, before["bias_out"]) and np.array_equal(net.bias_out, before["bias_ih"])


def test_learner_load_state_dict_with_its_own_arrays_rearranged():
    learner = _learner(optimizer=rtrl.optim.SGD(0.1, momentum=0.9))
    learner.run(*_data())
    live = {**learner._arrays(), "parameters": learner.model.parameters()}
    snapshot = learner.state_dict()
    d = {**snapshot, "grad": live["optimizer_state"][0], "optimizer_state": live["grad"][None]}
    d["parameters"] = {"weight": live["optimizer_state"][0]}
    learner.load_state_dict(d)
    assert np.array_equal(learner._grad, snapshot["optimizer_state"][0])
    assert np.array_equal(learner._optimizer_state[0], snapshot["grad"])
    assert np.array_equal(learner.model.weight, snapshot["optimizer_state"][0])


# -- 4. layers own what backward needs ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["memmap", "masked", "subclass", "view"])
def test_layer_backward_ignores_later_changes_to_the_caller_input(tmp_path, kind):
    class Sub(np.ndarray):
        pass

    x = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)
    h0 = np.random.default_rng(1).normal(size=(1, 2, 4)).astype(np.float32)
    if kind == "memmap":
        given = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=x.shape)
        given[...] = x
    elif kind == "masked":
        given = np.ma.masked_array(x.copy(), mask=np.zeros(x.shape, bool))
    elif kind == "subclass":
        given = x.copy().view(Sub)
    else:
        given = np.concatenate([x, x])[:5]
    h_given = h0.copy().view(Sub)
    expected_layer = rtrl.nn.LSTM(3, 4, seed=0, device="cpu")
    out, _ = expected_layer(x, (h0, h0))
    expected = expected_layer.backward(np.ones_like(out))
    layer = rtrl.nn.LSTM(3, 4, seed=0, device="cpu")
    layer(given, (h_given, h_given))
    given[...] = 7.0  # the caller reuses its buffers before backward
    h_given[...] = 7.0
    dx, (dh0, dc0) = layer.backward(np.ones_like(out))
    assert np.array_equal(dx, expected[0]) and np.array_equal(dh0, expected[1][0])
    for k, g in expected_layer.grads.items():
        assert np.array_equal(layer.grads[k], g), k


# -- 5. learner load_state_dict validates every entry ---------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(steps=2**63), r"steps: expected an integer in \[0, 2\*\*63\)"),
    (lambda d: d.update(optimizer_step=2**64), "optimizer_step"),
    (lambda d: d.update(steps=-1), "steps"),
    (lambda d: d["stats"].update(skipped_steps=2**63), "stats"),
    (lambda d: d.update(surprise=1), r"unknown entries \['surprise'\]"),
    (lambda d: d.pop("pending"), r"missing entries \['pending'\]"),
    (lambda d: d.pop("stats"), r"missing entries \['stats'\]"),
], ids=["steps-2**63", "optimizer_step-2**64", "steps-negative", "stats-2**63", "unknown", "no-pending", "no-stats"])
def test_learner_load_state_dict_refuses_bad_entries_before_changing_anything(change, message):
    learner = _learner(optimizer=rtrl.optim.Adam(0.01))
    learner.run(*_data())
    before = learner.state_dict()
    d = learner.state_dict()
    d["stats"] = dict(d["stats"])
    d["state"] = np.zeros_like(d["state"])  # a change that must not happen
    change(d)
    with pytest.raises(ValueError, match=message):
        learner.load_state_dict(d)
    after = learner.state_dict()
    assert np.array_equal(after["state"], before["state"]) and after["steps"] == before["steps"]
    learner.run(*_data())  # and it still runs (no value reached the core)


# -- 6. optimizer lr ---------------------------------------------------------------------------------
def test_changing_lr_takes_effect_and_is_saved(tmp_path):
    X, D = _data(T=20)
    changed = _learner(optimizer=rtrl.optim.SGD(0.5))
    changed.run(X[:10], D[:10])
    changed.optimizer.lr = 0.05
    changed.run(X[10:], D[10:])
    reference = _learner(optimizer=rtrl.optim.SGD(0.5))
    reference.run(X[:10], D[:10])
    state = reference.state_dict()
    reference = _learner(optimizer=rtrl.optim.SGD(0.05))
    reference.load_state_dict(state)
    reference.run(X[10:], D[10:])
    assert np.array_equal(changed.model.weight, reference.model.weight)
    changed.save(tmp_path / "c.npz")
    assert rtrl.load(tmp_path / "c.npz").optimizer.lr == 0.05


def test_invalid_lr_and_read_only_hyper_parameters():
    opt = rtrl.optim.Adam(0.01)
    for bad in (-1, 0, float("nan"), float("inf"), 10**400):
        with pytest.raises(ValueError, match="lr"):
            opt.lr = bad
    with pytest.raises(TypeError, match="lr"):
        opt.lr = "0.1"
    assert opt.lr == 0.01
    with pytest.raises(AttributeError, match="betas: read-only"):
        opt.betas = (0.5, 0.5)
    with pytest.raises(AttributeError, match="momentum: read-only"):
        rtrl.optim.SGD(0.1).momentum = 0.9


# -- 7. 0-d inputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scalar", [0.5, np.float32(0.5), np.float64(0.5), np.array(0.5), 1],
                         ids=["float", "np.float32", "np.float64", "0-d", "int"])
def test_zero_d_input_follows_one_rule(dtype, scalar):
    """A 0-d value keeps no axes whatever its dtype: refused where an axis is expected."""
    net = rtrl.FullyRecurrent(3, 1, seed=0, dtype=dtype, device="cpu")
    learner = rtrl.RTRL(net, lr=0.1)
    with pytest.raises(ValueError, match=r"x: expected shape \(1, 1\).*got shape \(\)"):
        learner.step(scalar)
    assert learner.step([scalar]).shape == (3,)
    cell = rtrl.nn.RNNCell(1, 2, seed=0, dtype=dtype, device="cpu")
    with pytest.raises(ValueError, match="input: expected shape"):
        cell(scalar)


# -- 8. init_scale -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, scale", [("float32", 1e39), ("float64", 1e308), ("float32", float("inf")),
                                          ("float64", 10**400), ("float32", -1.0)])
def test_init_scale_with_non_finite_weights_is_refused(dtype, scale):
    with pytest.raises(ValueError, match="init_scale"):
        rtrl.FullyRecurrent(2, 0, init_scale=scale, dtype=dtype, device="cpu")


def test_largest_init_scale_gives_finite_weights():
    net = rtrl.FullyRecurrent(3, 1, init_scale=float(np.finfo(np.float32).max), seed=0, device="cpu")
    assert np.isfinite(net.weight).all()


# -- 9. warning after consecutive skipped steps -----------------------------------------------------------
def _diverging(kind):
    net = rtrl.RecurrentNet("rnn", 1, 4, 1, nonlinearity="relu", seed=0, device="cpu")
    cls = rtrl.RTRL if kind == "rtrl" else rtrl.BPTT
    extra = {"truncation": 1} if kind == "bptt" else {}
    return cls(net, lr=1e30, on_nonfinite="skip", **extra)


@pytest.mark.parametrize("kind", ["rtrl", "bptt"])
def test_warning_after_consecutive_skipped_steps(kind):
    learner = _diverging(kind)
    assert learner.warn_after_skipped == 1000
    learner.warn_after_skipped = 20
    X = np.full((10, 1), 1e20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learner.run(X, np.zeros((10, 1)))  # 10 skipped: no warning yet
        assert not caught
        learner.run(np.full((30, 1), 1e20), np.zeros((30, 1)))
        learner.run(np.full((30, 1), 1e20), np.zeros((30, 1)))  # once per streak
    assert learner.stats["skipped_steps"] >= 30
    assert len(caught) == 1 and issubclass(caught[0].category, RuntimeWarning)
    assert "steps were all skipped" in str(caught[0].message)


def test_no_warning_when_steps_in_between_succeed():
    learner = _learner(lr=0.1, on_nonfinite="skip")
    learner.warn_after_skipped = 3
    X, D = _data(T=4)
    X[[0, 1, 3]] = np.nan  # skipped, skipped, fine, skipped: no streak of 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        learner.run(X, D)
        learner.run(np.full((1, 2), np.nan), D[:1])  # the streak is 2
    assert learner.stats["skipped_steps"] == 4
    with pytest.warns(RuntimeWarning, match="the last 3 steps"):
        learner.run(np.full((1, 2), np.nan), D[:1])
    with pytest.raises(ValueError, match="warn_after_skipped"):
        learner.warn_after_skipped = 0
    learner.warn_after_skipped = None


# -- sizes checked first -------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: rtrl.nn.LSTM(1, 1, num_layers=2**31, device="cpu"),
    lambda: rtrl.nn.GRU(2**20, 2**16, device="cpu"),
    lambda: rtrl.nn.LSTMCell(2**20, 2**16, device="cpu"),
    lambda: rtrl.FullyRecurrent(2**22, 2**22, device="cpu"),
], ids=["lstm-num_layers-2**31", "gru-huge", "lstmcell-huge", "fully-recurrent-huge"])
def test_huge_layers_are_refused_before_allocating(make):
    with pytest.raises(MemoryError, match="parameters need"):
        make()


# -- exception types ------------------------------------------------------------------------------------
def test_documented_exception_types():
    with pytest.raises(ValueError, match="lr"):
        rtrl.optim.SGD(10**400)
    with pytest.raises(ValueError, match="eps"):
        rtrl.optim.Adam(0.1, eps=10**400)
    net = rtrl.FullyRecurrent(2, 1, device="cpu")
    with pytest.raises(TypeError, match="optimizer: expected rtrl.optim.SGD or rtrl.optim.Adam, got Optimizer"):
        rtrl.RTRL(net, optimizer=rtrl.optim.Optimizer())
    with pytest.raises(TypeError, match="optimizer"):
        rtrl.BPTT(net, optimizer=rtrl.optim.Optimizer())
    with pytest.raises(ValueError, match="exceeds the 32-bit index range"):
        rtrl.memory.estimate("lstm", 2, 2**40, 1)
    with pytest.raises(ValueError, match="exceeds the 32-bit index range"):
        rtrl.memory.estimate("gru", 2**40, 2**40, 1, num_layers=2**40)
    with pytest.raises(ValueError, match="hidden_size: 1180591620717411303424 is beyond"):
        rtrl.memory.estimate("lstm", 2, 2**70, 1)
    with pytest.raises(MemoryError, match="parameters need"):
        rtrl.FullyRecurrent(2**70, 1, device="cpu")
    with pytest.raises(ValueError, match="batch_size: expected a positive integer below 2"):
        rtrl.RTRL(net, batch_size=2**70)
