"""Online learning with the fully recurrent network (DESIGN §3.1): real-time updates against the float64
NumPy reference, float32 against float64, step() against run(), the optimizers against PyTorch's update
rules written in NumPy, epoch mode with apply(), reset(), the column-major GEMM mapping of the CUDA
backend, and determinism."""

import numpy as np
import pytest
from conftest import relative_error, to_numpy

import rtrl
from rtrl.bench.numpy_rtrl import NumpyRTRL
from reference.fully_recurrent import rtrl as ref_rtrl
from reference.optimizers import NumpyAdam, NumpySGD, clip_like_torch

N, M, N_OUT = 4, 2, 2  # units, inputs, visible units (< units)


def make_problem(seed, T, B, *, activation="logistic", n=N, m=M, n_out=N_OUT, nan_fraction=0.3,
                 weight_scale=0.5):
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, weight_scale, size=(n, m + 1 + n))
    X = rng.normal(size=(T, B, m))
    lo = -0.8 if activation == "tanh" else 0.1
    D = rng.uniform(lo, 0.9, size=(T, B, n_out))
    D[rng.random(D.shape) < nan_fraction] = np.nan
    return W, X, D


def make_model(W, device, dtype="float64", *, activation="logistic", n_out=N_OUT):
    n = W.shape[0]
    model = rtrl.FullyRecurrent(n, W.shape[1] - 1 - n, n_outputs=n_out, activation=activation,
                                dtype=dtype, device=device, seed=0)
    model.weight = W
    return model


# ---------------------------------------------------------------------------------------------
# real-time RTRL against the reference


@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("teacher_forcing", [False, True])
def test_realtime_matches_reference(device, teacher_forcing, B):
    T, lr = 200, 0.3
    W, X, D = make_problem(20, T, B)
    learner = rtrl.RTRL(make_model(W, device), lr=lr, batch_size=B, teacher_forcing=teacher_forcing)
    res = learner.run(X, D)
    ref = ref_rtrl(W, X, D, n_outputs=N_OUT, teacher_forcing=teacher_forcing, lr=lr)

    assert relative_error(ref["weight"], W) > 0.05  # learning really happened
    assert relative_error(res.outputs, ref["outputs"]) <= 1e-10
    assert relative_error(learner.model.weight, ref["weight"]) <= 1e-10
    assert relative_error(res.loss, ref["loss"]) <= 1e-10
    assert relative_error(learner.state, ref["y"]) <= 1e-10
    assert relative_error(learner.sensitivities, ref["p"]) <= 1e-10
    # the losses fall while learning online (the task is learnable: a fixed input-driven mapping)
    assert np.mean(ref["loss"][-50:]) < np.mean(ref["loss"][:50])


def test_realtime_float32_tracks_float64(device):
    """Same 200 real-time steps in float32 and float64. Stated tolerance: every output within 1e-5
    absolute and the final weights within 1e-5 relative. float32 rounding is ~6e-8 per operation;
    on this net the observed deviation after 200 learning steps is ~1e-7 (outputs) and ~3e-7
    (weights), so the bound leaves a margin of 30-100x for other BLAS kernels and devices."""
    T, B, lr = 200, 3, 0.3
    W, X, D = make_problem(21, T, B)
    results = {}
    for dtype in ("float32", "float64"):
        learner = rtrl.RTRL(make_model(W, device, dtype), lr=lr, batch_size=B)
        res = learner.run(X, D)
        out = to_numpy(res.outputs)
        assert out.dtype == np.dtype(dtype) and to_numpy(res.loss).dtype == np.dtype(dtype)
        results[dtype] = out, to_numpy(learner.model.weight)
    out32, w32 = results["float32"]
    out64, w64 = results["float64"]
    assert relative_error(w64, W) > 0.05
    assert np.max(np.abs(out32.astype(np.float64) - out64)) <= 1e-5
    assert relative_error(w32, w64) <= 1e-5
    # and float32 is really float32 (the comparison is not vacuous)
    assert np.max(np.abs(out32.astype(np.float64) - out64)) > 0


# ---------------------------------------------------------------------------------------------
# step() against run()


def _learner_for(mode, W, device, dtype, B, teacher_forcing):
    model = make_model(W, device, dtype)
    if mode == "epoch":
        return rtrl.RTRL(model, update="epoch", batch_size=B, teacher_forcing=teacher_forcing)
    if mode == "sgd":
        return rtrl.RTRL(model, lr=0.2, batch_size=B, teacher_forcing=teacher_forcing)
    return rtrl.RTRL(model, optimizer=rtrl.optim.Adam(0.02), batch_size=B, clip_grad_norm=0.5,
                     teacher_forcing=teacher_forcing)


