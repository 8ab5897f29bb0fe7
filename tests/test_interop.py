"""Arrays from other libraries (DLPack and the array interfaces): learners and rtrl.nn take torch
tensors and JAX arrays and hand back the input's kind, with the values a NumPy call gives."""

import numpy as np
import pytest

import rtrl

torch = pytest.importorskip("torch")


def _learner():
    return rtrl.RTRL(rtrl.RecurrentNet("gru", 3, 4, 2, seed=1, dtype="float64", device="cpu"), lr=0.1,
                     batch_size=2)


def test_a_learner_takes_torch_tensors_and_returns_them():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 2))
    ours = _learner().run(torch.from_numpy(X), torch.from_numpy(Y))
    ref = _learner().run(X, Y)
    assert isinstance(ours.outputs, torch.Tensor) and isinstance(ours.loss, torch.Tensor)
    np.testing.assert_array_equal(ours.outputs.numpy(), ref.outputs)
    np.testing.assert_array_equal(ours.loss.numpy(), ref.loss)
    a, b = _learner(), _learner()
    out = a.step(torch.from_numpy(X[0]), torch.from_numpy(Y[0]))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), b.step(X[0], Y[0]))


def test_contiguous_and_strided_float32_tensors_give_the_numpy_results():
    net = rtrl.FullyRecurrent(3, 2, n_outputs=1, seed=0, device="cpu")
    X = torch.arange(20, dtype=torch.float32).reshape(10, 2) / 20
    strided = torch.arange(40, dtype=torch.float32).reshape(10, 4)[:, ::2] / 40  # not contiguous
    r1 = rtrl.RTRL(net, update="epoch").run(X)
    r2 = rtrl.RTRL(net, update="epoch").run(X.numpy())
    np.testing.assert_array_equal(r1.outputs.numpy(), r2.outputs)
    r3 = rtrl.RTRL(net, update="epoch").run(strided)
    np.testing.assert_array_equal(r3.outputs.numpy(), rtrl.RTRL(net, update="epoch").run(strided.numpy().copy()).outputs)


def test_a_tensor_that_requires_grad_points_to_rtrl_torch():
    learner = _learner()
    with pytest.raises(TypeError, match="rtrl.torch"):
        learner.run(torch.zeros(3, 2, 3, dtype=torch.float64, requires_grad=True))
    layer = rtrl.nn.LSTM(3, 4, device="cpu")
    with pytest.raises(TypeError, match="requires grad"):
        layer(torch.zeros(5, 2, 3, requires_grad=True))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_layers_and_cells_return_tensors_for_tensors(kind):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 2, 3)).astype(np.float32)
    a, b = (getattr(rtrl.nn, kind)(3, 4, num_layers=2, device="cpu", seed=2) for _ in range(2))
    out_t, state_t = a(torch.from_numpy(x))
    out_n, state_n = b(x)
    assert isinstance(out_t, torch.Tensor)
    np.testing.assert_array_equal(out_t.numpy(), out_n)
    dy = np.ones_like(out_n)
    dx_t, _ = a.backward(torch.from_numpy(dy))
    dx_n, _ = b.backward(dy)
    assert isinstance(dx_t, torch.Tensor)
    np.testing.assert_array_equal(dx_t.numpy(), dx_n)
    cell_t, cell_n = (getattr(rtrl.nn, kind + "Cell")(3, 4, device="cpu", seed=3) for _ in range(2))
    h_t, h_n = cell_t(torch.from_numpy(x[0])), cell_n(x[0])
    first_t = h_t[0] if kind == "LSTM" else h_t
    first_n = h_n[0] if kind == "LSTM" else h_n
    assert isinstance(first_t, torch.Tensor)
    np.testing.assert_array_equal(first_t.numpy(), first_n)


def test_jax_arrays_come_back_as_jax_arrays():
    jnp = pytest.importorskip("jax.numpy")
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4, 2, 3))
    ours = _learner().run(jnp.asarray(X, dtype=jnp.float32))
    assert type(ours.outputs).__module__.startswith(("jax", "jaxlib"))
    np.testing.assert_allclose(np.asarray(ours.outputs), _learner().run(X.astype(np.float32)).outputs)


class _OnlyDLPack:
    """An array that speaks DLPack alone (no __array__), like some libraries' arrays."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


def test_any_dlpack_array_is_taken():
    X = np.random.default_rng(3).standard_normal((4, 2, 3))
    ours = _learner().run(_OnlyDLPack(X))
    np.testing.assert_array_equal(ours.outputs, _learner().run(X).outputs)
