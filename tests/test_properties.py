"""Property-based tests (hypothesis, derandomized for reproducible CI).

1. FullyRecurrent: over random sizes, bias, activation, streams, length, reduction, teacher forcing and
   NaN target masks (including none and all-NaN), RTRL's epoch-mode gradient equals BPTT's, with the
   same outputs and per-step losses.
2. RecurrentNet: the same for every cell (rnn tanh/relu, lstm, gru) and both losses (mse with NaN
   masks, cross_entropy with -1 gaps), for every parameter.
3. Malformed input to the public entry points never crashes the interpreter: a child process makes a
   fixed-seed batch of bad calls, each of which must succeed or raise ValueError/TypeError (RuntimeError
   only where documented); a segfault shows as a negative return code.
"""

import subprocess
import sys
import textwrap

import numpy as np
from conftest import relative_error, to_numpy
from hypothesis import HealthCheck, given, settings, strategies as st

import rtrl

SETTINGS = dict(derandomize=True, deadline=None, max_examples=40,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EXACT = 1e-9
ZERO = 1e-12


def assert_same_gradient(g_rt, g_bp, name):
    g_rt, g_bp = to_numpy(g_rt).astype(np.float64), to_numpy(g_bp).astype(np.float64)
    assert g_rt.shape == g_bp.shape, name
    assert np.all(np.isfinite(g_rt)) and np.all(np.isfinite(g_bp)), name
    if np.linalg.norm(g_bp) > ZERO:
        assert relative_error(g_rt, g_bp) <= EXACT, (name, g_rt, g_bp)
    else:
        assert np.max(np.abs(g_rt), initial=0.0) <= ZERO, (name, g_rt)
        assert np.max(np.abs(g_bp), initial=0.0) <= ZERO, (name, g_bp)


def assert_same_forward(res_rt, res_bp, T, B, O):
    out_rt, out_bp = to_numpy(res_rt.outputs), to_numpy(res_bp.outputs)
    loss_rt, loss_bp = to_numpy(res_rt.loss), to_numpy(res_bp.loss)
    assert out_rt.shape == out_bp.shape == (T, B, O)
    assert loss_rt.shape == loss_bp.shape == (T,)
    assert np.all(np.isfinite(out_rt)) and np.all(np.isfinite(loss_rt))
    np.testing.assert_allclose(out_rt, out_bp, rtol=0, atol=1e-13)
    np.testing.assert_allclose(loss_rt, loss_bp, rtol=1e-12, atol=1e-15)
    assert np.all(loss_rt >= 0)


def nan_mask(rng, mode, shape):
    """True where the target is missing: none, all, or a random fraction."""
    if mode == "none":
        return np.zeros(shape, dtype=bool)
    if mode == "all":
        return np.ones(shape, dtype=bool)
    return rng.random(shape) < rng.uniform(0.1, 0.9)


MASKS = st.sampled_from(["none", "all", "random", "random"])


# ---------------------------------------------------------------------------------------------
# 1. FullyRecurrent


@st.composite
def fully_recurrent_cases(draw):
    n_units = draw(st.integers(1, 6))
    return dict(
        n_units=n_units,
        n_inputs=draw(st.integers(0, 3)),
        n_outputs=draw(st.integers(0, n_units)),
        bias=draw(st.booleans()),
        activation=draw(st.sampled_from(["logistic", "tanh"])),
        B=draw(st.integers(1, 3)),
        T=draw(st.integers(1, 8)),
        reduction=draw(st.sampled_from(["mean", "sum"])),
        teacher_forcing=draw(st.booleans()),
        mask=draw(MASKS),
        scale=draw(st.sampled_from([0.1, 0.7, 2.0])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@settings(**SETTINGS)
@given(fully_recurrent_cases())
def test_fully_recurrent_rtrl_epoch_gradient_equals_bptt(case):
    c = case
    rng = np.random.default_rng(c["seed"])
    width = c["n_inputs"] + int(c["bias"]) + c["n_units"]
    W = rng.normal(0.0, c["scale"], size=(c["n_units"], width))
    T, B, O = c["T"], c["B"], c["n_outputs"]
    X = rng.normal(size=(T, B, c["n_inputs"]))
    lo = -0.9 if c["activation"] == "tanh" else 0.05
    D = rng.uniform(lo, 0.95, size=(T, B, O))
    D[nan_mask(rng, c["mask"], D.shape)] = np.nan

    def model():
        m = rtrl.FullyRecurrent(c["n_units"], c["n_inputs"], n_outputs=O, activation=c["activation"],
                                bias=c["bias"], seed=0, dtype="float64", device="cpu")
        m.weight = W
        return m

    kw = dict(batch_size=B, reduction=c["reduction"], teacher_forcing=c["teacher_forcing"])
    rt = rtrl.RTRL(model(), update="epoch", **kw)
    bp = rtrl.BPTT(model(), **kw)
    res_rt, res_bp = rt.run(X, D), bp.run(X, D)

    assert_same_forward(res_rt, res_bp, T, B, O)
    np.testing.assert_allclose(to_numpy(rt.state), to_numpy(bp.state), rtol=0, atol=1e-13)
    g_rt, g_bp = rt.gradients(), bp.gradients()
    assert sorted(g_rt) == sorted(g_bp) == ["weight"]
    assert_same_gradient(g_rt["weight"], g_bp["weight"], "weight")
    if np.isnan(D).all():  # no target anywhere: no loss, no gradient
        assert not np.any(to_numpy(res_rt.loss))
        assert not np.any(to_numpy(g_rt["weight"]))
    # no optimizer: the weights are untouched
    np.testing.assert_array_equal(to_numpy(rt.model.weight), W)
    np.testing.assert_array_equal(to_numpy(bp.model.weight), W)


# ---------------------------------------------------------------------------------------------
# 2. RecurrentNet


@st.composite
def recurrent_net_cases(draw):
    cell, nonlinearity = draw(st.sampled_from([("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"),
                                               ("gru", "tanh")]))
    return dict(
        cell=cell, nonlinearity=nonlinearity,
        I=draw(st.integers(1, 3)), H=draw(st.integers(1, 4)), O=draw(st.integers(1, 3)),
        B=draw(st.integers(1, 3)), T=draw(st.integers(1, 6)),
        loss=draw(st.sampled_from(["mse", "cross_entropy"])),
        reduction=draw(st.sampled_from(["mean", "sum"])),
        mask=draw(MASKS),
        scale=draw(st.sampled_from([0.1, 0.6, 1.5])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@settings(**SETTINGS)
@given(recurrent_net_cases())
def test_recurrent_net_rtrl_epoch_gradient_equals_bptt(case):
    c = case
    rng = np.random.default_rng(c["seed"])
    T, B, I, H, O = c["T"], c["B"], c["I"], c["H"], c["O"]
    G = {"rnn": 1, "lstm": 4, "gru": 3}[c["cell"]]
    shapes = {"weight_ih": (G * H, I), "weight_hh": (G * H, H), "bias_ih": (G * H,), "bias_hh": (G * H,),
              "weight_out": (O, H), "bias_out": (O,)}
    params = {k: rng.normal(0.0, c["scale"], shape) for k, shape in shapes.items()}
    X = rng.normal(size=(T, B, I))
    missing = nan_mask(rng, c["mask"], (T, B))
    if c["loss"] == "mse":
        targets = rng.normal(size=(T, B, O))
        targets[nan_mask(rng, "random", targets.shape) & (c["mask"] == "random")] = np.nan
        targets[missing] = np.nan
    else:
        targets = rng.integers(0, O, size=(T, B))
        targets[missing] = -1

    def net():
        n = rtrl.RecurrentNet(c["cell"], I, H, O, nonlinearity=c["nonlinearity"], seed=0, dtype="float64",
                              device="cpu")
        n.load_parameters(params)
        return n

    kw = dict(batch_size=B, loss=c["loss"], reduction=c["reduction"])
    rt = rtrl.RTRL(net(), update="epoch", **kw)
    bp = rtrl.BPTT(net(), **kw)
    res_rt, res_bp = rt.run(X, targets), bp.run(X, targets)

    assert_same_forward(res_rt, res_bp, T, B, O)
    np.testing.assert_allclose(to_numpy(rt.state), to_numpy(bp.state), rtol=0, atol=1e-13)
    g_rt, g_bp = rt.gradients(), bp.gradients()
    assert sorted(g_rt) == sorted(g_bp) == sorted(shapes)
    for name, shape in shapes.items():
        assert to_numpy(g_rt[name]).shape == shape
        assert_same_gradient(g_rt[name], g_bp[name], name)
    if c["mask"] == "all":
        assert not np.any(to_numpy(res_rt.loss))
        for name in shapes:
            assert not np.any(to_numpy(g_rt[name])), name
    for name in shapes:
        np.testing.assert_array_equal(to_numpy(rt.model.parameters()[name]), params[name])


# ---------------------------------------------------------------------------------------------
# 3. Malformed input never crashes the interpreter

FUZZ_CHILD = textwrap.dedent(r'''
    import json, os, random, sys, tempfile, warnings
    import numpy as np
    import rtrl
    warnings.simplefilter("ignore")
    rnd = random.Random(20240607)
    nrng = np.random.default_rng(20240607)
    TMP = tempfile.mkdtemp(prefix="rtrl-fuzz-")

    def junk_value():
        k = rnd.randrange(14)
        if k == 0: return None
        if k == 1: return "abc"
        if k == 2: return b"xy"
        if k == 3: return object()
        if k == 4: return [[1.0, 2.0], [3.0]]
        if k == 5: return [[1.0, "a"], [2.0, 3.0]]
        if k == 6: return np.array([1 + 2j, 3j])
        if k == 7: return np.array([object(), 1], dtype=object)
        if k == 8: return np.full(rnd.choice([(2,), (3, 2), (1, 1, 1)]), rnd.choice([np.nan, np.inf, -np.inf]))
        if k == 9: return rnd.choice([True, -1, 0, 2.5, float("nan"), 10**30])
        if k == 10: return {"a": 1}
        if k == 11: return np.zeros(tuple(rnd.randrange(0, 4) for _ in range(rnd.randrange(0, 6))))
        if k == 12: return np.array(["1.0", "2.0"])
        return np.ones((2, 2), dtype=rnd.choice([np.int8, np.bool_, np.float16, np.complex64, np.uint64]))

    def bad_array(good_shape):
        k = rnd.randrange(8)
        if k == 0: return junk_value()
        if k == 1:  # wrong ndim
            return nrng.normal(size=tuple(rnd.randrange(0, 4) for _ in range(rnd.choice([0, 1, 4, 5]))))
        if k == 2:  # one axis off
            shape = list(good_shape)
            if shape:
                i = rnd.randrange(len(shape)); shape[i] = max(0, shape[i] + rnd.choice([-1, 1, 3]))
            return nrng.normal(size=tuple(shape))
        if k == 3:
            a = nrng.normal(size=good_shape)
            if a.size: a.flat[rnd.randrange(a.size)] = rnd.choice([np.nan, np.inf, -np.inf, 1e300])
            return a
        if k == 4:
            return nrng.normal(size=good_shape).astype(rnd.choice([np.complex128, object, np.float16, np.int64]))
        if k == 5:
            return nrng.normal(size=good_shape).tolist()
        if k == 6:
            return np.asfortranarray(nrng.normal(size=good_shape + (2,)))[..., 0]
        return nrng.normal(size=good_shape)  # a good one now and then

    def bad_int():
        return rnd.choice([0, -1, -5, True, False, 2.0, 1.5, "3", None, np.int64(2), np.int8(-3), float("nan"), [2], 1j])

    def bad_str():
        return rnd.choice(["", "LSTM", "sigmoid", "relu", "tanh", None, 3, b"rnn", "rnn ", "cross_entropy"])

    def make_model():
        if rnd.random() < 0.5:
            return rtrl.FullyRecurrent(rnd.randrange(1, 4), rnd.randrange(0, 3), seed=0, device="cpu",
                                       dtype=rnd.choice(["float32", "float64"]))
        return rtrl.RecurrentNet(rnd.choice(["rnn", "lstm", "gru"]), rnd.randrange(1, 3), rnd.randrange(1, 3),
                                 rnd.randrange(1, 3), seed=0, device="cpu", dtype=rnd.choice(["float32", "float64"]))

    def make_learner():
        m = make_model()
        B = rnd.randrange(1, 3)
        loss = "cross_entropy" if isinstance(m, rtrl.RecurrentNet) and rnd.random() < 0.4 else "mse"
        lr = rnd.choice([None, 0.1])
        if rnd.random() < 0.5:
            return rtrl.RTRL(m, lr=lr, batch_size=B, loss=loss, update=rnd.choice(["realtime", "epoch"]))
        return rtrl.BPTT(m, lr=lr, batch_size=B, loss=loss, truncation=rnd.choice([None, 1, 3]))

    def case():
        """One call: returns (description, thunk, RuntimeError allowed)."""
        k = rnd.randrange(15)
        if k == 0:
            args = [bad_int(), bad_int()]
            kw = rnd.choice([{}, {"n_outputs": bad_int()}, {"activation": bad_str()}, {"bias": bad_int()},
                             {"dtype": bad_str()}, {"init_scale": rnd.choice([-1.0, float("nan"), "x", float("inf")])},
                             {"device": bad_str()}])
            return f"FullyRecurrent({args!r}, {kw!r})", lambda: rtrl.FullyRecurrent(*args, device="cpu", **kw) if "device" not in kw else rtrl.FullyRecurrent(*args, **kw), False
        if k == 1:
            args = [rnd.choice([bad_str(), "rnn", "lstm", "gru"]), bad_int(), rnd.choice([bad_int(), 2]), rnd.choice([bad_int(), 1])]
            kw = rnd.choice([{}, {"nonlinearity": bad_str()}, {"dtype": bad_str()}])
            return f"RecurrentNet({args!r}, {kw!r})", lambda: rtrl.RecurrentNet(*args, device="cpu", **kw), False
        if k == 2:
            m = make_model()
            kw = rnd.choice([{"batch_size": bad_int()}, {"lr": rnd.choice([-1.0, "x", float("nan"), 0.0, None])},
                             {"loss": bad_str()}, {"reduction": bad_str()}, {"update": bad_str()},
                             {"teacher_forcing": rnd.choice([bad_int(), True])}, {"truncation": bad_int()}, {"clip_grad_norm": rnd.choice([-1.0, 0, "x", float("inf")])},
                             {"optimizer": junk_value()}, {"lr": 0.1, "optimizer": rtrl.optim.SGD(0.1)}])
            cls = rnd.choice([rtrl.RTRL, rtrl.BPTT])
            if "update" in kw: cls = rtrl.RTRL
            if "truncation" in kw: cls = rtrl.BPTT
            return f"{cls.__name__}(model, {kw!r})", lambda: cls(m, **kw), False
        if k == 3:
            junk = junk_value()
            return f"RTRL({junk!r})", lambda: rtrl.RTRL(junk), False
        if k in (4, 5):
            L = make_learner(); m = L.model; B = L.batch_size; T = rnd.randrange(0, 4)
            X = bad_array((T, B, m.n_inputs)) if rnd.random() < 0.7 else nrng.normal(size=(T, B, m.n_inputs))
            if L.loss == "cross_entropy":
                tg = rnd.choice([None, bad_array((T, B)), nrng.integers(-3, 5, size=(T, B)),
                                 nrng.integers(-1, m.n_outputs, size=(T, B)).astype(np.float64)])
            else:
                tg = rnd.choice([None, bad_array((T, B, m.n_outputs))])
            return f"{type(L).__name__}.run(X, targets)", lambda: L.run(X, tg), False
        if k == 6:
            L = make_learner(); m = L.model; B = L.batch_size
            x = bad_array((B, m.n_inputs))
            tg = None if rnd.random() < 0.5 else (bad_array((B,)) if L.loss == "cross_entropy" else bad_array((B, m.n_outputs)))
            return f"{type(L).__name__}.step(x, target)", lambda: L.step(x, tg), False
        if k == 7:
            L = make_learner()
            sd = L.state_dict()
            k2 = rnd.randrange(4)
            if k2 == 0: d = junk_value()
            elif k2 == 1:
                d = dict(sd); d.pop(rnd.choice(sorted(d)))
            else:
                d = dict(sd); key = rnd.choice(sorted(d)); d[key] = junk_value() if k2 == 2 else bad_array(np.shape(d[key]) if not isinstance(d[key], dict) else (2,))
            return "learner.load_state_dict(junk)", lambda: L.load_state_dict(d), False
        if k == 8:
            L = make_learner()
            op = rnd.choice(["apply", "reset", "load_parameters", "set_weight"])
            if op == "apply":
                return "learner.apply()", L.apply, L.optimizer is None
            if op == "reset":
                s = rnd.choice([junk_value(), [5], [-9], [0.5], [[0]], 1, []])
                return f"learner.reset({s!r})", lambda: L.reset(s), False
            if op == "load_parameters":
                p = rnd.choice([junk_value(), {k: junk_value() for k in L.model.parameters()},
                                {k: bad_array(tuple(v.shape)) for k, v in L.model.parameters().items()}])
                return "model.load_parameters(junk)", lambda: L.model.load_parameters(p), False
            if isinstance(L.model, rtrl.FullyRecurrent):
                w = bad_array(tuple(L.model.weight.shape))
                def setw():
                    L.model.weight = w
                return "model.weight = junk", setw, False
            return "learner.apply()", L.apply, L.optimizer is None
        if k in (9, 10):
            cls = rnd.choice([rtrl.nn.LSTM, rtrl.nn.GRU, rtrl.nn.RNN])
            I, H = rnd.randrange(1, 4), rnd.randrange(1, 4)
            if rnd.random() < 0.25:
                args = [bad_int(), rnd.choice([bad_int(), 2])]
                kw = rnd.choice([{}, {"num_layers": bad_int()}, {"bias": bad_int()}, {"batch_first": bad_int()},
                                 {"bidirectional": bad_int()}, {"dtype": bad_str()}, {"nonlinearity": bad_str()}])
                if cls is not rtrl.nn.RNN: kw.pop("nonlinearity", None)
                return f"{cls.__name__}({args!r}, {kw!r})", lambda: cls(*args, device="cpu", **kw), False
            layer = cls(I, H, num_layers=rnd.randrange(1, 3), bidirectional=rnd.random() < 0.3,
                        batch_first=rnd.random() < 0.3, device="cpu", seed=0)
            D = 2 if layer.bidirectional else 1
            T, B = rnd.randrange(0, 4), rnd.randrange(1, 3)
            x = bad_array((T, B, I)) if rnd.random() < 0.7 else nrng.normal(size=(T, B, I))
            hs = (layer.num_layers * D, B, H)
            if cls is rtrl.nn.LSTM:
                hx = rnd.choice([None, junk_value(), (bad_array(hs), bad_array(hs)), [nrng.normal(size=hs)], (None, None)])
            else:
                hx = rnd.choice([None, bad_array(hs)])
            mode = rnd.randrange(4)
            if mode == 0:
                return f"{cls.__name__}.backward before forward", lambda: layer.backward(nrng.normal(size=(T, B, D * H))), True
            if mode == 1:
                def fb():
                    out = layer(nrng.normal(size=(max(T, 1), B, I)))[0]
                    return layer.backward(bad_array(tuple(out.shape)), rnd.choice([None, junk_value()]))
                return f"{cls.__name__}.backward(junk)", fb, False
            return f"{cls.__name__}(x, hx)", lambda: layer(x, hx), False
        # k >= 11: checkpoints with junk; nn layer / cell load_state_dict with junk, cells with bad input
        u = rnd.random()
        if u < 0.5:
            L = make_learner()
            path = os.path.join(TMP, f"c{rnd.randrange(10**9)}.npz")
            L.save(path)
            mode = rnd.randrange(5)
            if mode == 0:  # truncated or flipped bytes
                data = bytearray(open(path, "rb").read())
                if rnd.random() < 0.5:
                    data = data[:rnd.randrange(len(data))]
                else:
                    for _ in range(rnd.randrange(1, 20)):
                        data[rnd.randrange(len(data))] = rnd.randrange(256)
                open(path, "wb").write(bytes(data))
            elif mode in (1, 2):  # a JSON value of the header replaced with junk
                with np.load(path) as z:
                    arrays = {k: z[k] for k in z.files}
                header = json.loads(bytes(arrays["__header__"]).decode())
                slots = []
                def walk(d):
                    for k, v in d.items():
                        if isinstance(v, dict):
                            slots.append((d, k)); walk(v)
                        else:
                            slots.append((d, k))
                walk(header)
                d, key = rnd.choice(slots)
                if rnd.random() < 0.2:
                    del d[key]
                else:
                    d[key] = rnd.choice([None, -1, 0, "x", [], {}, 1.5, True, [1, "a"], {"a": None}, "lstm", "RTRL", 3])
                arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
                np.savez(path, **arrays)
            elif mode == 3:  # an array replaced with junk
                with np.load(path) as z:
                    arrays = {k: z[k] for k in z.files}
                key = rnd.choice(sorted(arrays))
                if rnd.random() < 0.3:
                    del arrays[key]
                else:
                    v = bad_array(arrays[key].shape)
                    try:
                        v = np.asarray(v)
                        if v.dtype == object: v = np.zeros(3)
                    except Exception:
                        v = np.zeros(3)
                    arrays[key] = v
                np.savez(path, **arrays)
            else:  # not a checkpoint at all
                rnd.choice([lambda: np.save(path, np.zeros(3)), lambda: open(path, "wb").write(b""),
                            lambda: open(path, "w").write("hello"), lambda: np.savez(path, a=np.zeros(2))])()
                if rnd.random() < 0.3:
                    path = rnd.choice([TMP, os.path.join(TMP, "missing.npz"), 3, None, b"\0"])
            desc = "rtrl.load(junk)" if isinstance(path, str) and os.path.isfile(path) else f"rtrl.load(path={path!r})"
            return desc, lambda: rtrl.load(path), False
        if u < 0.7:
            cell = rnd.choice([rtrl.nn.LSTMCell, rtrl.nn.GRUCell, rtrl.nn.RNNCell])(2, 3, device="cpu", seed=0)
            B = rnd.randrange(1, 3)
            x = nrng.normal(size=(B, 2))
            hx = bad_array((B, 3))
            if isinstance(cell, rtrl.nn.LSTMCell):
                hx = rnd.choice([hx, (hx, bad_array((B, 3))), (nrng.normal(size=(B, 3)), hx), [hx], junk_value()])
            return f"{type(cell).__name__}(x, junk hx)", lambda: cell(x, hx), False
        if u < 0.8:
            layer = rnd.choice([rtrl.nn.LSTM, rtrl.nn.GRU, rtrl.nn.RNN])(2, 3, device="cpu", seed=0)
            sd = layer.state_dict()
            d = rnd.choice([junk_value(), {k: junk_value() for k in sd}, {**sd, "weight_xx_l0": np.zeros(2)},
                            {k: bad_array(tuple(v.shape)) for k, v in sd.items()}, {}])
            return "layer.load_state_dict(junk)", lambda: layer.load_state_dict(d), False
        cell = rnd.choice([rtrl.nn.LSTMCell, rtrl.nn.GRUCell, rtrl.nn.RNNCell])(2, 3, device="cpu", seed=0)
        x = bad_array((rnd.randrange(1, 3), 2))
        return f"{type(cell).__name__}(junk)", lambda: cell(x), False

    calls = bad = 0
    for i in range(800):
        try:
            desc, thunk, runtime_ok = case()
        except (ValueError, TypeError) as exc:  # setting up with a good model must not fail
            print(f"SETUP FAILED at case {i}: {type(exc).__name__}: {exc}")
            bad += 1
            continue
        calls += 1
        try:
            thunk()
        except (ValueError, TypeError):
            pass
        except OSError as exc:  # a path that is no file: the OS error (FileNotFoundError, IsADirectoryError)
            if not desc.startswith("rtrl.load(path="):
                bad += 1
                print(f"UNEXPECTED {type(exc).__name__} at case {i}: {desc}: {exc}")
        except RuntimeError as exc:
            if not runtime_ok:
                bad += 1
                print(f"UNEXPECTED RuntimeError at case {i}: {desc}: {exc}")
        except BaseException as exc:
            bad += 1
            print(f"UNEXPECTED {type(exc).__name__} at case {i}: {desc}: {exc!r}"[:400])
        sys.stdout.flush()
    import shutil
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"CALLS {calls} BAD {bad}")
    sys.exit(1 if bad else 0)
''')


def test_malformed_input_never_crashes_the_interpreter():
    proc = subprocess.run([sys.executable, "-c", FUZZ_CHILD], capture_output=True, text=True, timeout=120)
    report = f"rc={proc.returncode}\nstdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert proc.returncode >= 0, "the interpreter crashed (signal)\n" + report
    assert proc.returncode == 0, report
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("CALLS "), report
    assert int(last.split()[1]) >= 700, report


def test_load_of_corrupt_zip_raises_value_error(tmp_path):
    """A checkpoint whose zip metadata is corrupt must be refused with ValueError, like every other
    unreadable file (zipfile raises NotImplementedError for "zip file version X", strong encryption
    and unknown compression; found by the fuzz above)."""
    learner = rtrl.RTRL(rtrl.FullyRecurrent(2, 1, seed=0, device="cpu"), lr=0.1)
    good = tmp_path / "good.npz"
    learner.save(good)
    data = bytearray(good.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central-directory entry
    cases = {"version": (entry + 6, 75),  # "version needed to extract" = 7.5
             "encryption": (entry + 8, 0x41),  # general-purpose flags: encrypted + strong encryption
             "compression": (entry + 10, 99)}  # an unknown compression method
    failures = []
    for name, (offset, value) in cases.items():
        bad = bytearray(data)
        bad[offset] = value
        path = tmp_path / f"{name}.npz"
        path.write_bytes(bytes(bad))
        try:
            rtrl.load(path)
        except ValueError:
            continue
        except Exception as exc:  # noqa: BLE001 - the point is which exception escapes
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
        else:
            failures.append(f"{name}: loaded without error")
    assert not failures, failures
