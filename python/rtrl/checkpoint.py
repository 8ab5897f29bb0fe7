"""Checkpoints: a versioned ``.npz`` (no pickle) holding a learner, its model and all their state,
written atomically and read with bounded memory and time."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

FORMAT = "rtrl-checkpoint"
VERSION = 1
HEADER = "__header__"
MAX_HEADER_BYTES = 1 << 20  # the JSON header of any real checkpoint is a few hundred bytes
_NPY_HEADER_BYTES = 10000  # NumPy's own limit on an .npy member's header
_COUNTERS = ("optimizer_step", "steps", "pending", "stats")


class CheckpointError(ValueError):
    """A file :func:`rtrl.load` cannot read as a checkpoint: not a checkpoint, truncated, corrupted,
    of a newer version, or describing a model larger than allowed.

    Every failure to read a file that exists is this one type (a ``ValueError``); a missing file
    raises ``FileNotFoundError``.

    Attributes
    ----------
    path : str
        The file.
    member : str or None
        The archive member at fault (``"__header__"`` for the header, ``"state"``,
        ``"parameters/weight"``, ...), or None when the archive as a whole is.
    """

    def __init__(self, path: str, detail: str, member: str | None = None) -> None:
        self.path, self.member = path, member
        where = f"member {member!r}: " if member is not None else ""
        suffix = "" if "rtrl checkpoint" in detail else " (not a loadable rtrl checkpoint)"
        super().__init__(f"{path}: {where}{detail}{suffix}")

    def __reduce__(self) -> tuple:
        return _rebuild_error, (self.path, str(self), self.member)


def _rebuild_error(path: str, message: str, member: str | None) -> CheckpointError:
    exc = CheckpointError.__new__(CheckpointError)
    ValueError.__init__(exc, message)
    exc.path, exc.member = path, member
    return exc


# -- save ------------------------------------------------------------------------------------------
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
        "counters": {k: state[k] for k in _COUNTERS},
    }
    arrays = {f"parameters/{k}": be.to_host(v) for k, v in state["parameters"].items()}
    arrays.update({k: be.to_host(v) for k, v in state.items() if k != "parameters" and k not in _COUNTERS})
    directory = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    _remove_stale_temp_files(directory, prefix)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}-", suffix=".npz.tmp", dir=directory)
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __header__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from None
        raise


def _naming(exc: OSError, path: str) -> OSError:
    """``exc`` (of the same type) naming the user's ``path`` rather than a temporary file."""
    detail = exc.strerror or str(exc)
    return type(exc)(exc.errno, f"cannot write the checkpoint: {detail}", path)


def _temp_prefix(path: str) -> str:
    """The temporary files of saves to ``path`` from this host start with this prefix, then the
    writing process's id."""
    key = f"{os.path.abspath(path)}\0{socket.gethostname()}".encode("utf-8", "surrogatepass")
    return f".rtrl-{hashlib.sha1(key).hexdigest()[:16]}-"


def _remove_stale_temp_files(directory: str, prefix: str) -> None:
    """Removes the temporary files an earlier save to the same path left behind when its process
    was killed (a process that is still running keeps its own)."""
    if os.name != "posix":
        return
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".npz.tmp")):
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


# -- load ------------------------------------------------------------------------------------------
# What can go wrong while reading a corrupted archive: zip structure, inflating, .npy headers.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, TypeError, KeyError,
                IndexError, AttributeError, RuntimeError, NotImplementedError, struct.error, SyntaxError,
                RecursionError, OverflowError, MemoryError, UnicodeDecodeError)


def load(path: Any, *, device: str | None = None, max_bytes: int | None = None) -> Any:
    """Loads a learner written by ``learner.save(path)``, on ``device`` (default: the device it was
    saved from, or the CPU when that is unavailable through ``"auto"``). Given a list of the files
    of every rank of a column-sharded learner (``rtrl.distributed.ShardedRTRL``), gathers them into
    the one-process ``rtrl.RTRL`` they are the shards of.

    Reading is bounded: the header is read first, the model and learner it describes are sized
    (:func:`rtrl.memory.estimate`) and refused when larger than ``max_bytes`` (default: the memory
    available) before anything is allocated, and every other member's declared shape and dtype
    (its ``.npy`` header) is checked against what that model needs before its data is read. Unknown
    and duplicate members are refused.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    rtrl.CheckpointError
        (a ``ValueError``) for anything else that makes the file unloadable, naming ``path`` and,
        where one is at fault, the archive member.
    """
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer))
                                  or max_bytes < 0):
        raise ValueError(f"max_bytes: expected a non-negative integer or None, got {max_bytes!r}")
    if isinstance(path, (list, tuple)):
        from .distributed import gather_shards

        return gather_shards([_load_one(os.fspath(p), device, max_bytes, shard=True) for p in path], device)
    learner = _load_one(os.fspath(path), device, max_bytes, shard=False)
    return learner


