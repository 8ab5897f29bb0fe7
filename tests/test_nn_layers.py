"""rtrl.nn.RNN / LSTM / GRU against torch.nn (API.md "Layers"): outputs, final states, the gradients of
input, initial states and every parameter for every option (num_layers, bidirectional, batch_first,
initial states, bias, unbatched input, tanh/relu), parameter names and shapes, default initialisation
and seeding.

Backward is driven by random upstream gradients: torch's loss is sum(out * g_out) + sum(h_n * g_h)
[+ sum(c_n * g_c)], ours ``layer.backward(g_out, g_h)`` or ``(g_out, (g_h, g_c))``. Without initial
states torch is given explicit zeros (which requires_grad), so dh0 (dc0) is compared in that case too.
Tolerances: float64 within 1e-10 relative (observed ~1e-15), float32 within 1e-5 relative (both sides
round at ~6e-8 per operation; observed at most ~8e-7 on these sizes)."""

import numpy as np
import pytest
from conftest import relative_error, to_numpy

import rtrl

torch = pytest.importorskip("torch")

I, H, T, B = 3, 5, 6, 2
TOL = {"float64": 1e-10, "float32": 1e-5}

# (cell, nonlinearity); nonlinearity only for RNN
KINDS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None), ("gru", None)]
KIND_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
# input layout: (batch_first flag, unbatched); torch ignores batch_first for unbatched input
LAYOUTS = {"TBI": (False, False), "BTI": (True, False), "TI": (False, True), "TI_batch_first": (True, True)}

OURS = {"rnn": rtrl.nn.RNN, "lstm": rtrl.nn.LSTM, "gru": rtrl.nn.GRU}
THEIRS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}


def options(cell, nonlinearity, num_layers, bidirectional, batch_first, bias):
    opts = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional)
    if cell == "rnn":
        opts["nonlinearity"] = nonlinearity
    return opts


def make_pair(cell, nonlinearity, num_layers, bidirectional, batch_first, bias, dtype, device, seed=0,
              sizes=(I, H)):
    """A torch module with torch's own initialisation and our layer with its weights loaded."""
    torch.manual_seed(seed)
    opts = options(cell, nonlinearity, num_layers, bidirectional, batch_first, bias)
    tm = THEIRS[cell](*sizes, dtype=TORCH_DTYPE[dtype], **opts)
    ours = OURS[cell](*sizes, dtype=dtype, device=device, seed=seed + 100, **opts)
    ours.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, ours


def check_parity(kind, num_layers, bidirectional, layout, initial, bias, dtype, device, seed=0,
                 sizes=(I, H, T, B)):
    I, H, T, B = sizes
    cell, nonlinearity = kind
    batch_first, unbatched = LAYOUTS[layout]
    lstm = cell == "lstm"
    D = 2 if bidirectional else 1
    tm, ours = make_pair(cell, nonlinearity, num_layers, bidirectional, batch_first, bias, dtype, device, seed,
                         (I, H))

    rng = np.random.default_rng(seed + 1)
    x_shape = (T, I) if unbatched else ((B, T, I) if batch_first else (T, B, I))
    s_shape = (num_layers * D, H) if unbatched else (num_layers * D, B, H)
    o_shape = x_shape[:-1] + (D * H,)
    x = rng.standard_normal(x_shape).astype(dtype)
    h0 = (0.5 * rng.standard_normal(s_shape) if initial else np.zeros(s_shape)).astype(dtype)
    c0 = (0.5 * rng.standard_normal(s_shape) if initial else np.zeros(s_shape)).astype(dtype)
    g_out = rng.standard_normal(o_shape).astype(dtype)
    g_h = rng.standard_normal(s_shape).astype(dtype)
    g_c = rng.standard_normal(s_shape).astype(dtype)

    # torch
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    c0t = torch.tensor(c0, requires_grad=True)
    if lstm:
        out_t, (hn_t, cn_t) = tm(xt, (h0t, c0t))
        loss = (out_t * torch.tensor(g_out)).sum() + (hn_t * torch.tensor(g_h)).sum() \
            + (cn_t * torch.tensor(g_c)).sum()
    else:
        out_t, hn_t = tm(xt, h0t)
        loss = (out_t * torch.tensor(g_out)).sum() + (hn_t * torch.tensor(g_h)).sum()
    loss.backward()

    # ours
    if lstm:
        out, (h_n, c_n) = ours(x, (h0, c0) if initial else None)
        dx, (dh0, dc0) = ours.backward(g_out, (g_h, g_c))
    else:
        out, h_n = ours(x, h0 if initial else None)
        dx, dh0 = ours.backward(g_out, g_h)

    tol = TOL[dtype]
    assert to_numpy(out).shape == o_shape and to_numpy(out).dtype == np.dtype(dtype)
    assert to_numpy(h_n).shape == s_shape and to_numpy(dh0).shape == s_shape
    assert to_numpy(dx).shape == x_shape
    assert relative_error(out, out_t.detach().numpy()) <= tol
    assert relative_error(h_n, hn_t.detach().numpy()) <= tol
    assert relative_error(dx, xt.grad.numpy()) <= tol
    assert relative_error(dh0, h0t.grad.numpy()) <= tol
    if lstm:
        assert to_numpy(c_n).shape == s_shape and to_numpy(dc0).shape == s_shape
        assert relative_error(c_n, cn_t.detach().numpy()) <= tol
        assert relative_error(dc0, c0t.grad.numpy()) <= tol
    tparams = dict(tm.named_parameters())
    assert set(ours.grads) == set(tparams)
    for name, p in tparams.items():
        g = to_numpy(ours.grads[name])
        assert g.shape == tuple(p.shape) and g.dtype == np.dtype(dtype), name
        assert relative_error(g, p.grad.numpy()) <= tol, name


