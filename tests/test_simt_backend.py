"""The CUDA backend's partitioning, run on the CPU: the SIMT host backend (rtrl._rtrl_simt, the CPU
backend's source on a host context with CudaContext's semantics — products in blocks of as many columns
as a scratch limit holds, one logical thread per column) gives what the CPU backend gives, for every
learner and layer, with the default scratch limit and with one so small that every product takes many
blocks, most starting in the middle of a stream's columns (float64: 1e-12)."""

import numpy as np
import pytest

import rtrl
from rtrl import _rtrl_simt
from rtrl._backend import Backend

SIMT = Backend("cpu", _rtrl_simt, np)


LIMITS = {"default": 256 << 20, "odd": 680, "tiny": 56}  # bytes: one block; a few columns; one column


@pytest.fixture(params=sorted(LIMITS))
def scratch(request):
    """The product scratch limit: the CUDA default (one block per product), 680 bytes (blocks of a few
    columns that do not divide a stream's), or 56 bytes (a column per block)."""
    previous = _rtrl_simt._set_product_scratch_bytes(LIMITS[request.param])
    yield request.param
    _rtrl_simt._set_product_scratch_bytes(previous)


def _on_simt(model):
    model._backend = SIMT
    return model


def _pair(make_model, make_learner):
    """The same learner on the CPU backend and on the SIMT backend."""
    return make_learner(make_model()), make_learner(_on_simt(make_model()))


def _assert_same(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def _data(T, B, I, O, classes=False):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((T, B, I))
    if classes:
        return X, rng.integers(-1, O, (T, B))
    Y = rng.uniform(0.1, 0.9, (T, B, O))
    Y[::3, 0, 0] = np.nan
    return X, Y


@pytest.mark.parametrize("update", ["realtime", "epoch"])
def test_fully_recurrent_rtrl_and_bptt(scratch, update):
    make = lambda: rtrl.FullyRecurrent(6, 3, n_outputs=2, seed=1, dtype="float64", device="cpu")  # noqa: E731
    X, Y = _data(9, 3, 3, 2)
    for kind in ("rtrl", "bptt"):
        if kind == "rtrl":
            learner = lambda m: rtrl.RTRL(m, optimizer=rtrl.optim.Adam(0.05) if update == "realtime" else None,  # noqa: E731
                                          update=update, teacher_forcing=True, batch_size=3)
        else:
            learner = lambda m: rtrl.BPTT(m, truncation=4, lr=0.1, batch_size=3)  # noqa: E731
        cpu, simt = _pair(make, learner)
        _assert_same(simt.run(X, Y).outputs, cpu.run(X, Y).outputs)
        for k, v in cpu.gradients().items():
            _assert_same(simt.gradients()[k], v)
        _assert_same(simt.model.weight, cpu.model.weight)


@pytest.mark.parametrize("cell,alpha", [("rnn", 1.0), ("rnn", 0.5), ("lstm", 1.0), ("gru", 1.0)])
@pytest.mark.parametrize("layers", [1, 3])
def test_recurrent_net_rtrl_and_bptt(scratch, cell, alpha, layers):
    make = lambda: rtrl.RecurrentNet(cell, 3, 4, 3, num_layers=layers, alpha=alpha, seed=2,  # noqa: E731
                                     dtype="float64", device="cpu")
    for loss in ("mse", "cross_entropy"):
        X, Y = _data(7, 2, 3, 3, classes=loss == "cross_entropy")
        for learner in (lambda m: rtrl.RTRL(m, optimizer=rtrl.optim.Adam(0.05), loss=loss, batch_size=2,
                                            clip_grad_norm=0.5),
                        lambda m: rtrl.RTRL(m, update="epoch", loss=loss, batch_size=2),
                        lambda m: rtrl.BPTT(m, truncation=3, loss=loss, lr=0.1, batch_size=2)):
            cpu, simt = _pair(make, learner)
            _assert_same(simt.run(X, Y).outputs, cpu.run(X, Y).outputs)
            for k, v in cpu.gradients().items():
                _assert_same(simt.gradients()[k], v)
            for k, v in cpu.model.parameters().items():
                _assert_same(simt.model.parameters()[k], v)


def test_nonfinite_streams_are_found_and_reset_alike(scratch):
    make = lambda: rtrl.RecurrentNet("lstm", 3, 4, 2, num_layers=2, seed=3, dtype="float64", device="cpu")  # noqa: E731
    X, Y = _data(6, 3, 3, 2)
    X[2, 1, 0] = np.inf
    cpu, simt = _pair(make, lambda m: rtrl.RTRL(m, lr=0.1, batch_size=3, on_nonfinite="skip"))
    blocks, replayed = _rtrl_simt._product_blocks_taken(), _rtrl_simt._check_windows_replayed()
    cpu.run(X, Y), simt.run(X, Y)
    taken = _rtrl_simt._product_blocks_taken() - blocks
    assert _rtrl_simt._check_windows_replayed() - replayed == 1  # the 6 steps' window, run twice
    per_step = 3  # layer 0's own columns; layer 1's own columns and those of layer 0 below it
    assert taken == 2 * 6 * per_step if scratch == "default" else taken > 2 * 6 * per_step * 3
    assert simt.stats == cpu.stats and cpu.stats["reset_streams"] == 1
    _assert_same(simt.state, cpu.state)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_layers_forward_and_backward(scratch, kind):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 3, 4))
    cpu, simt = (getattr(rtrl.nn, kind)(4, 5, num_layers=2, bidirectional=True, dtype="float64", device="cpu",
                                       seed=6) for _ in range(2))
    simt._be = SIMT
    out_c, _ = cpu(x)
    out_s, _ = simt(x)
    _assert_same(out_s, out_c)
    dx_c, _ = cpu.backward(np.ones_like(out_c))
    dx_s, _ = simt.backward(np.ones_like(out_s))
    _assert_same(dx_s, dx_c)
    for k, v in cpu.grads.items():
        _assert_same(simt.grads[k], v)


def test_the_scratch_limit_is_checked():
    with pytest.raises(ValueError, match="bytes"):
        _rtrl_simt._set_product_scratch_bytes(0)