def _load_one(path: str, device: str | None, max_bytes: int | None, *, shard: bool) -> Any:
    """One checkpoint file; a shard of a column-sharded learner only when ``shard``."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({type(exc).__name__}: {exc.strerror or exc})") from None
    with f:
        try:
            archive = zipfile.ZipFile(f)
        except _READ_ERRORS as exc:
            raise CheckpointError(path, f"not an rtrl checkpoint (not an .npz archive: {type(exc).__name__})") from None
        with archive:
            return _Reader(path, archive).learner(device, max_bytes, shard)


class _Reader:
    """One archive being read: its members by name, read one at a time with bounded sizes."""

    def __init__(self, path: str, archive: zipfile.ZipFile) -> None:
        self.path, self.archive = path, archive
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if name in self.members:
                raise CheckpointError(path, "appears twice in the archive", name)
            self.members[name] = info

    def error(self, detail: str, member: str | None = None) -> CheckpointError:
        return CheckpointError(self.path, detail, member)

    def learner(self, device: str | None, max_bytes: int | None, shard: bool = False) -> Any:
        header = self.header()
        is_shard = isinstance(header.get("learner"), dict) and header["learner"].get("class") in _SHARDS
        if is_shard != shard:
            raise self.error("is one shard of a column-sharded learner (rtrl.distributed.ShardedRTRL): load it "
                             "with ShardedRTRL.load(path) on each rank, or all its shards on one process with "
                             "rtrl.load([path_0, ..., path_last])" if is_shard else
                             "is not a shard of a column-sharded learner", HEADER)
        try:
            model_cls, model_config, learner_cls, learner_config = _classes(header)
            _check_size(model_cls, model_config, learner_cls, learner_config, max_bytes)
            learner = _build(model_cls, model_config, learner_cls, learner_config, device)
            counters = header["counters"]
        except CheckpointError:
            raise
        except MemoryError as exc:
            raise self.error(f"describes a model too large to load: {exc}", HEADER) from None
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
            raise self.error(f"malformed rtrl checkpoint header ({type(exc).__name__}: {exc})", HEADER) from None
        expected = {f"parameters/{k}": v for k, v in learner.model.parameters().items()}
        expected.update(learner._arrays())
        unknown = sorted(set(self.members) - set(expected) - {HEADER})
        if unknown:
            raise self.error(f"unknown member{'s' if len(unknown) > 1 else ''} {unknown}; this checkpoint's "
                             f"model has {sorted(expected)}", unknown[0])
        missing = sorted(set(expected) - set(self.members))
        if missing:
            raise self.error(f"missing member{'s' if len(missing) > 1 else ''} {missing}", missing[0])
        arrays = {name: self.array(name, tuple(a.shape), np.dtype(a.dtype)) for name, a in expected.items()}
        params = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("parameters/")}
        state = {k: v for k, v in arrays.items() if not k.startswith("parameters/")}
        try:
            learner.load_state_dict({"parameters": params, **state, **counters})
        except (ValueError, TypeError) as exc:
            raise self.error(f"malformed rtrl checkpoint header counters ({exc})", HEADER) from None
        return learner

    def header(self) -> dict:
        if HEADER not in self.members:
            raise self.error("not an rtrl checkpoint (no header)")
        raw = self.read(HEADER, None, np.dtype(np.uint8), MAX_HEADER_BYTES)
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise self.error(f"not an rtrl checkpoint (the header is not JSON: {type(exc).__name__})", HEADER) from None
        if not isinstance(header, dict):
            raise self.error("not an rtrl checkpoint (malformed header)", HEADER)
        unknown = sorted(map(str, set(header) - {"format", "version", "model", "learner", "counters"}))
        if unknown:
            raise self.error(f"malformed rtrl checkpoint header (unknown entries {unknown[:5]})", HEADER)
        fmt, version = header.get("format"), header.get("version")
        if fmt != FORMAT:
            raise self.error(f"not an rtrl checkpoint (format {str(fmt)[:80]!r})", HEADER)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise self.error(f"malformed rtrl checkpoint version {str(version)[:80]!r}", HEADER)
        if version > VERSION:
            raise self.error(f"rtrl checkpoint version {version} is newer than this rtrl reads ({VERSION}); "
                             "upgrade rtrl", HEADER)
        return header

    def array(self, name: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
        arr = self.read(name, shape, dtype, None)
        if not np.isfinite(arr).all():
            raise self.error("holds non-finite values", name)
        return arr

    def read(self, name: str, shape: tuple | None, dtype: np.dtype, max_items: int | None) -> np.ndarray:
        """Member ``name`` as an array of ``dtype`` (any byte order on disk) and ``shape`` (or any 1-d
        shape of at most ``max_items``), its declared header checked before any data is read."""
        info = self.members[name]
        try:
            with self.archive.open(info) as fp:
                declared_shape, fortran, declared = _npy_header(fp)
                if declared.kind != dtype.kind or declared.itemsize != dtype.itemsize or declared.fields:
                    raise self.error(f"declares dtype {declared.str}, expected {dtype.name}", name)
                if shape is None:
                    if len(declared_shape) != 1 or declared_shape[0] > max_items:
                        raise self.error(f"declares shape {declared_shape}, expected at most ({max_items},)", name)
                    shape = declared_shape
                elif declared_shape != shape:
                    raise self.error(f"declares shape {declared_shape}, expected {shape}", name)
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if info.file_size != fp.tell() + nbytes:
                    raise self.error(f"is {info.file_size} bytes, its header declares {fp.tell() + nbytes}", name)
                data = fp.read(nbytes)
                if len(data) != nbytes or fp.read(1):
                    raise self.error("is truncated or longer than declared", name)
        except CheckpointError:
            raise
        except _READ_ERRORS as exc:
            raise self.error(f"unreadable ({type(exc).__name__}: {str(exc)[:200]})", name) from None
        order = "F" if fortran else "C"
        arr = np.frombuffer(data, dtype=declared).reshape(shape, order=order)
        return np.array(arr, dtype=dtype.newbyteorder("="), order="C")


def _npy_header(fp: Any) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of the ``.npy`` stream ``fp``, read with NumPy's size limit."""
    major, _ = np.lib.format.read_magic(fp)
    if major == 1:
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp, max_header_size=_NPY_HEADER_BYTES)
    elif major in (2, 3):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp, max_header_size=_NPY_HEADER_BYTES)
    else:
        raise ValueError(f"unknown .npy version {major}")
    if dtype.hasobject:
        raise ValueError("object arrays are not part of a checkpoint")
    return tuple(int(n) for n in shape), bool(fortran), dtype


