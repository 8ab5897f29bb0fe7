"""Shared fixtures: every numerical test body runs on each available device (CPU always; CUDA when
a device is present, otherwise those cases are skipped one by one)."""

from __future__ import annotations

import numpy as np
import pytest

import rtrl

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def pytest_collection_modifyitems(config, items):
    if rtrl.cuda_available():
        return
    reason = rtrl.info()["cuda"].get("reason", "CUDA unavailable")
    skip = pytest.mark.skip(reason=f"no CUDA device: {reason}")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Each available device in turn."""
    return request.param


def to_numpy(array) -> np.ndarray:
    """A host copy of a NumPy or CuPy array."""
    return array.get() if hasattr(array, "get") and not isinstance(array, np.ndarray) else np.asarray(array)


def relative_error(actual, expected) -> float:
    actual, expected = to_numpy(actual).astype(np.float64), to_numpy(expected).astype(np.float64)
    scale = max(np.linalg.norm(expected), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(actual - expected) / scale)
