"""The core's own exp, tanh and sigmoid (vectorisable on the CPU) against float64/long-double NumPy."""

import numpy as np
import pytest

from rtrl import _rtrl_cpu

ULP_LIMIT = 4  # the approximations are accurate to a few units in the last place


def ulp_error(actual: np.ndarray, exact: np.ndarray, dtype) -> float:
    info = np.finfo(dtype)
    exact_t = exact.astype(dtype)
    spacing = np.spacing(np.abs(exact_t).astype(dtype)).astype(np.float64)
    spacing = np.maximum(spacing, float(info.smallest_subnormal))
    return float(np.max(np.abs(actual.astype(np.longdouble) - exact) / spacing))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", ["exp", "tanh", "sigmoid"])
def test_elementwise_accuracy(fn, dtype):
    rng = np.random.default_rng(0)
    limit = 80.0 if dtype == np.float32 else 700.0
    x = np.concatenate([rng.uniform(-limit, limit, 20000), rng.uniform(-1, 1, 20000),
                        rng.uniform(-1e-3, 1e-3, 2000), [0.0, -0.0, 0.625, -0.625, 1e-30]]).astype(dtype)
    xl = x.astype(np.longdouble)
    exact = {"exp": np.exp, "tanh": np.tanh, "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[fn](xl)
    got = _rtrl_cpu._elementwise(fn, x)
    assert got.dtype == dtype
    mask = np.abs(exact) > np.finfo(dtype).tiny  # normal results (subnormal ones: absolute check below)
    assert ulp_error(got[mask], exact[mask], dtype) <= ULP_LIMIT
    if (~mask).any():
        assert np.max(np.abs(got[~mask].astype(np.longdouble) - exact[~mask])) <= 2 * np.finfo(dtype).tiny


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_special_values(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 1e4, -1e4], dtype=dtype)
    e = _rtrl_cpu._elementwise("exp", x)
    assert np.isnan(e[0]) and e[1] == np.inf and e[2] == 0 and e[3] == np.inf and e[4] == 0
    t = _rtrl_cpu._elementwise("tanh", x)
    assert np.isnan(t[0]) and list(t[1:]) == [1, -1, 1, -1]
    s = _rtrl_cpu._elementwise("sigmoid", x)
    assert np.isnan(s[0]) and list(s[1:]) == [1, 0, 1, 0]
