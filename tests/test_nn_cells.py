"""rtrl.nn.RNNCell / LSTMCell / GRUCell (API.md "Layers": cells with torch's call signatures): one step
equals the layer with T = 1, a step-wise loop equals the layer over T steps, forward and one-step
backward match torch.nn.*Cell, parameter names. float64 within 1e-10 relative, float32 within 1e-5."""

import numpy as np
import pytest
from conftest import relative_error, to_numpy

import rtrl

torch = pytest.importorskip("torch")

I, H, T, B = 4, 5, 6, 3
TOL = {"float64": 1e-10, "float32": 1e-5}
TORCH_DTYPE = {"float32": torch.float32, "float64": torch.float64}
NAMES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]

KINDS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None), ("gru", None)]
KIND_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
CELLS = {"rnn": rtrl.nn.RNNCell, "lstm": rtrl.nn.LSTMCell, "gru": rtrl.nn.GRUCell}
LAYERS = {"rnn": rtrl.nn.RNN, "lstm": rtrl.nn.LSTM, "gru": rtrl.nn.GRU}
TORCH_CELLS = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}


def make_cell(kind, bias=True, dtype="float64", device="cpu", seed=0):
    cell, nonlinearity = kind
    if cell == "rnn":  # torch's positional signature: (input_size, hidden_size, bias, nonlinearity)
        return rtrl.nn.RNNCell(I, H, bias, nonlinearity, dtype=dtype, device=device, seed=seed)
    return CELLS[cell](I, H, bias, dtype=dtype, device=device, seed=seed)


def make_torch_cell(kind, bias=True, dtype="float64", seed=0):
    cell, nonlinearity = kind
    torch.manual_seed(seed)
    if cell == "rnn":
        return torch.nn.RNNCell(I, H, bias, nonlinearity, dtype=TORCH_DTYPE[dtype])
    return TORCH_CELLS[cell](I, H, bias, dtype=TORCH_DTYPE[dtype])


def make_layer_like(cell_obj, kind, bias, dtype, device):
    """A one-layer layer carrying the cell's weights."""
    cell, nonlinearity = kind
    opts = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    layer = LAYERS[cell](I, H, bias=bias, dtype=dtype, device=device, seed=99, **opts)
    layer.load_state_dict({f"{k}_l0": to_numpy(v) for k, v in cell_obj.state_dict().items()})
    return layer


def states(kind, out):
    """A cell's result as a tuple of state arrays."""
    return tuple(out) if kind[0] == "lstm" else (out,)


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_parameter_names(kind, bias):
    cell = make_cell(kind, bias)
    expected = NAMES if bias else NAMES[:2]
    theirs = {k: tuple(v.shape) for k, v in make_torch_cell(kind, bias).state_dict().items()}
    state = cell.state_dict()
    assert list(state) == expected == list(theirs)
    assert list(cell.parameters()) == expected
    assert {k: tuple(v.shape) for k, v in state.items()} == theirs
    for name in expected:
        assert np.array_equal(to_numpy(getattr(cell, name)), to_numpy(state[name]))
    bound = 1.0 / np.sqrt(H)
    assert all(np.all(np.abs(to_numpy(v)) <= bound) for v in state.values())