def _assert_same(actual, expected, device, dtype):
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.shape == expected.shape
    if device == "cpu":
        np.testing.assert_array_equal(actual, expected)  # the same native code, the same order
    else:
        tol = 1e-12 if dtype == "float64" else 1e-5
        assert relative_error(actual, expected) <= tol


@pytest.mark.parametrize("teacher_forcing", [False, True])
@pytest.mark.parametrize("mode", ["epoch", "sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_step_repeated_equals_run(device, dtype, mode, teacher_forcing):
    T, B = 30, 3
    W, X, D = make_problem(22, T, B)
    whole = _learner_for(mode, W, device, dtype, B, teacher_forcing)
    stepped = _learner_for(mode, W, device, dtype, B, teacher_forcing)
    sliced = _learner_for(mode, W, device, dtype, B, teacher_forcing)

    res = whole.run(X, D)
    outputs = np.stack([to_numpy(stepped.step(X[t], D[t])) for t in range(T)])
    losses = np.concatenate([to_numpy(sliced.run(X[t:t + 1], D[t:t + 1]).loss) for t in range(T)])

    _assert_same(outputs, res.outputs, device, dtype)
    _assert_same(losses, res.loss, device, dtype)
    for other in (stepped, sliced):
        _assert_same(other.model.weight, whole.model.weight, device, dtype)
        _assert_same(other.sensitivities, whole.sensitivities, device, dtype)
        _assert_same(other.state, whole.state, device, dtype)
        _assert_same(other.gradients()["weight"], whole.gradients()["weight"], device, dtype)
        assert other.steps == whole.steps == T
    if mode == "epoch":
        np.testing.assert_array_equal(to_numpy(whole.model.weight), W.astype(dtype))
    else:
        assert relative_error(whole.model.weight, W) > 1e-3


def test_unbatched_inputs_give_unbatched_outputs(device):
    T = 15
    W, X, D = make_problem(23, T, 1)
    batched = rtrl.RTRL(make_model(W, device), lr=0.2)
    unbatched_run = rtrl.RTRL(make_model(W, device), lr=0.2)
    unbatched_step = rtrl.RTRL(make_model(W, device), lr=0.2)

    res = batched.run(X, D)
    res_u = unbatched_run.run(X[:, 0], D[:, 0])
    assert to_numpy(res.outputs).shape == (T, 1, N_OUT)
    assert to_numpy(res_u.outputs).shape == (T, N_OUT)
    assert to_numpy(res_u.loss).shape == (T,)
    steps = []
    for t in range(T):
        y = unbatched_step.step(X[t, 0], D[t, 0])
        assert to_numpy(y).shape == (N_OUT,)
        steps.append(to_numpy(y))
    assert to_numpy(batched.step(X[0], D[0])).shape == (1, N_OUT)

    expected = to_numpy(res.outputs)[:, 0]
    assert relative_error(res_u.outputs, expected) <= 1e-14
    assert relative_error(np.stack(steps), expected) <= 1e-14
    assert relative_error(res_u.loss, res.loss) <= 1e-14
    assert relative_error(unbatched_step.model.weight, unbatched_run.model.weight) <= 1e-14
    # unbatched input needs batch_size=1
    three = rtrl.RTRL(make_model(W, device), lr=0.2, batch_size=3)
    with pytest.raises(ValueError, match="batch_size=1"):
        three.step(X[0, 0])


# ---------------------------------------------------------------------------------------------
# optimizers: PyTorch's update rules in NumPy, applied to the reference's per-step gradients


def numpy_online(W, X, D, B, optimizer, clip=None, teacher_forcing=False):
    """Real-time RTRL with ``optimizer`` from the per-step gradients of NumpyRTRL (the NumPy baseline
    of ``rtrl bench``, checked against the reference in test_reference_fully_recurrent.py; with
    lr=None it gives the gradient, the update is ours). Returns outputs, final weights, the per-step
    gradient norms (before clipping), the number of clipped steps and the last applied gradient."""
    net = NumpyRTRL(W, N_OUT, "logistic", True, B, None, teacher_forcing=teacher_forcing)
    outputs, norms, clipped = [], [], 0
    for t in range(len(X)):
        net.grad[...] = 0
        outputs.append(net.step(X[t], D[t]))
        g = net.grad.copy()
        norms.append(np.linalg.norm(g))
        if clip is not None:
            g, was_clipped = clip_like_torch(g, clip)
            clipped += was_clipped
        net.weight[...] = optimizer.step(net.weight, g)
    return np.stack(outputs), net.weight.copy(), np.array(norms), clipped, g


OPTIMIZERS = {
    "sgd_momentum": (lambda: rtrl.optim.SGD(0.1, momentum=0.9), lambda: NumpySGD(0.1, 0.9)),
    "adam": (lambda: rtrl.optim.Adam(0.03), lambda: NumpyAdam(0.03)),
    "adam_betas": (lambda: rtrl.optim.Adam(0.01, betas=(0.8, 0.99), eps=1e-6),
                   lambda: NumpyAdam(0.01, (0.8, 0.99), 1e-6)),
}


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_realtime_optimizers_match_torch_rules(device, name, clip):
    T, B = 20, 2
    W, X, D = make_problem(24, T, B, nan_fraction=0.2)
    make_rtrl_opt, make_numpy_opt = OPTIMIZERS[name]

    max_norm = None
    if clip:
        # a threshold that clips some steps and not others (checked below)
        norms = numpy_online(W, X, D, B, make_numpy_opt())[2]
        max_norm = float(np.median(norms))
    out_ref, w_ref, norms, clipped, g_last = numpy_online(W, X, D, B, make_numpy_opt(), clip=max_norm)
    if clip:
        assert 0 < clipped < T

    learner = rtrl.RTRL(make_model(W, device), optimizer=make_rtrl_opt(), batch_size=B,
                        clip_grad_norm=max_norm)
    res = learner.run(X, D)

    assert relative_error(w_ref, W) > 1e-2
    assert relative_error(learner.model.weight, w_ref) <= 1e-10
    assert relative_error(res.outputs, out_ref) <= 1e-10
    # in real-time mode with an optimizer, gradients() is the last step's gradient (clipped if so)
    assert relative_error(learner.gradients()["weight"], g_last) <= 1e-10


def test_clipping_leaves_small_gradients_alone(device):
    """A threshold above every step's gradient norm changes nothing."""
    T, B = 20, 2
    W, X, D = make_problem(25, T, B)
    _, w_ref, norms, _, _ = numpy_online(W, X, D, B, NumpySGD(0.2))
    plain = rtrl.RTRL(make_model(W, device), lr=0.2, batch_size=B)
    loose = rtrl.RTRL(make_model(W, device), lr=0.2, batch_size=B, clip_grad_norm=2 * norms.max())
    plain.run(X, D)
    loose.run(X, D)
    assert relative_error(plain.model.weight, w_ref) <= 1e-10
    np.testing.assert_array_equal(to_numpy(loose.model.weight), to_numpy(plain.model.weight))


# ---------------------------------------------------------------------------------------------
# epoch mode and apply()


def test_epoch_mode_apply_uses_optimizer_and_clears(device):
    T, B, lr, momentum = 12, 3, 0.5, 0.9
    W, X, D = make_problem(26, 2 * T, B)
    X1, D1, X2, D2 = X[:T], D[:T], X[T:], D[T:]
    learner = rtrl.RTRL(make_model(W, device), optimizer=rtrl.optim.SGD(lr, momentum=momentum),
                        update="epoch", batch_size=B)

    learner.run(X1, D1)
    np.testing.assert_array_equal(to_numpy(learner.model.weight), W)  # nothing applied yet
    g1 = ref_rtrl(W, X1, D1, n_outputs=N_OUT)["grad"]
    assert relative_error(learner.gradients()["weight"], g1) <= 1e-10
    learner.apply()
    W1 = W - lr * g1
    assert relative_error(learner.model.weight, W1) <= 1e-12
    assert not np.any(to_numpy(learner.gradients()["weight"]))  # cleared

    learner.reset()  # a fresh epoch: state and sensitivities at zero, momentum kept
    learner.run(X2, D2)
    g2 = ref_rtrl(W1, X2, D2, n_outputs=N_OUT)["grad"]
    assert relative_error(learner.gradients()["weight"], g2) <= 1e-10
    learner.apply()
    W2 = W1 - lr * (momentum * g1 + g2)
    assert relative_error(learner.model.weight, W2) <= 1e-12
    assert relative_error(W2, W1 - lr * g2) > 1e-3  # momentum mattered
    assert not np.any(to_numpy(learner.gradients()["weight"]))


def test_epoch_mode_apply_with_adam_and_clipping(device):
    T, B = 12, 2
    W, X, D = make_problem(27, T, B)
    g = ref_rtrl(W, X, D, n_outputs=N_OUT)["grad"]
    max_norm = 0.5 * np.linalg.norm(g)
    learner = rtrl.RTRL(make_model(W, device), optimizer=rtrl.optim.Adam(0.05), update="epoch",
                        batch_size=B, clip_grad_norm=max_norm)
    learner.run(X, D)
    learner.apply()
    g_clipped, was_clipped = clip_like_torch(g, max_norm)
    assert was_clipped
    expected = NumpyAdam(0.05).step(W, g_clipped)
    assert relative_error(learner.model.weight, expected) <= 1e-12


def test_apply_without_optimizer_raises(device):
    W, X, D = make_problem(28, 5, 1)
    for learner in (rtrl.RTRL(make_model(W, device), update="epoch"),
                    rtrl.RTRL(make_model(W, device)),
                    rtrl.BPTT(make_model(W, device))):
        learner.run(X, D)
        before = to_numpy(learner.gradients()["weight"])
        with pytest.raises(RuntimeError, match="optimizer"):
            learner.apply()
        # nothing changed
        np.testing.assert_array_equal(to_numpy(learner.model.weight), W)
        np.testing.assert_array_equal(to_numpy(learner.gradients()["weight"]), before)


# ---------------------------------------------------------------------------------------------
# reset()


def test_reset_zeroes_only_chosen_streams(device):
    T, B = 10, 3
    W, X, D = make_problem(29, 2 * T, B)
    learner = rtrl.RTRL(make_model(W, device), update="epoch", batch_size=B)
    learner.run(X[:T], D[:T])
    state, sens = to_numpy(learner.state).copy(), to_numpy(learner.sensitivities).copy()
    assert sens.shape == (B, N, N, M + 1 + N)
    assert state.shape == (B, N)
    assert np.all(np.abs(state) > 0) and np.all(np.any(sens != 0, axis=(1, 2, 3)))

    learner.reset(streams=[1])
    state_r, sens_r = to_numpy(learner.state), to_numpy(learner.sensitivities)
    assert not np.any(state_r[1]) and not np.any(sens_r[1])
    for s in (0, 2):
        np.testing.assert_array_equal(state_r[s], state[s])
        np.testing.assert_array_equal(sens_r[s], sens[s])

    # continuing: stream 1 now runs as a fresh stream, the others carry on from where they were
    res = learner.run(X[T:], D[T:])
    fresh = ref_rtrl(W, X[T:, 1:2], D[T:, 1:2], n_outputs=N_OUT)
    np.testing.assert_allclose(to_numpy(res.outputs)[:, 1], fresh["outputs"][:, 0], rtol=0, atol=1e-13)
    whole = ref_rtrl(W, X, D, n_outputs=N_OUT)
    for s in (0, 2):
        np.testing.assert_allclose(to_numpy(res.outputs)[:, s], whole["outputs"][T:, s], rtol=0, atol=1e-13)
    assert np.abs(to_numpy(res.outputs)[:, 1] - whole["outputs"][T:, 1]).max() > 1e-4

    learner.reset()
    assert not np.any(to_numpy(learner.state)) and not np.any(to_numpy(learner.sensitivities))
    # reset does not touch the weights or the accumulated gradient
    np.testing.assert_array_equal(to_numpy(learner.model.weight), W)
    assert np.linalg.norm(to_numpy(learner.gradients()["weight"])) > 0


# ---------------------------------------------------------------------------------------------
# the column-major GEMM mapping (used by the cuBLAS backend), driven on the CPU


@pytest.mark.parametrize("shape", [(5, 7, 3), (13, 4, 9)])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_via_col_major_matches_numpy(dtype, trans_a, trans_b, shape):
    from rtrl import _rtrl_cpu

    Mr, Nr, K = shape
    rng = np.random.default_rng(30)
    A = rng.standard_normal((K, Mr) if trans_a else (Mr, K)).astype(dtype)
    Bm = rng.standard_normal((Nr, K) if trans_b else (K, Nr)).astype(dtype)
    C0 = rng.standard_normal((Mr, Nr)).astype(dtype)
    alpha, beta = 1.5, -0.75
    expected = (alpha * (A.T if trans_a else A).astype(np.float64) @ (Bm.T if trans_b else Bm).astype(np.float64)
                + beta * C0.astype(np.float64))
    C = C0.copy()
    _rtrl_cpu._gemm_via_col_major(trans_a, trans_b, A, Bm, C, alpha, beta)
    assert C.dtype == dtype
    rtol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(C, expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    # beta = 0 overwrites C regardless of its contents
    C = np.full((Mr, Nr), 7.0, dtype=dtype)
    _rtrl_cpu._gemm_via_col_major(trans_a, trans_b, A, Bm, C, 1.0, 0.0)
    np.testing.assert_allclose(C, (expected - beta * C0) / alpha, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_via_col_major_with_wide_leading_dimensions(dtype, trans_a, trans_b):
    """A, B and C as views into wider arrays (lda, ldb, ldc > their columns), as the algorithms pass
    blocks of P and of W: the mapping must carry each leading dimension to its operand."""
    from rtrl import _rtrl_cpu

    Mr, Nr, K, pad = 6, 5, 7, (3, 4, 2)
    rng = np.random.default_rng(31)
    a_shape = (K, Mr) if trans_a else (Mr, K)
    b_shape = (Nr, K) if trans_b else (K, Nr)
    A_full = rng.standard_normal((a_shape[0], a_shape[1] + pad[0])).astype(dtype)
    B_full = rng.standard_normal((b_shape[0], b_shape[1] + pad[1])).astype(dtype)
    C_full = rng.standard_normal((Mr, Nr + pad[2])).astype(dtype)
    A, Bm, C = A_full[:, :a_shape[1]], B_full[:, :b_shape[1]], C_full[:, :Nr]
    assert A.strides[0] > A.shape[1] * A.itemsize and C.strides[0] > C.shape[1] * C.itemsize
    padding = C_full[:, Nr:].copy()
    alpha, beta = 0.5, 2.0
    expected = (alpha * (A.T if trans_a else A).astype(np.float64) @ (Bm.T if trans_b else Bm).astype(np.float64)
                + beta * C.astype(np.float64))
    _rtrl_cpu._gemm_via_col_major(trans_a, trans_b, A, Bm, C, alpha, beta)
    rtol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(C_full[:, :Nr], expected, rtol=rtol, atol=rtol * np.abs(expected).max())
    np.testing.assert_array_equal(C_full[:, Nr:], padding)  # the columns past N are not C's


def test_gemm_via_col_major_refuses_non_unit_column_strides():
    from rtrl import _rtrl_cpu

    A, Bm, C = np.ones((3, 8))[:, ::2], np.ones((4, 5)), np.zeros((3, 5))
    with pytest.raises(ValueError, match="A: expected unit column stride"):
        _rtrl_cpu._gemm_via_col_major(False, False, A, Bm, C, 1.0, 0.0)
    with pytest.raises(TypeError, match="B: expected dtype float64"):
        _rtrl_cpu._gemm_via_col_major(False, False, np.ones((3, 4)), Bm.astype(np.float32), C, 1.0, 0.0)


def test_gemm_via_col_major_rejects_mismatched_shapes():
    from rtrl import _rtrl_cpu

    A, Bm, C = np.ones((3, 4)), np.ones((5, 6)), np.zeros((3, 6))
    with pytest.raises(ValueError):
        _rtrl_cpu._gemm_via_col_major(False, False, A, Bm, C, 1.0, 0.0)


# ---------------------------------------------------------------------------------------------
# determinism


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_identical_learners_are_bit_identical_on_cpu(dtype):
    """Large enough that the native loops and the sensitivity GEMM run on several OpenMP threads."""
    T, B, n, m = 15, 4, 16, 4
    W, X, D = make_problem(31, T, B, n=n, m=m, n_out=3, weight_scale=0.3)
    runs = []
    for _ in range(2):
        model = make_model(W, "cpu", dtype, n_out=3)
        learner = rtrl.RTRL(model, optimizer=rtrl.optim.Adam(0.01), batch_size=B, clip_grad_norm=1.0,
                            teacher_forcing=True)
        res = learner.run(X, D)
        runs.append((res.outputs, res.loss, learner.model.weight, learner.sensitivities, learner.state))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    assert relative_error(runs[0][2], W) > 1e-3
