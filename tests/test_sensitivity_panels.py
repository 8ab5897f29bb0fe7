"""The sensitivity product at the edges of how the CPU context blocks it (cpu_panel_product.hpp).

The CPU takes ``W P`` panel by panel: register tiles of 8 rows (6 without AVX-512) with remainders
of 4, 2 and 1 rows, strips of 32 float32 / 16 float64 columns with a zero-padded last strip,
panels of several strips, and runs of strips shared by the threads once a step's product exceeds
about 1 MFLOP. The sizes below put the unit count and the column count on both sides of each of
those edges (one column in all, fewer columns than a strip, remainder rows of every length, several
panels per thread, two streams whose columns share a strip) and check the result against the float64
NumPy reference (fully recurrent) and against BPTT (RecurrentNet). The same cases run on CUDA.
"""

import numpy as np
import pytest
from conftest import relative_error, to_numpy
from recurrent_net_helpers import make_net

import rtrl
from reference.fully_recurrent import rtrl as ref_rtrl

# (units, inputs, streams): N = n (m + 1 + n) columns per stream.
FULLY_RECURRENT_SIZES = [
    (1, 0, 1),    # N = 2: one column short of a strip, one row
    (3, 1, 2),    # two streams inside one strip
    (7, 2, 1),    # 4 + 2 + 1 remainder rows
    (9, 1, 3),    # a tile and one row; streams straddle strips
    (13, 3, 2),   # 8 + 4 + 1 (6 + 6 + 1 without AVX-512)
    (15, 2, 1),   # 8 + 4 + 2 + 1
    (24, 3, 4),   # above the parallel threshold: threads over runs of strips, several panels each
    (33, 5, 2),   # parallel, remainder row, a last strip partly filled
]


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-4)])
@pytest.mark.parametrize("n,m,B", FULLY_RECURRENT_SIZES, ids=[f"n{n}-m{m}-B{B}" for n, m, B in FULLY_RECURRENT_SIZES])
def test_fully_recurrent_sensitivities_and_gradient_match_reference(device, n, m, B, dtype, tol):
    rng = np.random.default_rng(1000 * n + 10 * m + B)
    T, n_out = 6, min(2, n)
    W = rng.normal(0.0, 1.0 / np.sqrt(n + m + 1), size=(n, m + 1 + n))
    X = rng.normal(size=(T, B, m))
    D = rng.uniform(0.1, 0.9, size=(T, B, n_out))
    D[rng.random(D.shape) < 0.2] = np.nan
    model = rtrl.FullyRecurrent(n, m, n_outputs=n_out, dtype=dtype, device=device, seed=0)
    model.weight = W
    forcing = n > n_out  # (forcing the only unit would zero every sensitivity)
    learner = rtrl.RTRL(model, update="epoch", batch_size=B, teacher_forcing=forcing)
    res = learner.run(X.astype(dtype), D.astype(dtype))
    ref = ref_rtrl(W.astype(dtype).astype(np.float64), X.astype(dtype).astype(np.float64),
                   D.astype(dtype).astype(np.float64), n_outputs=n_out, teacher_forcing=forcing)

    assert np.linalg.norm(ref["p"]) > 1e-2 and np.linalg.norm(ref["grad"]) > 1e-3
    assert relative_error(learner.sensitivities, ref["p"]) <= tol
    assert relative_error(learner.gradients()["weight"], ref["grad"]) <= tol
    assert relative_error(res.outputs, ref["outputs"]) <= tol


# (cell, hidden, streams): the product is W_hh [G H, H] by P_h [H, B G H W].
CELL_SIZES = [("rnn", 1, 1), ("rnn", 9, 3), ("lstm", 3, 2), ("gru", 5, 1), ("lstm", 11, 4),
              ("gru", 13, 3), ("rnn", 31, 2)]


@pytest.mark.parametrize("cell,H,B", CELL_SIZES, ids=[f"{c}-H{H}-B{B}" for c, H, B in CELL_SIZES])
def test_recurrent_net_rtrl_gradient_equals_bptt(device, cell, H, B):
    I, O, T = 3, 2, 5
    rng = np.random.default_rng(7 * H + B)
    net = rtrl.RecurrentNet(cell, I, H, O, seed=H + B, dtype="float64", device=device)
    params = {k: to_numpy(v).copy() for k, v in net.parameters().items()}
    X = rng.normal(size=(T, B, I))
    Y = rng.normal(size=(T, B, O))
    rt = rtrl.RTRL(make_net(cell, "tanh", H, params, device), update="epoch", batch_size=B)
    bp = rtrl.BPTT(make_net(cell, "tanh", H, params, device), batch_size=B)
    res_rt, res_bp = rt.run(X, Y), bp.run(X, Y)

    assert relative_error(res_rt.loss, res_bp.loss) <= 1e-13
    g_rt, g_bp = rt.gradients(), bp.gradients()
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert np.linalg.norm(to_numpy(g_bp[name])) > 1e-4, name
        assert relative_error(g_rt[name], g_bp[name]) <= 1e-10, name