@pytest.mark.parametrize("initial", [True, False], ids=["hx", "nohx"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_one_step_equals_layer_with_one_step(device, kind, batched, initial):
    cell = make_cell(kind, device=device, seed=1)
    layer = make_layer_like(cell, kind, True, "float64", device)
    rng = np.random.default_rng(2)
    lead = (B,) if batched else ()
    x = rng.standard_normal(lead + (I,))
    hx = tuple(rng.standard_normal(lead + (H,)) for _ in range(2 if kind[0] == "lstm" else 1))
    cell_hx = (hx if kind[0] == "lstm" else hx[0]) if initial else None
    got = states(kind, cell(x, cell_hx))
    layer_hx = tuple(h[None] for h in hx)
    layer_hx = (layer_hx if kind[0] == "lstm" else layer_hx[0]) if initial else None
    out, final = layer(x[None], layer_hx)
    final = states(kind, final)
    assert len(got) == len(final)
    for g, f in zip(got, final):
        assert to_numpy(g).shape == lead + (H,)
        assert relative_error(g, to_numpy(f)[0]) <= 1e-14
    assert relative_error(got[0], to_numpy(out)[0]) <= 1e-14


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_cell_loop_equals_layer(device, kind, batched):
    cell = make_cell(kind, device=device, seed=3)
    layer = make_layer_like(cell, kind, True, "float64", device)
    rng = np.random.default_rng(4)
    lead = (B,) if batched else ()
    x = rng.standard_normal((T,) + lead + (I,))
    h0 = tuple(0.5 * rng.standard_normal(lead + (H,)) for _ in range(2 if kind[0] == "lstm" else 1))
    state = h0 if kind[0] == "lstm" else h0[0]
    outs = []
    for t in range(T):
        state = cell(x[t], state)
        outs.append(to_numpy(states(kind, state)[0]))
    layer_h0 = tuple(h[None] for h in h0)
    out, final = layer(x, layer_h0 if kind[0] == "lstm" else layer_h0[0])
    assert relative_error(np.stack(outs), out) <= 1e-12
    for s, f in zip(states(kind, state), states(kind, final)):
        assert relative_error(s, to_numpy(f)[0]) <= 1e-12
    assert np.linalg.norm(np.stack(outs)[-1] - np.stack(outs)[0]) > 1e-3  # the state really evolves


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("initial", [True, False], ids=["hx", "nohx"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_forward_matches_torch(device, kind, bias, initial, dtype):
    tc = make_torch_cell(kind, bias, dtype, seed=5)
    cell = make_cell(kind, bias, dtype, device, seed=6)
    cell.load_state_dict({k: v.detach().numpy() for k, v in tc.state_dict().items()})
    rng = np.random.default_rng(7)
    for lead in ((B,), ()):
        x = rng.standard_normal(lead + (I,)).astype(dtype)
        hx = tuple(rng.standard_normal(lead + (H,)).astype(dtype) for _ in range(2 if kind[0] == "lstm" else 1))
        thx = tuple(torch.tensor(h) for h in hx)
        if kind[0] == "lstm":
            got, want = cell(x, hx if initial else None), tc(torch.tensor(x), thx if initial else None)
        else:
            got, want = cell(x, hx[0] if initial else None), tc(torch.tensor(x), thx[0] if initial else None)
        got, want = states(kind, got), states(kind, want)
        for g, w in zip(got, want):
            assert to_numpy(g).shape == tuple(w.shape) and to_numpy(g).dtype == np.dtype(dtype)
            assert relative_error(g, w.detach().numpy()) <= TOL[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("initial", [True, False], ids=["hx", "nohx"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_backward_matches_torch(device, kind, bias, batched, initial, dtype):
    lstm = kind[0] == "lstm"
    tc = make_torch_cell(kind, bias, dtype, seed=8)
    cell = make_cell(kind, bias, dtype, device, seed=9)
    cell.load_state_dict({k: v.detach().numpy() for k, v in tc.state_dict().items()})
    rng = np.random.default_rng(10)
    lead = (B,) if batched else ()
    n_states = 2 if lstm else 1
    x = rng.standard_normal(lead + (I,)).astype(dtype)
    hx = [(rng.standard_normal(lead + (H,)) if initial else np.zeros(lead + (H,))).astype(dtype)
          for _ in range(n_states)]
    g = [rng.standard_normal(lead + (H,)).astype(dtype) for _ in range(n_states)]

    xt = torch.tensor(x, requires_grad=True)
    hxt = [torch.tensor(h, requires_grad=True) for h in hx]
    new = states(kind, tc(xt, tuple(hxt) if lstm else hxt[0]))
    sum((s * torch.tensor(gi)).sum() for s, gi in zip(new, g)).backward()

    cell(x, (tuple(hx) if lstm else hx[0]) if initial else None)
    if lstm:
        dx, (dh, dc) = cell.backward(g[0], g[1])
        d_states = (dh, dc)
    else:
        dx, dh = cell.backward(g[0])
        d_states = (dh,)
    tol = TOL[dtype]
    assert to_numpy(dx).shape == x.shape
    assert relative_error(dx, xt.grad.numpy()) <= tol
    for d, ht in zip(d_states, hxt):
        assert to_numpy(d).shape == lead + (H,)
        assert relative_error(d, ht.grad.numpy()) <= tol
    tparams = dict(tc.named_parameters())
    assert set(cell.grads) == set(tparams)
    for name, p in tparams.items():
        assert to_numpy(cell.grads[name]).shape == tuple(p.shape)
        assert relative_error(cell.grads[name], p.grad.numpy()) <= tol, name


def test_lstm_cell_backward_without_dc(device):
    """LSTMCell.backward(dh) treats the missing dc as zeros."""
    cell = make_cell(("lstm", None), device=device, seed=11)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((B, I))
    hc = (rng.standard_normal((B, H)), rng.standard_normal((B, H)))
    g = rng.standard_normal((B, H))
    cell(x, hc)
    dx1, (dh1, dc1) = cell.backward(g)
    cell(x, hc)
    dx2, (dh2, dc2) = cell.backward(g, np.zeros((B, H)))
    for a, b in ((dx1, dx2), (dh1, dh2), (dc1, dc2)):
        assert relative_error(a, b) <= 1e-14
    assert np.linalg.norm(to_numpy(dc1)) > 0


def _call(cell, kind, x, state):
    return cell(x, state) if kind[0] == "lstm" else (cell(x, state), None)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_arrays_taken_as_they_are_and_converted_give_the_same_step(kind, dtype, batched):
    """On the CPU a call whose arrays need no conversion goes straight to the core (cell_call);
    lists, other dtypes, non-contiguous arrays and a list for (h, c) take the converting path. Both
    must give the same step, the same saved state for backward and the same errors."""
    rng = np.random.default_rng(11)
    lead = (B,) if batched else ()
    # values float32 holds exactly, so that either dtype converts to the other without rounding
    x = rng.normal(size=lead + (I,)).astype(np.float32).astype(dtype)
    h = rng.normal(size=lead + (H,)).astype(np.float32).astype(dtype)
    c = rng.normal(size=lead + (H,)).astype(np.float32).astype(dtype)
    lstm = kind[0] == "lstm"
    direct, converted = make_cell(kind, dtype=dtype, seed=4), make_cell(kind, dtype=dtype, seed=4)
    other = "float32" if dtype == "float64" else "float64"
    x_other = np.asfortranarray(np.stack([x, x], axis=-1)[..., 0]) if batched else x.tolist()
    state_other = [h.astype(other), c.tolist()] if lstm else h.astype(other)
    state = (h, c) if lstm else h

    # the routing itself: these arrays go straight to the core, the others do not
    assert direct._core_call(*direct._native_args, x, state) is not None
    assert converted._core_call(*converted._native_args, x_other, state_other) is None
    h1, c1 = _call(direct, kind, x, state)
    h2, c2 = _call(converted, kind, x_other, state_other)
    assert direct._last is not None and converted._last is not None
    np.testing.assert_array_equal(h1, h2)
    assert h1.shape == lead + (H,) and h1.dtype == np.dtype(dtype)
    if lstm:
        np.testing.assert_array_equal(c1, c2)
    g = rng.normal(size=lead + (H,)).astype(dtype)
    out1 = direct.backward(g) if not lstm else direct.backward(g, g)
    out2 = converted.backward(g) if not lstm else converted.backward(g, g)
    np.testing.assert_array_equal(out1[0], out2[0])
    for name in NAMES:
        np.testing.assert_array_equal(direct.grads[name], converted.grads[name])
    # a wrong shape is refused with the argument's name either way
    with pytest.raises(ValueError, match="input"):
        direct(np.zeros(lead + (I + 1,), dtype=dtype), state)
    with pytest.raises(ValueError, match="hx"):
        direct(x, (np.zeros(lead + (H + 1,), dtype=dtype), c) if lstm else np.zeros(lead + (H + 1,), dtype=dtype))