# ---------------------------------------------------------------------------------------------
# parity with torch


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("initial", [True, False], ids=["h0", "noh0"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3], ids=["L1", "L2", "L3"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_float64_matches_torch(device, kind, num_layers, bidirectional, layout, initial, bias):
    """The full cross product of options, float64."""
    check_parity(kind, num_layers, bidirectional, layout, initial, bias, "float64", device)


# each option value appears at least once
FLOAT32_CASES = [
    # num_layers, bidirectional, layout, initial, bias
    (1, False, "TBI", True, True),
    (2, True, "BTI", False, True),
    (3, True, "TI", True, False),
    (2, False, "TI_batch_first", True, True),
    (3, False, "BTI", True, False),
]


@pytest.mark.parametrize("case", FLOAT32_CASES, ids=lambda c: "L{}-{}-{}-{}-{}".format(
    c[0], "bi" if c[1] else "uni", c[2], "h0" if c[3] else "noh0", "bias" if c[4] else "nobias"))
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_float32_matches_torch(device, kind, case):
    check_parity(kind, *case, "float32", device, seed=3)


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_longer_sequence_and_larger_sizes_float64(device, kind):
    """A second size: more steps and streams than the cross product above."""
    check_parity(kind, 2, True, "BTI", True, True, "float64", device, seed=5, sizes=(4, 6, 7, 3))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_wide_layer_shares_the_recurrent_product_among_threads(device, kind, dtype):
    """Large enough for the CPU to pack W_hh into strips and share them among threads in every
    step's product (and in backward's): H = 133 leaves a partial last strip, B = 45 leaves
    remainder rows in the register tiles."""
    check_parity(kind, 1, True, "TBI", True, True, dtype, device, seed=6, sizes=(7, 133, 3, 45))


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_state_arguments_optional(device, kind):
    """No initial state equals explicit zeros; backward without state gradients equals zero ones."""
    cell, nonlinearity = kind
    _, ours = make_pair(cell, nonlinearity, 2, True, False, True, "float64", device)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((T, B, I))
    zeros = np.zeros((4, B, H))
    g_out = rng.standard_normal((T, B, 2 * H))
    state = (zeros, zeros) if cell == "lstm" else zeros
    results = []
    for hx, d_state in ((None, None), (state, state)):
        out, s = ours(x, hx) if hx is not None else ours(x)
        back = ours.backward(g_out, d_state) if d_state is not None else ours.backward(g_out)
        grads = {k: to_numpy(v) for k, v in ours.grads.items()}
        results.append((out, s, back, grads))
    (o1, s1, b1, g1), (o2, s2, b2, g2) = results
    assert np.array_equal(to_numpy(o1), to_numpy(o2))
    assert relative_error(b1[0], b2[0]) <= 1e-14
    s1, s2 = (s1 if cell == "lstm" else (s1,)), (s2 if cell == "lstm" else (s2,))
    for a, b in zip(s1, s2):
        assert np.array_equal(to_numpy(a), to_numpy(b))
    d1, d2 = (b1[1] if cell == "lstm" else (b1[1],)), (b2[1] if cell == "lstm" else (b2[1],))
    for a, b in zip(d1, d2):
        assert to_numpy(a).shape == (4, B, H)
        assert relative_error(a, b) <= 1e-14
    for name in g2:
        assert relative_error(g1[name], g2[name]) <= 1e-14, name
    assert np.linalg.norm(to_numpy(b1[0])) > 0


def test_backward_leaves_caller_arrays_alone(device):
    """Forward and backward do not write into the arrays the caller passes in."""
    _, ours = make_pair("lstm", None, 2, True, False, True, "float64", device)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((2, 4, B, H))
    g_out = rng.standard_normal((T, B, 2 * H))
    g_h, g_c = rng.standard_normal((2, 4, B, H))
    copies = [a.copy() for a in (x, h0, c0, g_out, g_h, g_c)]
    ours(x, (h0, c0))
    ours.backward(g_out, (g_h, g_c))
    for a, b in zip((x, h0, c0, g_out, g_h, g_c), copies):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_modifying_returned_output_does_not_change_backward(device, kind):
    # LIBRARY BUG (reported): the returned output aliases the activations saved for backward, so an
    # in-place edit of `output` by the caller (e.g. `out *= 2`) silently corrupts the gradients
    # (torch raises an error for this instead of returning wrong gradients).
    cell, nonlinearity = kind
    _, ours = make_pair(cell, nonlinearity, 1, False, False, True, "float64", device)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((T, B, I))
    g_out = rng.standard_normal((T, B, H))
    ours(x)
    dx_ref, _ = ours.backward(g_out)
    dx_ref = to_numpy(dx_ref).copy()
    grads_ref = {k: to_numpy(v).copy() for k, v in ours.grads.items()}
    out, _ = ours(x)
    out *= 2.0
    dx, _ = ours.backward(g_out)
    assert relative_error(dx, dx_ref) <= 1e-14
    for name, g in grads_ref.items():
        assert relative_error(ours.grads[name], g) <= 1e-14, name


# ---------------------------------------------------------------------------------------------
# parameter names, shapes, initialisation


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3], ids=["L1", "L2", "L3"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_parameter_names_and_shapes_equal_torch(cell, num_layers, bidirectional, bias):
    opts = dict(num_layers=num_layers, bias=bias, bidirectional=bidirectional)
    theirs = {k: tuple(v.shape) for k, v in THEIRS[cell](I, H, **opts).state_dict().items()}
    ours_layer = OURS[cell](I, H, device="cpu", seed=0, **opts)
    state = ours_layer.state_dict()
    assert list(state) == list(theirs)  # same names, same order
    assert {k: tuple(v.shape) for k, v in state.items()} == theirs
    assert list(ours_layer.parameters()) == list(theirs)
    for name, value in state.items():
        assert value.dtype == np.float32
        assert np.array_equal(to_numpy(getattr(ours_layer, name)), to_numpy(value))  # attribute access


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", [4, 6])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_default_init_is_uniform_within_bound(device, kind, hidden, dtype):
    cell, nonlinearity = kind
    opts = options(cell, nonlinearity, 2, True, False, True)
    layer = OURS[cell](I, hidden, dtype=dtype, device=device, seed=11, **opts)
    bound = 1.0 / np.sqrt(hidden)
    values = []
    for name, v in layer.state_dict().items():
        v = to_numpy(v)
        assert v.dtype == np.dtype(dtype)
        assert np.all(np.abs(v) <= bound), name
        assert np.max(np.abs(v)) > 0.5 * bound, name  # not all tiny
        values.append(v.ravel())
    values = np.concatenate(values).astype(np.float64)
    # U(-b, b): mean 0, std b/sqrt(3); several hundred draws, so loose bounds suffice
    assert abs(values.mean()) < 0.1 * bound
    assert 0.85 < values.std() / (bound / np.sqrt(3)) < 1.15
    assert np.max(values) > 0.95 * bound and np.min(values) < -0.95 * bound


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_same_seed_same_parameters(device, cell):
    def params(seed):
        layer = OURS[cell](I, H, num_layers=2, bidirectional=True, device=device, seed=seed)
        return {k: to_numpy(v) for k, v in layer.state_dict().items()}

    a, b, c = params(42), params(42), params(43)
    assert list(a) == list(b) == list(c)
    for name in a:
        assert np.array_equal(a[name], b[name]), name
    assert any(not np.array_equal(a[name], c[name]) for name in a)
    # and different tensors of one layer are not copies of one another
    assert not np.array_equal(a["weight_hh_l0"], a["weight_hh_l0_reverse"])


def test_state_dict_round_trip(device):
    """state_dict() of one layer loads into another, which then computes the same thing."""
    a = rtrl.nn.GRU(I, H, num_layers=2, dtype="float64", device=device, seed=1)
    b = rtrl.nn.GRU(I, H, num_layers=2, dtype="float64", device=device, seed=2)
    x = np.random.default_rng(0).standard_normal((T, B, I))
    assert not np.allclose(to_numpy(a(x)[0]), to_numpy(b(x)[0]))
    b.load_state_dict(a.state_dict())
    assert np.array_equal(to_numpy(a(x)[0]), to_numpy(b(x)[0]))


def test_option_coverage():
    """Guard: the float32 set above covers every value of every option."""
    cols = list(zip(*FLOAT32_CASES))
    assert set(cols[0]) == {1, 2, 3}
    assert set(cols[1]) == {False, True}
    assert set(cols[2]) == set(LAYOUTS)
    assert set(cols[3]) == {False, True}
    assert set(cols[4]) == {False, True}
