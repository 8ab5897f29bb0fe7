"""Argument checks shared by the modules: constructor options as torch.nn takes them, and tensors
that must match the parameters' dtype and device and an expected shape."""

from __future__ import annotations

import numbers
from typing import Any

import torch

DTYPES = (torch.float32, torch.float64)


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return value


def no_dropout(value: Any) -> float:
    """torch.nn's dropout between layers is not offered: 0 is the only value taken."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"dropout: expected a number, got {type(value).__name__} {value!r}")
    if value != 0:
        raise ValueError(f"dropout: rtrl.torch's layers have no dropout between layers, expected 0, got "
                         f"{value!r} (stack single-layer modules with torch.nn.Dropout between them instead)")
    return 0.0


def factory_dtype(dtype: Any) -> torch.dtype:
    """The parameters' dtype (torch's default dtype when None): float32 or float64."""
    resolved = torch.get_default_dtype() if dtype is None else dtype
    if resolved not in DTYPES:
        raise TypeError(f"dtype: expected torch.float32 or torch.float64 (the dtypes of rtrl's kernels), "
                        f"got {resolved!r}")
    return resolved


def same_kind(name: str, value: Any, weight: torch.Tensor, expected: str) -> torch.Tensor:
    """``value``, a tensor of the parameters' dtype on their device (``expected`` describes its shape)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of shape {expected}, got {type(value).__name__}")
    if weight.dtype not in DTYPES:
        raise TypeError(f"parameters: rtrl's kernels run torch.float32 or torch.float64, but the module's "
                        f"parameters are {weight.dtype} (convert it with .float() or .double())")
    if value.dtype != weight.dtype:
        raise TypeError(f"{name}: expected dtype {weight.dtype} (the parameters' dtype), got {value.dtype}; "
                        f"convert it with .to({weight.dtype}) or the module with .to({value.dtype})")
    if value.device != weight.device:
        raise ValueError(f"{name}: expected a tensor on {weight.device} (where the parameters are), got one on "
                         f"{value.device}; move it with .to({str(weight.device)!r}) or the module with .to()")
    return value


def matching(name: str, value: Any, weight: torch.Tensor, shape: tuple[int, ...], axes: str) -> torch.Tensor:
    """``value`` checked as by :func:`same_kind` and to have ``shape`` (``axes`` names its axes)."""
    same_kind(name, value, weight, f"{shape} {axes}")
    if tuple(value.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape} {axes}, got {tuple(value.shape)}")
    return value
