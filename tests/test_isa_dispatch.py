"""The CPU module is built per instruction set and chosen at import time (rtrl._isa): the choice, the
RTRL_CPU_ISA override and its errors, and every level this machine runs giving the same results (to
rounding: levels differ in FMA contraction and vector width) as a float64 reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import rtrl
from rtrl import _isa

SIMD = {"x86-64-v2": "SSE4.2", "x86-64-v3": "AVX2", "x86-64-v4": "AVX-512"}


def test_the_best_level_this_cpu_runs_is_chosen():
    assert _isa.choose(["x86-64-v2", "x86-64-v3", "x86-64-v4"], ["baseline", "x86-64-v2", "x86-64-v3", "native"],
                       None) == "x86-64-v3"
    assert _isa.choose(["x86-64-v2", "x86-64-v3"], ["baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4"],
                       None) == "x86-64-v3"
    assert _isa.choose(["baseline"], ["baseline", "native"], None) == "baseline"
    assert _isa.choose(["x86-64-v4", "native"], ["baseline", "native"], None) == "native"


def test_a_forced_level_must_be_built_and_runnable():
    built, runnable = ["x86-64-v2", "x86-64-v3"], ["baseline", "x86-64-v2", "x86-64-v3", "native"]
    assert _isa.choose(built, runnable, " x86-64-v2") == "x86-64-v2"
    with pytest.raises(ImportError, match=r"RTRL_CPU_ISA='avx9'.*x86-64-v2, x86-64-v3"):
        _isa.choose(built, runnable, "avx9")
    with pytest.raises(ImportError, match=r"RTRL_CPU_ISA='x86-64-v3': this CPU does not run x86-64-v3"):
        _isa.choose(built, ["baseline", "x86-64-v2"], "x86-64-v3")
    with pytest.raises(ImportError, match="none of which this CPU runs"):
        _isa.choose(["x86-64-v4"], ["baseline", "x86-64-v2"], None)


def test_module_names_follow_cmake():
    assert _isa.module_name("x86-64-v3") == "_rtrl_cpu_x86_64_v3"
    assert _isa.module_name("native") == "_rtrl_cpu_native"


def test_info_names_the_loaded_level():
    cpu = rtrl.info()["cpu"]
    assert cpu["isa"] in cpu["isas"]
    forced = os.environ.get(_isa.ENVIRONMENT)
    if forced:  # CI runs the suite once per level
        assert cpu["isa"] == forced.strip()
    else:
        assert cpu["isa"] == cpu["isas"][-1]
    if cpu["isa"] in SIMD:
        assert cpu["simd"] == SIMD[cpu["isa"]]
    assert rtrl._rtrl_cpu.__name__ == f"rtrl.{_isa.module_name(cpu['isa'])}"


def _run_in_a_subprocess(code: str, isa: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != _isa.ENVIRONMENT}
    if isa is not None:
        env[_isa.ENVIRONMENT] = isa
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_an_unknown_level_fails_the_import_saying_why():
    done = _run_in_a_subprocess("import rtrl", "avx9")
    assert done.returncode != 0
    assert "ImportError: RTRL_CPU_ISA='avx9': this rtrl carries CPU modules for" in done.stderr


# An RTRL run and a layer's forward + backward (the panel kernels, the packed product, the pointwise
# cells), printed as JSON.
_WORKLOAD = """
import json, sys
import numpy as np
import rtrl
rng = np.random.default_rng(5)
net = rtrl.FullyRecurrent(40, 3, n_outputs=2, seed=1, dtype="float64")
X = rng.standard_normal((30, 3))
Y = np.tanh(rng.standard_normal((30, 2)))
loss = rtrl.RTRL(net, optimizer=rtrl.optim.SGD(0.05), update="realtime").run(X, Y).loss
layer = rtrl.nn.LSTM(7, 37, dtype="float64", seed=2)
x = rng.standard_normal((9, 5, 7))
y, _ = layer(x)
layer.backward(np.ones_like(y))
print(json.dumps({"isa": rtrl.info()["cpu"]["isa"], "loss": np.asarray(loss).tolist(),
                  "y": y.ravel().tolist(), "grad": layer.grads["weight_hh_l0"].ravel().tolist()}))
"""


def test_every_level_this_cpu_runs_gives_the_same_results():
    results = {}
    for isa in rtrl.info()["cpu"]["isas"]:
        done = _run_in_a_subprocess(_WORKLOAD, isa)
        assert done.returncode == 0, done.stderr
        results[isa] = json.loads(done.stdout)
        assert results[isa]["isa"] == isa
    reference = results[rtrl.info()["cpu"]["isa"]]
    for isa, got in results.items():
        for key in ("loss", "y", "grad"):
            np.testing.assert_allclose(got[key], reference[key], rtol=1e-9, atol=1e-12, err_msg=f"{isa} {key}")
