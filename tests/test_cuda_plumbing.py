"""The CUDA path's decisions and checks that need no GPU: which devices a build can run on, how a
``__cuda_array_interface__`` is read (its stream, its pointer's device), and the class-index check the
core makes before any readout kernel, on every backend."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest

import rtrl
from rtrl import _backend, _info, _rtrl_cpu

BUILD = ["sm_75", "sm_80", "sm_86", "sm_90", "compute_90"]  # the default CMAKE_CUDA_ARCHITECTURES


# ------------------------------------------------------------------------------------------------
# compute capability against the architectures built


@pytest.mark.parametrize("capability, runs", [
    ((7, 5), True),    # T4: its own cubin
    ((8, 0), True),    # A100
    ((8, 6), True),    # A10, RTX 30xx
    ((8, 9), True),    # L4, RTX 40xx: the sm_86 cubin (same major, higher minor)
    ((9, 0), True),    # H100, H200
    ((10, 0), True),   # B200: PTX compute_90, compiled by the driver
    ((12, 0), True),   # RTX 50xx: PTX
    ((7, 0), False),   # V100: older than every cubin and the PTX
    ((6, 1), False),   # Pascal
    ((3, 7), False),   # K80
])
def test_default_build_runs_on(capability, runs):
    assert _backend.runs_on(capability, BUILD) is runs


def test_cubins_need_the_same_major_and_ptx_an_equal_or_newer_device():
    assert _backend.runs_on((8, 9), ["sm_86"])
    assert not _backend.runs_on((8, 5), ["sm_86"])       # lower minor
    assert not _backend.runs_on((9, 0), ["sm_86"])       # another major: no cubin runs there
    assert _backend.runs_on((9, 0), ["compute_86"])      # but PTX does
    assert not _backend.runs_on((8, 0), ["compute_86"])  # not on an older device
    assert _backend.runs_on((9, 0), ["sm_90a"]) and not _backend.runs_on((9, 1), ["sm_90a"])
    assert not _backend.runs_on((10, 0), ["compute_90a"])
    assert _backend.runs_on((10, 3), ["sm_100f"]) and not _backend.runs_on((12, 0), ["sm_100f"])
    assert not _backend.runs_on((9, 0), [])
    with pytest.raises(ValueError, match="architecture"):
        _backend.runs_on((9, 0), ["90"])


def test_device_problem_names_the_device_and_the_fix():
    assert _backend.device_problem(0, "NVIDIA H200", (9, 0), BUILD) == ""
    assert _backend.device_problem(0, "Tesla V100", (7, 0), []) == ""  # architectures not named
    reason = _backend.device_problem(1, "Tesla V100-SXM2-16GB", (7, 0), BUILD)
    assert "CUDA device 1" in reason and "Tesla V100-SXM2-16GB" in reason and "7.0" in reason
    assert "sm_75" in reason and "compute_90" in reason
    assert "CMAKE_CUDA_ARCHITECTURES=70" in reason


def fake_cuda_module(devices, current=0, architectures=BUILD, count=None, reason=""):
    return SimpleNamespace(
        device_status=lambda: (len(devices) if count is None else count, reason),
        device_capabilities=lambda: list(devices),
        current_device=lambda: current,
        architectures=lambda: list(architectures))


def test_evaluate_cuda_with_faked_devices():
    cupy_ok = lambda: ""  # noqa: E731
    assert _backend.evaluate_cuda(fake_cuda_module([("NVIDIA H200", 9, 0)]), cupy_ok) == (True, True, "")
    built, available, reason = _backend.evaluate_cuda(
        fake_cuda_module([("NVIDIA H200", 9, 0), ("Tesla V100", 7, 0)], current=1), cupy_ok)
    assert built and not available and "CUDA device 1 (Tesla V100" in reason
    # the current device decides, not the first
    assert _backend.evaluate_cuda(
        fake_cuda_module([("Tesla V100", 7, 0), ("NVIDIA L4", 8, 9)], current=1), cupy_ok)[1]
    assert _backend.evaluate_cuda(
        fake_cuda_module([], count=0, reason="no CUDA device present (cudaErrorNoDevice)"), cupy_ok) == (
        True, False, "no CUDA device present (cudaErrorNoDevice)")
    # a device the build runs on, but no CuPy
    assert _backend.evaluate_cuda(fake_cuda_module([("NVIDIA T4", 7, 5)]), lambda: "CuPy is not installed") == (
        True, False, "CuPy is not installed")


def test_a_device_the_build_cannot_run_keeps_auto_on_the_cpu(monkeypatch, caplog):
    status = _backend.evaluate_cuda(fake_cuda_module([("Tesla V100", 7, 0)]), lambda: "")
    monkeypatch.setattr(_backend, "cuda_status", lambda: status)
    monkeypatch.setattr(_info, "cuda_status", lambda: status)
    monkeypatch.setattr(_backend, "_auto_reported", False)
    with caplog.at_level(logging.INFO, logger="rtrl"):
        assert _backend.resolve_device("auto") == "cpu"
    assert "Tesla V100" in caplog.text
    with pytest.raises(RuntimeError, match=r"device='cuda' is not available: CUDA device 0 \(Tesla V100"):
        _backend.resolve_device("cuda")
    cuda = rtrl.info()["cuda"]
    assert cuda["available"] is False and "compute capability 7.0" in cuda["reason"]
    assert rtrl.cuda_available() is False


# ------------------------------------------------------------------------------------------------
# __cuda_array_interface__: what the CUDA module reads, its stream and its pointer checks


class FakeDeviceArray:
    def __init__(self, **fields):
        self.__cuda_array_interface__ = {"shape": (2, 3), "typestr": "<f4", "data": (4096, False),
                                         "version": 3, **fields}


def read(obj, call_stream=0):
    return _rtrl_cpu._cuda_array_interface(obj, "X", call_stream)


def test_interface_fields_are_read():
    a = read(FakeDeviceArray(strides=None))
    assert a["data"] == 4096 and a["shape"] == (2, 3) and a["kind"] == "f" and a["itemsize"] == 4
    assert a["c_contiguous"] and a["writeable"] and a["stream"] is None and not a["waits"]
    a = read(FakeDeviceArray(strides=(4, 8), data=(4096, True)))
    assert not a["c_contiguous"] and not a["writeable"]


@pytest.mark.parametrize("stream, call_stream, waits", [
    (None, 0, False),          # no stream: nothing to wait for
    (1, 0, False),             # the legacy default stream is the call's stream 0
    (0x7f00, 0x7f00, False),   # the call's own stream
    (2, 0, True),              # the per-thread default stream is another stream
    (0x7f00, 0, True),         # produced on another stream: the call waits for it
    (1, 0x7f00, True),
])
def test_interface_stream_is_compared_with_the_call_stream(stream, call_stream, waits):
    a = read(FakeDeviceArray(stream=stream), call_stream)
    assert a["stream"] == stream and a["waits"] is waits


def test_interface_stream_zero_and_bad_values_are_refused():
    with pytest.raises(ValueError, match=r"^X: __cuda_array_interface__\['stream'\] is 0"):
        read(FakeDeviceArray(stream=0))
    with pytest.raises(ValueError, match=r"^X: .*negative"):
        read(FakeDeviceArray(stream=-5))
    with pytest.raises(TypeError, match=r"^X: .*'stream'\] must be an integer"):
        read(FakeDeviceArray(stream="7"))
    with pytest.raises(TypeError, match=r"^X: .*'stream'\] must be an integer"):
        read(FakeDeviceArray(stream=True))


def test_malformed_interfaces_are_refused_with_the_argument_name():
    class NotADict:
        __cuda_array_interface__ = [1, 2]

    class NoData:
        __cuda_array_interface__ = {"shape": (2,), "typestr": "<f4", "version": 3}

    with pytest.raises(TypeError, match="^X: __cuda_array_interface__ is not a dict"):
        read(NotADict())
    with pytest.raises(ValueError, match="^X: __cuda_array_interface__ has no 'data'"):
        read(NoData())
    with pytest.raises(TypeError, match="^X: expected a CUDA device array"):
        read(np.zeros(3))
    with pytest.raises(ValueError, match="^X: .*strides and shape"):
        read(FakeDeviceArray(strides=(4,)))


# cudaMemoryType: 0 unregistered, 1 host, 2 device, 3 managed
def test_pointer_on_the_call_device_or_managed_is_accepted():
    assert _rtrl_cpu._device_pointer_problem("X", 2, 0, 0) == ""
    assert _rtrl_cpu._device_pointer_problem("X", 2, 3, 3) == ""
    assert _rtrl_cpu._device_pointer_problem("X", 3, 1, 0) == ""


def test_pointer_on_another_device_or_host_is_refused_with_a_reason():
    problem = _rtrl_cpu._device_pointer_problem("targets", 2, 1, 0)
    assert problem.startswith("targets: the array lives on CUDA device 1, but this call runs on CUDA device 0")
    assert "cupy.cuda.Device(0)" in problem
    assert "pinned host memory" in _rtrl_cpu._device_pointer_problem("X", 1, -2, 0)
    assert "not CUDA memory" in _rtrl_cpu._device_pointer_problem("X", 0, -2, 0)
    with pytest.raises(ValueError, match="memory_type"):
        _rtrl_cpu._device_pointer_problem("X", 7, 0, 0)


# ------------------------------------------------------------------------------------------------
# cross-entropy class indices: checked by the core itself, before any kernel reads y[class]

O_CLASSES = 3


@pytest.mark.parametrize("bad", [3.0, 7.0, 1e30, -2.0, 1.5])
def test_core_refuses_bad_class_indices_in_rtrl(bad):
    net = rtrl.RecurrentNet("lstm", 2, 4, O_CLASSES, seed=0, device="cpu", dtype="float64")
    learner = rtrl.RTRL(net, lr=0.1, loss="cross_entropy", batch_size=2)
    T = 4
    X = np.random.default_rng(0).standard_normal((T, 2, 2))
    classes = np.zeros((T, 2))
    classes[2, 1] = bad  # a value the Python check would refuse; here it goes straight to the core
    outputs, loss = np.full((T, 2, O_CLASSES), 5.0), np.full((T,), 5.0)
    before = {k: v.copy() for k, v in learner._kernels.arrays.items()}
    weights = net._flat.copy()
    with pytest.raises(ValueError, match=r"^targets: the class index at step 2, stream 1 is not -1 .* \[0, 3\)"):
        learner._kernels.rtrl(X, classes, outputs, loss, True)
    # refused before anything ran
    assert np.all(outputs == 5.0) and np.all(loss == 5.0)
    np.testing.assert_array_equal(net._flat, weights)
    for k, v in learner._kernels.arrays.items():
        np.testing.assert_array_equal(v, before[k])
    # -1 (no target) and every class in range are accepted
    classes[2, 1], classes[3, 0], classes[0, 0] = -1, O_CLASSES - 1, 1
    learner._kernels.rtrl(X, classes, outputs, loss, True)
    assert np.all(np.isfinite(loss))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_core_refuses_bad_class_indices_in_the_readout(dtype):
    T, B, H = 3, 2, 4
    config = _rtrl_cpu.CellNetConfig("gru", "tanh", 2, H, O_CLASSES, B, "cross_entropy", "mean")
    params = np.zeros(config.n_params, dtype=dtype)
    h = np.ones((T, B, H), dtype=dtype)
    targets = np.array([[0, 1], [2, -1], [O_CLASSES, 0]], dtype=dtype)
    outputs, loss = np.zeros((T, B, O_CLASSES), dtype=dtype), np.zeros(T, dtype=dtype)
    delta_h, grad = np.zeros((T, B, H), dtype=dtype), np.zeros(config.n_params, dtype=dtype)
    with pytest.raises(ValueError, match=r"^targets: the class index at step 2, stream 0"):
        _rtrl_cpu.readout(config, h, params, targets, outputs, loss, delta_h, grad, accumulate=False)
    assert not np.any(grad) and not np.any(outputs)
    targets[2, 0] = 1
    _rtrl_cpu.readout(config, h, params, targets, outputs, loss, delta_h, grad, accumulate=False)
    # zero weights: uniform softmax, loss log(O) per row with a target, mean over streams
    np.testing.assert_allclose(loss, np.log(O_CLASSES) * np.array([2, 1, 2]) / B, rtol=1e-6)