_SHARDS = ("ShardedRTRL", "RTRLShard")  # one rank's file of a column-sharded learner


def _classes(header: dict) -> tuple[type, dict, type, dict]:
    """The model and learner classes and their constructor arguments the header names."""
    from . import learners, models, optim, traces, uoro

    model_cls = {"FullyRecurrent": models.FullyRecurrent,
                 "RecurrentNet": models.RecurrentNet}.get(header["model"]["class"])
    from .distributed import RTRLShard

    learner_cls = {"RTRL": learners.RTRL, "BPTT": learners.BPTT, "SnAp": traces.SnAp,
                   "EProp": traces.EProp, "RFLO": traces.RFLO, "UORO": uoro.UORO, "KFRTRL": uoro.KFRTRL,
                   **{name: RTRLShard for name in _SHARDS}}.get(header["learner"]["class"])
    if model_cls is None or learner_cls is None:
        raise ValueError("unknown model or learner class in checkpoint")
    if not isinstance(header["model"]["config"], dict) or not isinstance(header["learner"]["config"], dict):
        raise TypeError("model and learner configs must be JSON objects")
    if not isinstance(header["counters"], dict):
        raise TypeError("counters must be a JSON object")
    if set(header["counters"]) != set(_COUNTERS):
        raise ValueError(f"counters: expected {list(_COUNTERS)}, got {sorted(map(str, header['counters']))}")
    model_config = dict(header["model"]["config"])
    learner_config = dict(header["learner"]["config"])
    learner_config["optimizer"] = optim.from_state_dict(learner_config.get("optimizer"))
    return model_cls, model_config, learner_cls, learner_config


def _check_size(model_cls: type, model_config: dict, learner_cls: type, learner_config: dict,
                max_bytes: int | None) -> None:
    """Refuses, before anything is allocated, a model and learner needing more than ``max_bytes``
    (default: the memory available)."""
    from . import memory

    opt = learner_config["optimizer"]
    kind = ("none" if opt is None else "adam" if opt.kind == "adam"
            else "momentum" if opt.momentum else "sgd")
    common = dict(batch_size=learner_config.get("batch_size", 1), dtype=model_config.get("dtype", "float32"),
                  learner=learner_cls._kind, optimizer=kind, update=learner_config.get("update", "realtime"),
                  steps=1)
    shard = learner_config.get("shard")  # a column-sharded learner's file: its weight rows only
    common["weight_rows"] = None if shard is None else int(shard[1])
    if model_cls.__name__ == "FullyRecurrent":
        n_outputs = model_config.get("n_outputs")
        need = memory.estimate("fully_recurrent", model_config["n_inputs"], model_config["n_units"],
                               n_outputs, bias=bool(model_config.get("bias", True)), **common)
    else:
        need = memory.estimate(model_config["cell"], model_config["input_size"], model_config["hidden_size"],
                               model_config["output_size"], num_layers=model_config.get("num_layers", 1), **common)
    cap = memory.available_bytes("cpu") if max_bytes is None else int(max_bytes)
    if cap is not None and need["learner"] > cap:
        raise MemoryError(f"the model and learner it describes need {memory.format_bytes(need['learner'])}, "
                          f"more than the {memory.format_bytes(cap)} "
                          f"{'available' if max_bytes is None else 'allowed (max_bytes)'}")


def _build(model_cls: type, model_config: dict, learner_cls: type, learner_config: dict,
           device: str | None) -> Any:
    model_config["device"] = device or ("auto" if model_config.get("device") == "cuda" else "cpu")
    return learner_cls(model_cls(**model_config), **learner_config)
