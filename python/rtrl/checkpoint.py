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
        "counters": {k: state[k] for k in ("optimizer_step", "steps", "pending", "stats")},
    }
    arrays = {f"parameters/{k}": be.to_host(v) for k, v in state["parameters"].items()}
    arrays.update({k: be.to_host(v) for k, v in state.items()
                   if k not in ("parameters", "optimizer_step", "steps", "pending", "stats")})
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rtrl-", suffix=".npz.tmp", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint is an ordinary file
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
    path = os.fspath(path)
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile) or "__header__" not in data.files:
                raise ValueError(f"{path}: not an rtrl checkpoint (no header)")
            header = json.loads(bytes(data["__header__"]).decode())
            arrays = {k: data[k] for k in data.files if k != "__header__"}
    except FileNotFoundError:
        raise
    except AttributeError:  # np.load gave a plain array (an .npy file): it is no context manager
        raise ValueError(f"{path}: not an rtrl checkpoint (not an .npz archive)") from None
    except (ValueError, zipfile.BadZipFile, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError,
            TypeError, NotImplementedError) as exc:  # NotImplementedError: zip features it cannot read
        if isinstance(exc, ValueError) and str(exc).startswith(path):
            raise
        raise ValueError(f"{path}: not a readable rtrl checkpoint ({type(exc).__name__})") from None
    try:
        fmt, version = header.get("format"), header.get("version")
    except AttributeError:
        raise ValueError(f"{path}: not an rtrl checkpoint (malformed header)") from None
    if fmt != FORMAT:
        raise ValueError(f"{path}: not an rtrl checkpoint (format {fmt!r})")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: malformed checkpoint version {version!r}")
    if version > VERSION:
        raise ValueError(f"{path}: checkpoint version {version} is newer than this rtrl reads ({VERSION}); "
                         "upgrade rtrl")
    try:
        return _rebuild(header, arrays, device)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: malformed rtrl checkpoint ({type(exc).__name__}: {exc})") from None


def _rebuild(header: dict, arrays: dict, device: str | None) -> Any:
    from . import learners, models, optim, traces, uoro

    model_cls = {"FullyRecurrent": models.FullyRecurrent,
                 "RecurrentNet": models.RecurrentNet}.get(header["model"]["class"])
    learner_cls = {"RTRL": learners.RTRL, "BPTT": learners.BPTT, "SnAp": traces.SnAp,
                   "EProp": traces.EProp, "RFLO": traces.RFLO, "UORO": uoro.UORO,
                   "KFRTRL": uoro.KFRTRL}.get(header["learner"]["class"])
    if model_cls is None or learner_cls is None:
        raise ValueError("unknown model or learner class in checkpoint")
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
