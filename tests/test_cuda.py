"""The CUDA backend against the CPU backend, through the public API, and the CUDA module's own checks
(workspaces from CuPy's allocator, array streams and pointers, class indices in the core, the
sync-check mode). Every test here needs a CUDA device and is skipped one by one without it; the same
decisions are tested without a GPU in test_cuda_plumbing.py.

Tolerances: float64 within 1e-9 relative (cuBLAS and OpenBLAS sum in different orders; the
real-time updates carry the rounding from step to step), float32 within 2e-4."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
from conftest import relative_error, to_numpy

import rtrl

pytestmark = pytest.mark.cuda

TOL = {"float64": 1e-9, "float32": 2e-4}
T, B = 12, 3


def close(a, b, dtype, what):
    err = relative_error(a, b)
    assert err <= TOL[dtype], f"{what}: CUDA and CPU differ by {err:.2e} (relative)"


def sequence(inputs, outputs, dtype, seed=0, classes=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((T, B, inputs)).astype(dtype)
    if classes:
        D = rng.integers(-1, outputs, size=(T, B))
    else:
        D = rng.uniform(0.1, 0.9, size=(T, B, outputs)).astype(dtype)
        D[rng.random((T, B, outputs)) < 0.3] = np.nan  # no target there
    return X, D


def run_both(make_model, make_learner, X, D):
    results = {}
    for device in ("cpu", "cuda"):
        model = make_model(device)
        learner = make_learner(model)
        res = learner.run(X, D)
        results[device] = (model, learner, res)
    return results


# ------------------------------------------------------------------------------------------------
# the algorithms: CUDA equals CPU


@pytest.mark.parametrize("update", ["realtime", "epoch"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fully_recurrent_rtrl_cuda_equals_cpu(dtype, update):
    X, D = sequence(3, 2, dtype)
    r = run_both(lambda dev: rtrl.FullyRecurrent(6, 3, n_outputs=2, seed=1, dtype=dtype, device=dev),
                 lambda m: rtrl.RTRL(m, optimizer=rtrl.optim.Adam(0.01), update=update, batch_size=B),
                 X, D)
    (m_cpu, l_cpu, r_cpu), (m_gpu, l_gpu, r_gpu) = r["cpu"], r["cuda"]
    assert m_gpu.device == "cuda" and type(r_gpu.outputs).__module__.startswith("cupy")
    close(r_gpu.outputs, r_cpu.outputs, dtype, "outputs")
    close(r_gpu.loss, r_cpu.loss, dtype, "loss")
    close(l_gpu.gradients()["weight"], l_cpu.gradients()["weight"], dtype, "gradient")
    close(m_gpu.weight, m_cpu.weight, dtype, "weights after the run")
    close(l_gpu.sensitivities, l_cpu.sensitivities, dtype, "sensitivities")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fully_recurrent_bptt_cuda_equals_cpu(dtype):
    X, D = sequence(2, 3, dtype, seed=2)
    r = run_both(lambda dev: rtrl.FullyRecurrent(5, 2, n_outputs=3, seed=2, dtype=dtype, device=dev),
                 lambda m: rtrl.BPTT(m, batch_size=B), X, D)
    close(r["cuda"][2].outputs, r["cpu"][2].outputs, dtype, "outputs")
    close(r["cuda"][1].gradients()["weight"], r["cpu"][1].gradients()["weight"], dtype, "gradient")


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_recurrent_net_rtrl_cuda_equals_cpu(dtype, cell, loss):
    I, H, O = 3, 5, 4
    X, D = sequence(I, O, dtype, seed=3, classes=loss == "cross_entropy")
    r = run_both(lambda dev: rtrl.RecurrentNet(cell, I, H, O, seed=3, dtype=dtype, device=dev),
                 lambda m: rtrl.RTRL(m, optimizer=rtrl.optim.SGD(0.05, momentum=0.5), loss=loss,
                                     clip_grad_norm=1.0, batch_size=B),
                 X, D)
    (m_cpu, l_cpu, r_cpu), (m_gpu, l_gpu, r_gpu) = r["cpu"], r["cuda"]
    close(r_gpu.outputs, r_cpu.outputs, dtype, "outputs")
    close(r_gpu.loss, r_cpu.loss, dtype, "loss")
    for name, value in m_cpu.parameters().items():
        close(m_gpu.parameters()[name], value, dtype, f"{name} after the run")
    for name, value in l_cpu.gradients().items():
        close(l_gpu.gradients()[name], value, dtype, f"gradient of {name}")


APPROXIMATE = [("snap", "lstm", 2), ("snap", "gru", 1), ("snap", "elstm", 1), ("eprop-random", "lstm", 2),
               ("rflo", "rnn", 1), ("uoro", "gru", 2), ("uoro", "elstm", 1), ("kf", "lstm", 2), ("kf", "rnn", 1)]


def _approximate(kind, model):
    opt = dict(optimizer=rtrl.optim.Adam(0.01), batch_size=B)
    if kind == "snap":
        return rtrl.SnAp(model, **opt)
    if kind == "eprop-random":
        return rtrl.EProp(model, feedback="random", seed=3, **opt)
    if kind == "rflo":
        return rtrl.RFLO(model, seed=3, **opt)
    return (rtrl.UORO if kind == "uoro" else rtrl.KFRTRL)(model, seed=3, **opt)


@pytest.mark.parametrize("kind,cell,layers", APPROXIMATE, ids=[f"{k}-{c}-{l}" for k, c, l in APPROXIMATE])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_approximate_learners_cuda_equal_cpu(dtype, kind, cell, layers):
    """The same functors and the same random signs (Philox at (seed, step, stream, element)) on both."""
    I, H, O = 3, 5, 2
    X, D = sequence(I, O, dtype, seed=4)
    r = run_both(lambda dev: rtrl.RecurrentNet(cell, I, H, O, num_layers=layers, seed=3, dtype=dtype, device=dev),
                 lambda m: _approximate(kind, m), X, D)
    (m_cpu, l_cpu, r_cpu), (m_gpu, l_gpu, r_gpu) = r["cpu"], r["cuda"]
    close(r_gpu.outputs, r_cpu.outputs, dtype, "outputs")
    for name, value in m_cpu.parameters().items():
        close(m_gpu.parameters()[name], value, dtype, f"{name} after the run")
    for name, value in l_cpu.state_dict().items():
        if hasattr(value, "shape"):
            close(l_gpu.state_dict()[name], value, dtype, name)


@pytest.mark.parametrize("cls", [rtrl.SnAp, rtrl.UORO, rtrl.KFRTRL])
def test_approximate_learners_on_fully_recurrent_cuda_equal_cpu(cls):
    X, D = sequence(3, 2, "float64")
    r = run_both(lambda dev: rtrl.FullyRecurrent(6, 3, n_outputs=2, seed=1, dtype="float64", device=dev),
                 lambda m: cls(m, optimizer=rtrl.optim.Adam(0.01), batch_size=B, teacher_forcing=True,
                               **({} if cls is rtrl.SnAp else {"seed": 3})), X, D)
    close(r["cuda"][2].outputs, r["cpu"][2].outputs, "float64", "outputs")
    close(r["cuda"][0].weight, r["cpu"][0].weight, "float64", "weights after the run")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_net_bptt_cuda_equals_cpu(cell):
    I, H, O, dtype = 2, 6, 3, "float64"
    X, D = sequence(I, O, dtype, seed=4)
    r = run_both(lambda dev: rtrl.RecurrentNet(cell, I, H, O, seed=4, dtype=dtype, device=dev),
                 lambda m: rtrl.BPTT(m, truncation=5, batch_size=B), X, D)
    close(r["cuda"][2].outputs, r["cpu"][2].outputs, dtype, "outputs")
    for name, value in r["cpu"][1].gradients().items():
        close(r["cuda"][1].gradients()[name], value, dtype, f"gradient of {name}")


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_layers_cuda_equal_cpu(dtype, kind, bidirectional):
    Layer = {"rnn": rtrl.nn.RNN, "lstm": rtrl.nn.LSTM, "gru": rtrl.nn.GRU}[kind]
    I, H, L = 4, 5, 2
    rng = np.random.default_rng(5)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    d_out = rng.standard_normal((T, B, (2 if bidirectional else 1) * H)).astype(dtype)
    dh = rng.standard_normal((L * (2 if bidirectional else 1), B, H)).astype(dtype)
    cpu = Layer(I, H, num_layers=L, bidirectional=bidirectional, dtype=dtype, device="cpu", seed=5)
    gpu = Layer(I, H, num_layers=L, bidirectional=bidirectional, dtype=dtype, device="cuda", seed=5)
    gpu.load_state_dict({k: to_numpy(v) for k, v in cpu.state_dict().items()})
    out_c, state_c = cpu(x)
    out_g, state_g = gpu(x)
    close(out_g, out_c, dtype, "output")
    upstream = (dh, dh * 0.5) if kind == "lstm" else dh
    dx_c, d0_c = cpu.backward(d_out, upstream)
    dx_g, d0_g = gpu.backward(d_out, upstream)
    close(dx_g, dx_c, dtype, "dx")
    if kind == "lstm":
        close(state_g[1], state_c[1], dtype, "c_n")
        close(d0_g[0], d0_c[0], dtype, "dh0")
        close(d0_g[1], d0_c[1], dtype, "dc0")
    else:
        close(state_g, state_c, dtype, "h_n")
        close(d0_g, d0_c, dtype, "dh0")
    for name, value in cpu.grads.items():
        close(gpu.grads[name], value, dtype, f"gradient of {name}")


# ------------------------------------------------------------------------------------------------
# the CUDA module's plumbing on a real device


def test_the_device_runs_this_build():
    from rtrl import _backend, _rtrl_cuda

    cuda = rtrl.info()["cuda"]
    assert cuda["available"] and cuda["devices"]
    name, major, minor = _rtrl_cuda.device_capabilities()[_rtrl_cuda.current_device()]
    assert _backend.device_problem(0, name, (major, minor), cuda["architectures"]) == ""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", [7, 2049, 600_000])
def test_reductions_run_the_tree_order(dtype, n):
    import cupy
    from test_reductions import data, tree_sum

    from rtrl import _rtrl_cuda

    x = data((3, n), dtype, seed=n)
    tree = np.array([tree_sum(row) for row in x], dtype)
    stream = cupy.cuda.get_current_stream().ptr
    out = cupy.zeros(3, dtype)
    _rtrl_cuda._reduce("row_sums", cupy.asarray(x), out, 0.25, False, stream)
    np.testing.assert_array_equal(out.get(), np.asarray(0.25, dtype) * tree)
    start = data(3, dtype, seed=9)
    out = cupy.asarray(start)
    _rtrl_cuda._reduce("column_sums", cupy.asarray(np.ascontiguousarray(x.T)), out, 1.0, True, stream)
    np.testing.assert_array_equal(out.get(), start + tree)
    norm = cupy.zeros(1, dtype)
    _rtrl_cuda._reduce("norm2", cupy.asarray(x[:1]), norm, 1.0, False, stream)
    exact = np.sqrt(np.sum(x[0].astype(np.float64) ** 2))
    assert abs(float(norm.get()[0]) - exact) <= exact * (n + 2) * np.finfo(dtype).eps


@pytest.mark.parametrize("shape", [(1, 1), (33, 65), (200, 7), (1000, 1500)])
def test_transpose_through_tiles(shape):
    import cupy

    from rtrl import _rtrl_cuda

    x = np.random.default_rng(0).standard_normal(shape)
    out = cupy.full(shape[::-1], np.nan)
    _rtrl_cuda._transpose(cupy.asarray(x), out, cupy.cuda.get_current_stream().ptr)
    np.testing.assert_array_equal(out.get(), x.T)


def test_workspaces_come_from_cupys_allocator():
    import cupy

    from rtrl import _rtrl_cuda

    pool = cupy.get_default_memory_pool()
    native = []

    def counting(nbytes):
        frame = sys._getframe(1)  # the Python frame that called into the native core, if any
        if frame.f_code.co_filename.endswith("_kernels.py"):
            native.append(nbytes)
        return pool.malloc(nbytes)

    net = rtrl.RecurrentNet("lstm", 3, 8, 2, seed=0, device="cuda")
    learner = rtrl.RTRL(net, lr=0.01, batch_size=2)
    X = cupy.asarray(np.random.default_rng(0).standard_normal((20, 2, 3)), dtype=cupy.float32)
    cupy.cuda.set_allocator(counting)
    try:
        learner.run(X)
    finally:
        cupy.cuda.set_allocator(pool.malloc)
    assert native, "the native run took no workspace through CuPy's allocator"
    assert _rtrl_cuda._workspaces_in_use() == 0  # every block handed back after the call


def test_an_array_produced_on_another_stream_is_waited_for():
    import cupy

    net = rtrl.FullyRecurrent(16, 8, n_outputs=4, seed=0, dtype="float64", device="cuda")
    reference = rtrl.RTRL(net.to("cpu"), lr=0.1)
    learner = rtrl.RTRL(net, lr=0.1)
    X_host = np.random.default_rng(1).standard_normal((50, 1, 8))
    expected = reference.run(X_host).outputs

    producer = cupy.cuda.Stream(non_blocking=True)
    with producer:
        X = cupy.zeros((50, 1, 8))
        for _ in range(200):  # long enough that reading X early would see zeros
            X += 0.0
        X[...] = cupy.asarray(X_host)

    class OnProducerStream:
        def __init__(self, a):
            self.__cuda_array_interface__ = {**a.__cuda_array_interface__, "stream": producer.ptr}

    k = learner._kernels
    outputs, loss = cupy.empty((50, 1, 4)), cupy.empty((50,))
    k.rtrl(OnProducerStream(X), None, outputs, loss, True)
    np.testing.assert_allclose(to_numpy(outputs), expected, rtol=1e-9, atol=1e-12)


def test_device_arrays_are_checked_in_the_core():
    import cupy

    net = rtrl.FullyRecurrent(4, 2, seed=0, device="cuda")
    learner = rtrl.RTRL(net, lr=0.1)
    k = learner._kernels
    X = cupy.zeros((3, 1, 2), dtype=cupy.float32)
    outputs, loss = cupy.empty((3, 1, 4), dtype=cupy.float32), cupy.empty((3,), dtype=cupy.float32)
    host = np.zeros((3, 1, 2), dtype=np.float32)

    class HostPointer:
        __cuda_array_interface__ = {"shape": (3, 1, 2), "typestr": "<f4", "data": (host.ctypes.data, False),
                                    "version": 3}

    class StreamZero:
        __cuda_array_interface__ = {**X.__cuda_array_interface__, "stream": 0}

    with pytest.raises(ValueError, match=r"^X: the array's pointer is not CUDA memory"):
        k.rtrl(HostPointer(), None, outputs, loss, True)
    with pytest.raises(ValueError, match=r"^X: __cuda_array_interface__\['stream'\] is 0"):
        k.rtrl(StreamZero(), None, outputs, loss, True)
    if cupy.cuda.runtime.getDeviceCount() > 1:
        with cupy.cuda.Device(1):
            elsewhere = cupy.zeros((3, 1, 2), dtype=cupy.float32)
        with pytest.raises(ValueError, match=r"^X: the array lives on CUDA device 1, but this call runs on CUDA device 0"):
            k.rtrl(elsewhere, None, outputs, loss, True)


def test_core_refuses_bad_class_indices_on_the_device():
    import cupy

    net = rtrl.RecurrentNet("gru", 2, 4, 3, seed=0, device="cuda")
    learner = rtrl.RTRL(net, lr=0.1, loss="cross_entropy", batch_size=2)
    X = cupy.zeros((4, 2, 2), dtype=cupy.float32)
    classes = cupy.zeros((4, 2), dtype=cupy.float32)
    classes[3, 1] = 3  # one past the outputs: the Python check is bypassed
    outputs, loss = cupy.empty((4, 2, 3), dtype=cupy.float32), cupy.empty((4,), dtype=cupy.float32)
    with pytest.raises(ValueError, match=r"^targets: the class index at step 3, stream 1"):
        learner._kernels.rtrl(X, classes, outputs, loss, True)
    cupy.cuda.get_current_stream().synchronize()  # no fault was left behind on the device
    learner.run(X, np.zeros((4, 2), dtype=np.int64))


def test_sync_check_mode_gives_the_same_results():
    script = textwrap.dedent("""
        import numpy as np, rtrl
        assert rtrl.info()["cuda"]["sync_check"]
        net = rtrl.RecurrentNet("lstm", 3, 6, 2, seed=0, dtype="float64", device="cuda")
        out = rtrl.RTRL(net, lr=0.1).run(np.ones((5, 3))).outputs
        np.save("out.npy", out.get())
    """)
    env = {**os.environ, "RTRL_CUDA_SYNC_CHECK": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp)
        checked = np.load(os.path.join(tmp, "out.npy"))
    net = rtrl.RecurrentNet("lstm", 3, 6, 2, seed=0, dtype="float64", device="cuda")
    out = rtrl.RTRL(net, lr=0.1).run(np.ones((5, 3))).outputs
    np.testing.assert_array_equal(to_numpy(out), checked)


@pytest.mark.parametrize("limit", [680, 56])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_multi_block_products_equal_the_cpu(cell, limit):
    """The CUDA product's multi-block path (blocks starting mid-stream), taken by a small scratch."""
    from rtrl import _rtrl_cuda

    X, D = sequence(3, 2, "float64", seed=5)
    previous = _rtrl_cuda._set_product_scratch_bytes(limit)
    try:
        r = run_both(lambda dev: rtrl.RecurrentNet(cell, 3, 4, 2, num_layers=2, seed=5, dtype="float64", device=dev),
                     lambda m: rtrl.RTRL(m, optimizer=rtrl.optim.Adam(0.05), batch_size=B), X, D)
    finally:
        _rtrl_cuda._set_product_scratch_bytes(previous)
    (m_cpu, _, r_cpu), (m_gpu, _, r_gpu) = r["cpu"], r["cuda"]
    close(r_gpu.outputs, r_cpu.outputs, "float64", "outputs")
    for name, value in m_cpu.parameters().items():
        close(m_gpu.parameters()[name], value, "float64", f"{name} after the run")
