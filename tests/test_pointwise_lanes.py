"""A unit's result does not depend on where it sits in a row.

The cells' pointwise kernels and the core's exp/tanh/sigmoid run as vectorised loops on the CPU: a row
of H units is computed partly in the loop's vector body and partly in its remainder. The two must round
alike (a result must not depend on how a loop is split, docs/performance.rst); the kernels write their
multiply-adds as ``math::fma`` so that this does not rest on how the compiler contracts each version
of a loop.

These tests permute the hidden units of a network whose weights give each unit's pre-activations a
single product each (one input weight per row, diagonal recurrent weights: the GEMMs then add exact
zeros, so a unit's sums are the same at any position, whatever the BLAS kernel) and require the
permuted run to give exactly the permuted result, bit for bit. H = 37 puts units in a vector body, a
narrower vector epilogue and a scalar remainder.
"""

import numpy as np
import pytest

import rtrl
from rtrl import _rtrl_cpu

H, I, T, B = 37, 5, 6, 3
DTYPES = ["float32", "float64"]


def _permutation() -> np.ndarray:
    return np.random.default_rng(7).permutation(H)


def _one_input_per_row(rng, rows: int, dtype) -> np.ndarray:
    w = np.zeros((rows, I), dtype=dtype)
    w[np.arange(rows), np.arange(rows) % I] = rng.uniform(-1, 1, rows)
    return w


def _gate_rows(perm: np.ndarray, gates: int) -> np.ndarray:
    """The row index that moves unit perm[u] of every gate block to position u."""
    return np.concatenate([g * H + perm for g in range(gates)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", ["exp", "tanh", "sigmoid"])
def test_elementwise_functions_round_alike_at_every_offset(fn, dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-12, 12, 101), rng.uniform(-0.7, 0.7, 52)]).astype(dtype)
    whole = _rtrl_cpu._elementwise(fn, x)
    one_at_a_time = np.concatenate([_rtrl_cpu._elementwise(fn, x[i:i + 1]) for i in range(x.size)])
    assert np.array_equal(whole.view(np.uint8), one_at_a_time.view(np.uint8))
    for offset in (1, 3, 5):
        shifted = _rtrl_cpu._elementwise(fn, x[offset:])
        assert np.array_equal(shifted.view(np.uint8), whole[offset:].view(np.uint8))


LAYERS = [("RNN", dict(nonlinearity="tanh"), 1), ("RNN", dict(nonlinearity="relu"), 1),
          ("LSTM", {}, 4), ("GRU", {}, 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kwargs,gates", LAYERS, ids=["rnn_tanh", "rnn_relu", "lstm", "gru"])
def test_layer_forward_is_equivariant_to_unit_order(name, kwargs, gates, dtype):
    layer = getattr(rtrl.nn, name)(I, H, dtype=dtype, seed=3, **kwargs)
    params = {k: np.array(v) for k, v in layer.state_dict().items()}
    rng = np.random.default_rng(2)
    params["weight_ih_l0"] = _one_input_per_row(rng, gates * H, dtype)
    params["weight_hh_l0"] = np.zeros_like(params["weight_hh_l0"])
    for g in range(gates):  # a diagonal block per gate: unit u sees only its own previous state
        params["weight_hh_l0"][g * H + np.arange(H), np.arange(H)] = rng.uniform(-1, 1, H)
    layer.load_state_dict(params)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    out = layer(x)
    y = out[0]

    perm, rows = _permutation(), _gate_rows(_permutation(), gates)
    permuted = getattr(rtrl.nn, name)(I, H, dtype=dtype, seed=3, **kwargs)
    permuted.load_state_dict({"weight_ih_l0": params["weight_ih_l0"][rows],
                              "weight_hh_l0": params["weight_hh_l0"][rows][:, perm],
                              "bias_ih_l0": params["bias_ih_l0"][rows],
                              "bias_hh_l0": params["bias_hh_l0"][rows]})
    y_perm = permuted(x)[0]
    assert np.array_equal(y_perm.view(np.uint8), np.ascontiguousarray(y[..., perm]).view(np.uint8))


def _net_state(cell: str, params: dict, dtype: str, alpha: float, x: np.ndarray) -> np.ndarray:
    net = rtrl.RecurrentNet(cell, I, H, 2, alpha=alpha, seed=0, dtype=dtype)
    net.load_parameters(params)
    learner = rtrl.SnAp(net, lr=0.1, update="epoch", batch_size=B)
    learner.run(x)  # no targets: the weights stay as loaded
    return np.asarray(learner.state_dict()["state_h"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell,alpha", [("rnn", 0.7), ("elstm", 1.0)], ids=["leaky_rnn", "elstm"])
def test_online_forward_is_equivariant_to_unit_order(cell, alpha, dtype):
    net = rtrl.RecurrentNet(cell, I, H, 2, alpha=alpha, seed=4, dtype=dtype)
    params = {k: np.array(v) for k, v in net.parameters().items()}
    gates = 2 if cell == "elstm" else 1
    rng = np.random.default_rng(5)
    params["weight_ih"] = _one_input_per_row(rng, gates * H, dtype)
    if cell == "rnn":
        params["weight_hh"] = np.diag(rng.uniform(-1, 1, H)).astype(dtype)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h = _net_state(cell, params, dtype, alpha, x)

    perm, rows = _permutation(), _gate_rows(_permutation(), gates)
    moved = dict(params, weight_ih=params["weight_ih"][rows], bias_ih=params["bias_ih"][rows],
                 bias_hh=params["bias_hh"][rows], weight_out=params["weight_out"][:, perm])
    moved["weight_hh"] = params["weight_hh"][rows] if cell == "elstm" else params["weight_hh"][perm][:, perm]
    h_perm = _net_state(cell, moved, dtype, alpha, x)
    assert np.array_equal(h_perm.view(np.uint8), np.ascontiguousarray(h[:, perm]).view(np.uint8))
