"""Checkpoints: a versioned ``.npz`` (no pickle) holding a learner, its model and all their state,
written atomically."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

FORMAT = "rtrl-checkpoint"
VERSION = 1


def save(learner: Any, path: Any) -> None:
    from .learners import Learner

    if not isinstance(learner, Learner):
        raise TypeError(f"learner: expected an rtrl learner, got {type(learner).__name__}")
    path = os.fspath(path)
    be = learner._be
    state = learner.state_dict()
    header = {
        "format": FORMAT, "version": VERSION,
        "model": {"class": type(learner.model).__name__, "config": learner.model.config()},
        "learner": {"class": type(learner).__name__, "config": learner.config()},
        "counters": {k: state[k] for k in ("optimizer_step", "steps", "pending")},
    }
    arrays = {f"parameters/{k}": be.to_host(v) for k, v in state["parameters"].items()}
    arrays.update({k: be.to_host(v) for k, v in state.items()
                   if k not in ("parameters", "optimizer_step", "steps", "pending")})
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rtrl-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: Any, *, device: str | None = None) -> Any:
    """Loads a learner written by ``learner.save(path)``, on ``device`` (default: the device it was
    saved from, or the CPU when that is unavailable through ``"auto"``)."""
    from . import learners, models, optim

    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "__header__" not in data.files:
                raise ValueError(f"{path}: not an rtrl checkpoint (no header)")
            header = json.loads(bytes(data["__header__"]).decode())
            arrays = {k: data[k] for k in data.files if k != "__header__"}
    except (zipfile.BadZipFile, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a readable rtrl checkpoint ({exc})") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: not an rtrl checkpoint (format {header.get('format')!r})")
    if not isinstance(header.get("version"), int) or header["version"] > VERSION:
        raise ValueError(f"{path}: checkpoint version {header.get('version')!r} is newer than this "
                         f"rtrl reads ({VERSION}); upgrade rtrl")
    model_cls = {"FullyRecurrent": models.FullyRecurrent}.get(header["model"]["class"])
    learner_cls = {"RTRL": learners.RTRL, "BPTT": learners.BPTT}.get(header["learner"]["class"])
    if model_cls is None or learner_cls is None:
        raise ValueError(f"{path}: unknown model or learner class in checkpoint")
    model_config = dict(header["model"]["config"])
    model_config["device"] = device or ("auto" if model_config.get("device") == "cuda" else "cpu")
    model = model_cls(**model_config)
    learner_config = dict(header["learner"]["config"])
    learner_config["optimizer"] = optim.from_state_dict(learner_config.get("optimizer"))
    learner = learner_cls(model, **learner_config)
    params = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("parameters/")}
    state = {k: v for k, v in arrays.items() if not k.startswith("parameters/")}
    learner.load_state_dict({"parameters": params, **state, **header["counters"]})
    return learner
