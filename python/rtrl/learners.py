"""Learners: RTRL (exact, online) and BPTT over a model, with the time loop in the native core."""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from . import memory as _memory
from . import optim as _optim
from ._arrays import add_batch_axis, array_library, as_device_array, as_flag, like_input, unaliased, zeros_touched
from ._kernels import kernels_for
from ._locking import locked
from .models import FullyRecurrent, Model, RecurrentNet

LOSSES = ("mse", "cross_entropy")
REDUCTIONS = ("mean", "sum")
UPDATES = ("realtime", "epoch")
NONFINITE_POLICIES = ("raise", "skip")
_COUNTER_LIMIT = 2**63  # counters travel to the core as int64


class NonFiniteError(FloatingPointError):
    """A step's state or gradient became non-finite (``on_nonfinite="raise"``).

    The learner stays consistent: that step's gradient was dropped (weights and optimizer state are
    those before it), the offending streams' state and sensitivities were reset to zero, and the
    other streams went through the step. Non-finite *input* is refused before anything runs, with a
    ``ValueError``.

    Attributes
    ----------
    step : int
        The learner's step index (counting from its creation) where it happened.
    streams : list of int
        The streams that held non-finite values (empty when only the sum over streams overflowed).
    result : RunResult
        What the call produced up to and including that step.
    """

    def __init__(self, message: str, step: int, streams: list, result: "RunResult") -> None:
        super().__init__(message)
        self.step, self.streams, self.result = step, streams, result

    def __reduce__(self) -> tuple:  # picklable, e.g. across multiprocessing workers
        return type(self), (str(self), self.step, self.streams, self.result)


@dataclass(eq=False)
class RunResult:
    """What :meth:`RTRL.run` and :meth:`BPTT.run` return.

    Two results compare equal when their outputs and their losses are arrays of the same kind and
    shape holding the same values, NaN equal to NaN (``np.array_equal(a, b, equal_nan=True)`` for
    each); ``==`` gives one bool, never an array, and never raises. Like an array, a RunResult is
    not hashable.

    Attributes
    ----------
    outputs : array (T, B, O), or (T, O) for unbatched input
        The visible outputs of every step (a unit's own value, before teacher forcing).
    loss : array (T,)
        The loss of every step, reduced over streams.

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> a = rtrl.RunResult(np.array([[0.5], [np.nan]]), np.array([0.1, np.nan]))
    >>> a == rtrl.RunResult(a.outputs.copy(), a.loss.copy()), a == rtrl.RunResult(a.outputs, a.loss[:1])
    (True, False)
    """

    outputs: Any
    loss: Any

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunResult):
            return NotImplemented
        return _same_values(self.outputs, other.outputs) and _same_values(self.loss, other.loss)

    __hash__ = None  # type: ignore[assignment]  # equal by value, as arrays are


def _same_values(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are both None, or arrays of the same type and shape whose values
    are equal, NaN equal to NaN (NumPy, CuPy or any array with elementwise ``==``)."""
    if a is None or b is None:
        return a is b
    if type(a) is not type(b) or tuple(a.shape) != tuple(b.shape):
        return False
    return bool(((a == b) | ((a != a) & (b != b))).all())


def _is_count(value: Any) -> bool:
    """Whether ``value`` is an integer (not a bool) in [0, 2**63)."""
    return (not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))
            and 0 <= value < _COUNTER_LIMIT)


def _make_optimizer(lr: float | None, optimizer: _optim.Optimizer | None) -> _optim.Optimizer | None:
    if lr is not None and optimizer is not None:
        raise ValueError("lr and optimizer: give one of them (lr= is shorthand for optimizer=rtrl.optim.SGD(lr))")
    if lr is not None:
        return _optim.SGD(lr)
    return None if optimizer is None else _optim.checked(optimizer)


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


class Learner:
    """What RTRL and BPTT share: state arrays, the gradient, the optimizer and checkpoints."""

    _kind = ""
    _algorithm: str | None = None  # what the native online loop runs: "exact", "snap1", "eprop"; None: BPTT

    def __init__(self, model: Model, *, lr: float | None, optimizer: _optim.Optimizer | None,
                 loss: str, reduction: str, clip_grad_norm: float | None, batch_size: int,
                 teacher_forcing: bool, on_nonfinite: str) -> None:
        self._lock = threading.RLock()
        if not isinstance(model, (FullyRecurrent, RecurrentNet)):
            raise TypeError(f"model: expected an rtrl.FullyRecurrent or rtrl.RecurrentNet, got {type(model).__name__}")
        if (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
                or batch_size >= 2**31):
            raise ValueError(f"batch_size: expected a positive integer below 2**31, got {batch_size!r}")
        _check_choice("loss", loss, LOSSES)
        if loss == "cross_entropy" and isinstance(model, FullyRecurrent):
            raise ValueError("loss='cross_entropy' needs a model with a readout (rtrl.RecurrentNet); "
                             "the units of FullyRecurrent are trained with loss='mse'")
        _check_choice("reduction", reduction, REDUCTIONS)
        self.on_nonfinite = _check_choice("on_nonfinite", on_nonfinite, NONFINITE_POLICIES)
        if clip_grad_norm is not None:
            clip_grad_norm = _optim._positive("clip_grad_norm", clip_grad_norm)
        teacher_forcing = as_flag(teacher_forcing, "teacher_forcing")
        if teacher_forcing and isinstance(model, RecurrentNet):
            raise ValueError("teacher_forcing: only FullyRecurrent feeds its outputs back; RecurrentNet has "
                             "a separate readout")
        self.model = model
        self.optimizer = _make_optimizer(lr, optimizer)
        self.loss, self.reduction = loss, reduction
        self.clip_grad_norm = clip_grad_norm
        self.batch_size = int(batch_size)
        self.teacher_forcing = teacher_forcing
        be = model._backend
        self._be, self._xp, self._core = be, be.xp, be.core
        self._native = (getattr(self.optimizer, "_version", None), self.optimizer.native(self._core, clip_grad_norm) if self.optimizer is not None
                        else self._core.OptimizerConfig("none", 0.0))
        rows = self._native_optimizer.state_rows
        if self._algorithm is not None:
            need = _memory.of_learner(model, self._kind, self.batch_size, rows if self.optimizer else None,
                                      update=getattr(self, "update", "realtime"),
                                      weight_rows=getattr(self, "_shard", (0, None))[1])
            layers = (_memory.layer_sensitivities(model, self.batch_size, getattr(self, "_shard", (0, None))[1])
                      if self._algorithm == "exact" and isinstance(model, RecurrentNet) and model.num_layers > 1
                      else None)
            _memory.check_fits(need, model.device, f"{type(self).__name__} with batch_size={self.batch_size} "
                               f"on {model!r}", layers)
        # links the loop to other processes (rtrl.distributed): hook(grad, finite, streams) ->
        # (everywhere, streams), GradientCombiner in the core's nonfinite.hpp; None: alone
        self._gradient_hook = None
        self._grad = zeros_touched(self._xp, model._flat.shape, model.dtype)
        self._optimizer_state = (zeros_touched(self._xp, (rows,) + tuple(model._flat.shape), model.dtype)
                                 if rows else None)
        self._optimizer_step = 0
        self._pending = False
        self.steps = 0
        self.stats = {"skipped_steps": 0, "reset_streams": 0, "last_skipped_step": None}
        self._warn_after_skipped, self._consecutive_skips = 1000, 0
        self._kernels = kernels_for(self, self._algorithm, self._feedback_matrix())

    def _feedback_matrix(self) -> Any:
        """e-prop's random feedback (O, H) on the learner's device, or None."""
        return None

    @property
    def lock(self) -> Any:
        """The re-entrant lock each call (``run``, ``step``, ``apply``, ``state_dict``, ``save``, ...)
        holds: calls from several threads take turns, each whole. Hold it (``with learner.lock:``)
        to make several calls one."""
        return self._lock

    @property
    def _native_optimizer(self) -> Any:
        """The core's optimizer config, rebuilt when the optimizer's ``lr`` was changed."""
        version = getattr(self.optimizer, "_version", None)
        if self._native[0] != version:
            self._native = (version, self.optimizer.native(self._core, self.clip_grad_norm))
        return self._native[1]

    @property
    def warn_after_skipped(self) -> int | None:
        """With ``on_nonfinite="skip"``: after this many consecutive skipped steps (chunks for
        BPTT) a ``RuntimeWarning`` says so, once per streak (default 1000; None: never)."""
        return self._warn_after_skipped

    @warn_after_skipped.setter
    def warn_after_skipped(self, value: int | None) -> None:
        if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
                                  or value < 1):
            raise ValueError(f"warn_after_skipped: expected a positive integer or None, got {value!r}")
        self._warn_after_skipped = None if value is None else int(value)

    def _count_skips(self, steps: int, trailing: int) -> None:
        """Tracks the streak of consecutive skipped steps over ``steps`` more, the last ``trailing``
        of them skipped; warns once when the streak reaches :attr:`warn_after_skipped`."""
        if steps == 0 or self.on_nonfinite != "skip":
            return
        before = self._consecutive_skips if trailing == steps else 0
        self._consecutive_skips = before + trailing
        limit = self._warn_after_skipped
        if limit is not None and before < limit <= self._consecutive_skips:
            warnings.warn(f"{type(self).__name__}: the last {self._consecutive_skips} steps were all skipped "
                          "for non-finite values (on_nonfinite='skip'); the model is not learning. Lower the "
                          "learning rate, clip gradients or check the input; stats counts the skips.",
                          RuntimeWarning, stacklevel=5)

    # -- inputs ----------------------------------------------------------------------------------
    def _sequence(self, X: Any, targets: Any) -> tuple[Any, Any, bool]:
        m = self.model
        X = as_device_array(X, "X", m.dtype, self._be)
        B = self.batch_size
        X, unbatched = add_batch_axis(X, "X", 3, B, f"(T, {B}, {m.n_inputs}) (time, streams, inputs)")
        if X.shape[1:] != (B, m.n_inputs):
            raise ValueError(f"X: expected shape ({X.shape[0]}, {B}, {m.n_inputs}) (time, streams, inputs), "
                             f"got {tuple(X.shape)}")
        if targets is not None:
            if self.loss == "cross_entropy":
                targets = self._classes(targets, "targets", X.shape[0])
            else:
                expected = (X.shape[0], B, m.n_outputs)
                targets = as_device_array(targets, "targets", m.dtype, self._be)
                targets, _ = add_batch_axis(targets, "targets", 3, B, f"{expected} (time, streams, outputs)")
                if targets.shape != expected:
                    raise ValueError(f"targets: expected shape {expected} (time, streams, outputs), "
                                     f"got {tuple(targets.shape)}")
        return X, targets, unbatched

    def _classes(self, targets: Any, name: str, steps: int | None) -> Any:
        """Integer class targets (T, B) — or (T,) unbatched; (B,) or () for one step — checked to be
        in [-1, O) (-1 = no target) and passed on as values of the model's dtype."""
        xp, B, O = self._xp, self.batch_size, self.model.n_outputs
        if self._be.device == "cpu" and hasattr(targets, "__cuda_array_interface__"):
            raise TypeError(f"{name}: got a CUDA device array for a model on the CPU")
        arr = xp.asarray(targets)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name}: loss='cross_entropy' takes integer class indices (-1 = no target), "
                            f"got dtype {arr.dtype}")
        batched_ndim = 2 if steps is not None else 1
        if arr.ndim == batched_ndim - 1 and B == 1:
            arr = arr[..., None]
        expected = (steps, B) if steps is not None else (B,)
        if tuple(arr.shape) != expected:
            raise ValueError(f"{name}: expected class indices of shape {expected} "
                             f"({'time, ' if steps is not None else ''}streams), got {tuple(arr.shape)}")
        bad = (arr < -1) | (arr >= O)
        if bool(bad.any()):
            where = [int(i) for i in xp.argwhere(bad)[0]]
            raise ValueError(f"{name}: class index {int(arr[tuple(where)])} at {tuple(where)} is outside "
                             f"[-1, {O}) (-1 = no target)")
        return xp.ascontiguousarray(arr, dtype=self.model.dtype)

    def _result(self, outputs: Any, loss: Any, unbatched: bool) -> RunResult:
        return RunResult(outputs[:, 0] if unbatched else outputs, loss)

    def _note_nonfinite(self, start: int, first: int, last: int, streams: list, skipped: int,
                        resets: int, stopped: bool, result: RunResult) -> None:
        """Counts the steps a run skipped for non-finite values (``start``: the learner's step
        count before the run; ``first``/``last``: steps of the run); raises when it stopped."""
        if skipped == 0:
            return
        self.stats["skipped_steps"] += skipped
        self.stats["reset_streams"] += resets
        self.stats["last_skipped_step"] = start + last
        if stopped:
            where = (f"streams {streams}" if streams
                     else "no single stream (an overflow in the update or in a sum over streams)")
            raise NonFiniteError(
                f"step {start + first} (step {first} of this call), {where}: the recurrent state or the "
                "gradient became non-finite (a learning rate too large, or extreme input?); that step's "
                "gradient was dropped and those streams were reset. on_nonfinite='skip' skips such "
                "steps and goes on.", start + first, list(streams), result)

    def _buffers(self, steps: int) -> tuple[Any, Any]:
        outputs = self._xp.empty((steps, self.batch_size, self.model.n_outputs), dtype=self.model.dtype)
        return outputs, self._xp.empty((steps,), dtype=self.model.dtype)

    @locked
    def run(self, X: Any, targets: Any = None) -> RunResult:
        library = array_library(X)
        X, targets, unbatched = self._sequence(X, targets)
        result = self._run(X, targets, unbatched)
        return result if library == "native" else RunResult(like_input(result.outputs, library),
                                                            like_input(result.loss, library))

    def _run(self, X: Any, targets: Any, unbatched: bool) -> RunResult:
        """``run`` on arrays already checked and brought to the device (time, streams, ...)."""
        raise NotImplementedError

    @locked
    def step(self, x: Any, target: Any = None) -> Any:
        """Feeds one step ``x`` (B, I) — or (I,) when ``batch_size == 1`` — with its ``target``
        (B, O) or (O,), NaN where there is none; returns the outputs (B, O) or (O,)."""
        m, B, xp = self.model, self.batch_size, self._xp
        library = array_library(x)
        x = as_device_array(x, "x", m.dtype, self._be)
        x, unbatched = add_batch_axis(x, "x", 2, B, f"({B}, {m.n_inputs}) (streams, inputs)")
        if x.shape != (B, m.n_inputs):
            raise ValueError(f"x: expected shape ({B}, {m.n_inputs}) (streams, inputs), got {tuple(x.shape)}")
        if self.on_nonfinite == "raise" and not bool(xp.isfinite(x).all()):
            stream = int(xp.argwhere(~xp.isfinite(x))[0][0])
            raise ValueError(f"x: non-finite value in stream {stream} (values must be finite in the model's dtype)")
        if target is not None and self.loss == "cross_entropy":
            target = self._classes(target, "target", None)[None]
        elif target is not None:
            target = as_device_array(target, "target", m.dtype, self._be)
            target, _ = add_batch_axis(target, "target", 2, B, f"({B}, {m.n_outputs}) (streams, outputs)")
            if target.shape != (B, m.n_outputs):
                raise ValueError(f"target: expected shape ({B}, {m.n_outputs}) (streams, outputs), "
                                 f"got {tuple(target.shape)}")
            if self.on_nonfinite == "raise" and bool(xp.isinf(target).any()):
                stream = int(xp.argwhere(xp.isinf(target))[0][0])
                raise ValueError(f"target: infinite value in stream {stream} (NaN marks a missing target)")
            target = target[None]
        out = self._run(x[None], target, False).outputs[0]
        return like_input(out[0] if unbatched else out, library)

    # -- gradient and updates ---------------------------------------------------------------------
    @locked
    def gradients(self) -> dict[str, Any]:
        """Copies of the accumulated gradient of the total loss (dL/dtheta), keyed like
        ``model.parameters()``. In real-time mode with an optimizer it is the last step's gradient
        (already applied)."""
        return {k: v.copy() for k, v in self.model._split(self._grad).items()}

    @locked
    def zero_grad(self) -> None:
        self._grad.fill(0)
        self._pending = False

    @locked
    def apply(self) -> None:
        """Applies the accumulated gradient with the optimizer (clipped first when
        ``clip_grad_norm`` is set), then clears it. Raises ``RuntimeError`` without an optimizer."""
        if self.optimizer is None:
            raise RuntimeError("apply(): this learner has no optimizer; pass lr= or optimizer=")
        if self._pending and self._gradient_hook is not None:
            self._gradient_hook(self._grad, True, [])  # the other processes' accumulated gradients
        if not self._pending or self._apply_update():
            return
        if self.on_nonfinite == "raise":
            raise NonFiniteError(
                "apply(): the update would make a parameter or the optimizer's state non-finite (a learning "
                "rate too large?); it was not applied and the gradient is kept. on_nonfinite='skip' drops "
                "such updates.", self.steps - 1, [], RunResult(None, None))
        self.stats["skipped_steps"] += 1  # one dropped update, whatever the steps it summed
        self.stats["last_skipped_step"] = self.steps - 1
        self.zero_grad()

    def _apply_update(self) -> bool:
        """Applies and clears the accumulated gradient; returns False, changing nothing, when the
        update would make a parameter or the optimizer's state non-finite."""
        if not self._core.optimizer_step(self._native_optimizer, self._optimizer_step + 1, self.model._flat,
                                         self._grad, self._optimizer_state, self._be.stream()):
            return False
        self._optimizer_step += 1
        self.zero_grad()
        return True

    # -- state -------------------------------------------------------------------------------------
    @property
    def state(self) -> Any:
        """The recurrent state the next step starts from: FullyRecurrent's unit values (B, n_units)
        (after teacher forcing), RecurrentNet's hidden state h (B, hidden_size)."""
        return self._kernels.state

    def _stream_index(self, streams: Any) -> Any:
        if streams is None:
            return slice(None)
        idx = np.asarray(streams)
        if idx.size == 0 and idx.ndim == 1:
            return idx.astype(np.intp)
        if idx.dtype.kind not in "iu" or idx.ndim > 1:
            raise TypeError(f"streams: expected an int or a sequence of ints, got {streams!r}")
        idx = idx.reshape(-1)
        if idx.size and (idx.min() < -self.batch_size or idx.max() >= self.batch_size):
            raise ValueError(f"streams: indices must be in [0, {self.batch_size}), got {idx.tolist()}")
        return idx

    @locked
    def reset(self, streams: Any = None) -> None:
        """Zeroes the recurrent state (and, for RTRL, the sensitivities) of all streams or of the
        given stream indices."""
        idx = self._stream_index(streams)
        for array, axis in self._kernels.stream_views():
            array[(slice(None),) * axis + (idx,)] = 0

    def _arrays(self) -> dict[str, Any]:
        arrays = {**self._kernels.arrays, "grad": self._grad}
        if self._optimizer_state is not None:
            arrays["optimizer_state"] = self._optimizer_state
        return arrays

    @locked
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: parameters, state, sensitivities (RTRL), gradient,
        optimizer state and counters. Arrays are copies on the learner's device."""
        return {
            "parameters": {k: v.copy() for k, v in self.model.parameters().items()},
            **{k: v.copy() for k, v in self._arrays().items()},
            "optimizer_step": self._optimizer_step,
            "steps": self.steps,
            "pending": self._pending,
            "stats": dict(self.stats),
        }

    @locked
    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restores a :meth:`state_dict`. Every entry is checked before anything is copied: unknown or
        missing entries, counters outside [0, 2**63), shapes and non-finite values raise
        ``ValueError`` naming them. Sources may be this learner's own live arrays in any arrangement
        (each is read before any is written)."""
        if not isinstance(d, Mapping):
            raise TypeError(f"state_dict: expected a mapping, got {type(d).__name__}")
        arrays = self._arrays()
        expected = {"parameters", "optimizer_step", "steps", "pending", "stats", *arrays}
        missing, unknown = sorted(expected - set(d)), sorted(map(str, set(d) - expected))
        if missing or unknown:
            raise ValueError(f"state_dict: missing entries {missing}, unknown entries {unknown}; "
                             f"expected {sorted(expected)}")
        counters = {}
        for name in ("optimizer_step", "steps"):
            value = d[name]
            if not _is_count(value):
                raise ValueError(f"{name}: expected an integer in [0, 2**63), got {value!r}")
            counters[name] = int(value)
        pending = d["pending"]
        if not isinstance(pending, (bool, np.bool_)):
            raise ValueError(f"pending: expected a bool, got {pending!r}")
        stats = self._checked_stats(d["stats"])
        staged = {}
        for name, target in arrays.items():
            arr = as_device_array(d[name], name, self.model.dtype, self._be)
            if arr.shape != target.shape:
                raise ValueError(f"{name}: expected shape {tuple(target.shape)}, got {tuple(arr.shape)}")
            if not bool(self._xp.isfinite(arr).all()):
                raise ValueError(f"{name}: values must be finite")
            staged[name] = arr
        destinations = [*arrays.values(), self.model._flat]
        staged = {k: unaliased(v, destinations, self._xp) for k, v in staged.items()}
        snapshot = {k: v.copy() for k, v in self.model.parameters().items()}
        self.model.load_parameters(d["parameters"])
        try:
            for name, arr in staged.items():
                arrays[name][...] = arr
        except Exception:
            self.model.load_parameters(snapshot)
            raise
        self._optimizer_step = counters["optimizer_step"]
        self.steps = counters["steps"]
        self._pending = bool(pending)
        self.stats = stats

    @staticmethod
    def _checked_stats(stats: Any) -> dict[str, Any]:
        if not isinstance(stats, Mapping) or set(stats) != {"skipped_steps", "reset_streams", "last_skipped_step"}:
            raise ValueError(f"stats: expected a dict with skipped_steps, reset_streams and last_skipped_step, "
                             f"got {stats!r}")
        last = stats["last_skipped_step"]
        if not (_is_count(stats["skipped_steps"]) and _is_count(stats["reset_streams"])
                and (last is None or _is_count(last))):
            raise ValueError(f"stats: expected integers in [0, 2**63) (last_skipped_step may be None), "
                             f"got {stats!r}")
        return {"skipped_steps": int(stats["skipped_steps"]), "reset_streams": int(stats["reset_streams"]),
                "last_skipped_step": None if last is None else int(last)}

    def config(self) -> dict[str, Any]:
        return {
            "loss": self.loss, "reduction": self.reduction, "clip_grad_norm": self.clip_grad_norm,
            "batch_size": self.batch_size, "teacher_forcing": self.teacher_forcing,
            "on_nonfinite": self.on_nonfinite,
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
        }

    def __repr__(self) -> str:
        """What the learner is: algorithm, model, optimizer, update mode, streams and steps so far."""
        parts = [repr(self.model), f"optimizer={self.optimizer!r}"]
        parts += [f"{k}={getattr(self, k)!r}" for k in ("update", "truncation") if hasattr(self, k)]
        parts.append(f"loss={self.loss!r}")
        if self.reduction != "mean":
            parts.append(f"reduction={self.reduction!r}")
        if self.teacher_forcing:
            parts.append("teacher_forcing=True")
        if self.clip_grad_norm is not None:
            parts.append(f"clip_grad_norm={self.clip_grad_norm!r}")
        if self.on_nonfinite != "raise":
            parts.append(f"on_nonfinite={self.on_nonfinite!r}")
        parts += [f"batch_size={self.batch_size}", f"steps={self.steps}"]
        return f"{type(self).__name__}({', '.join(parts)})"

    @locked
    def save(self, path: Any) -> None:
        """Writes a checkpoint (a versioned ``.npz`` without pickle) atomically; load it with
        :func:`rtrl.load`.

        Raises
        ------
        FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError
            Naming ``path``, before anything is written, when its directory does not exist, is
            not a directory or is not writable, or when ``path`` is a directory.
        """
        import errno
        import os

        from .checkpoint import save

        name = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(name))
        if os.path.isdir(name):
            raise IsADirectoryError(errno.EISDIR, "cannot write a checkpoint: it is a directory", name)
        if not os.path.exists(directory):
            raise FileNotFoundError(errno.ENOENT, f"cannot write a checkpoint: no directory {directory}", name)
        if not os.path.isdir(directory):
            raise NotADirectoryError(errno.ENOTDIR, f"cannot write a checkpoint: {directory} is not a "
                                     "directory", name)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, f"cannot write a checkpoint: {directory} is not writable", name)
        save(self, path)


def _trailing_skips(report: dict, host_loss: Any) -> int:
    """How many of a run's last steps were skipped in a row (a skipped step's loss is non-finite,
    but for an update that overflowed: at least the last skipped step counts). ``host_loss()``
    gives the run's losses (T,) on the host."""
    done, skipped = report["steps_done"], report["skipped_steps"]
    if skipped == 0 or report["last_step"] != done - 1:
        return 0
    if skipped == done:
        return done
    good = np.flatnonzero(np.isfinite(host_loss()))
    trailing = done - 1 - int(good[-1]) if good.size else done
    return min(skipped, max(1, trailing))


class _OnlineLearner(Learner):
    """What the online learners share (exact RTRL and its approximations): the update mode and the
    native online loop (online_loop.hpp), which runs the algorithm named by ``_algorithm``."""

    update: str

    def memory_bytes(self) -> int:
        """Bytes of state this learner holds (its sensitivities or traces dominate); independent of
        the sequence length. :func:`rtrl.memory.estimate` gives it, and the per-run workspace, before
        a learner is made."""
        return sum(int(a.nbytes) for a in self._arrays().values()) + int(self.model._flat.nbytes)

    def run(self, X: Any, targets: Any = None) -> RunResult:
        """Runs the learner over ``X`` (T, B, I) — or (T, I) when ``batch_size == 1`` — with
        ``targets`` (T, B, O) or (T, O), NaN where there is none. The whole loop, updates included,
        runs natively without the GIL. Returns a :class:`RunResult`."""
        return super().run(X, targets)

    def _run(self, X: Any, targets: Any, unbatched: bool) -> RunResult:
        outputs, loss = self._buffers(X.shape[0])
        each_step = self.update == "realtime" and self.optimizer is not None
        start = self.steps
        report = self._kernels.rtrl(X, targets, outputs, loss, each_step)
        done, skipped = report["steps_done"], report["skipped_steps"]
        self._optimizer_step = report["updates"]
        self.steps += done
        self._pending = not each_step and (self._pending or done > skipped)
        self._count_skips(done, _trailing_skips(report, lambda: self._be.to_host(loss[:done])))
        self._note_nonfinite(start, report["first_step"], report["last_step"], report["first_streams"],
                             skipped, report["reset_streams"], report["stopped"],
                             self._result(outputs[:done], loss[:done], unbatched))
        return self._result(outputs, loss, unbatched)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "update": self.update}


class RTRL(_OnlineLearner):
    """Exact Real-Time Recurrent Learning (Williams & Zipser 1989).

    Carries, for every stream, the sensitivities of the units to every weight and so the exact
    gradient of the loss at every step, with memory independent of the sequence length.

    Parameters
    ----------
    model : rtrl.FullyRecurrent or rtrl.RecurrentNet
    lr : float, optional
        Shorthand for ``optimizer=rtrl.optim.SGD(lr)``.
    optimizer : rtrl.optim.SGD | rtrl.optim.Adam, optional
        Without an optimizer (and ``lr``) the learner only accumulates gradients.
    update : {"realtime", "epoch"}
        "realtime": an update after every step (the sensitivities of a step use the weights before
        that step's update). "epoch": accumulate until :meth:`apply`.
    teacher_forcing : bool
        FullyRecurrent only: visible units with a target take that target as their value for the
        next step and their sensitivities are zeroed.
    loss : {"mse", "cross_entropy"}
        "mse": J = 1/2 sum over outputs of (target - output)^2 per step and stream, NaN targets
        skipped. "cross_entropy" (RecurrentNet): softmax over the outputs, integer class targets
        (T, B), -1 = no target.
    reduction : {"mean", "sum"}
        How the loss is reduced over streams.
    clip_grad_norm : float, optional
        Scale each update's gradient to at most this 2-norm.
    batch_size : int
        Number of independent streams B sharing the weights.
    on_nonfinite : {"raise", "skip"}
        "raise": non-finite input (X, or +-inf targets) is refused with a ``ValueError`` naming the
        step and stream before anything runs; a state or gradient that becomes non-finite during
        the run (divergence, overflow) stops it with :class:`NonFiniteError` after that step, whose
        gradient is dropped. "skip": such steps (non-finite input included) are skipped: the
        weights are not updated for that step, the offending streams' state and sensitivities are
        reset to zero, the other streams go on, and ``stats`` counts it. A skipped step's outputs
        and loss show the non-finite values that caused it. After ``warn_after_skipped``
        consecutive skipped steps a ``RuntimeWarning`` says so, once per streak.

    Attributes
    ----------
    stats : dict
        ``skipped_steps``, ``reset_streams`` (stream resets summed over those steps) and
        ``last_skipped_step`` (the learner's step index, or None).
    steps : int
        Steps processed since the learner was created (or as loaded from a checkpoint).
    warn_after_skipped : int or None
        Consecutive skipped steps before the warning (default 1000; None: never); settable.
    optimizer : rtrl.optim.SGD | rtrl.optim.Adam | None
        Its ``lr`` may be changed between calls; the next update uses it.
    lock : threading.RLock
        Held by every call: a learner shared by threads runs one call at a time, each whole.

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> net = rtrl.FullyRecurrent(3, 1, n_outputs=1, seed=0, device="cpu")
    >>> learner = rtrl.RTRL(net, lr=0.5)
    >>> X = np.zeros((100, 1)); D = np.tile([[0.2], [0.8]], (50, 1))
    >>> result = learner.run(X, D)
    >>> result.outputs.shape, result.loss.shape
    ((100, 1), (100,))
    """

    _kind = "rtrl"
    _algorithm = "exact"

    def __init__(self, model: FullyRecurrent | RecurrentNet, *, lr: float | None = None,
                 optimizer: _optim.Optimizer | None = None, update: str = "realtime",
                 teacher_forcing: bool = False, loss: str = "mse", reduction: str = "mean",
                 clip_grad_norm: float | None = None, batch_size: int = 1,
                 on_nonfinite: str = "raise") -> None:
        self.update = _check_choice("update", update, UPDATES)  # first: the memory check reads it
        super().__init__(model, lr=lr, optimizer=optimizer, loss=loss, reduction=reduction,
                         clip_grad_norm=clip_grad_norm, batch_size=batch_size,
                         teacher_forcing=teacher_forcing, on_nonfinite=on_nonfinite)

    @property
    def sensitivities(self) -> Any:
        """FullyRecurrent: array (B, n_units, n_units, width), ``[s, k, i, j] = d y_k / d w_ij`` for
        stream s (a transposed view of the native layout). RecurrentNet: (B, hidden_size, n_theta),
        dh/dtheta over the recurrent parameters theta (one row of G H rows per gate row:
        [w_ih row | w_hh row | bias column(s)])."""
        a = self._kernels.arrays
        if "sensitivities" in a:
            return a["sensitivities"].transpose(1, 0, 2, 3)
        if "sensitivities_h" not in a:
            raise AttributeError("sensitivities: a stacked RecurrentNet keeps one array per layer, "
                                 "sensitivities_h_l{l} of state_dict(), (H, B N_<=l), columns grouped "
                                 "by layer, then stream")
        return a["sensitivities_h"].transpose(1, 0, 2)


class BPTT(Learner):
    """Backpropagation through time, over whole sequences or chunks of ``truncation`` steps.

    Each :meth:`run` processes ``X`` in chunks (the whole sequence when ``truncation`` is None),
    carrying the state across chunks and across calls; the gradient of each chunk is accumulated
    and, with an optimizer, applied at the end of the chunk. :meth:`step` is a run of one step.

    Parameters are those of :class:`RTRL` (without ``update``), plus ``truncation``. With
    ``on_nonfinite`` the unit of the check is a chunk: a chunk whose gradient or final state is
    non-finite contributes no gradient and resets the streams with non-finite input, outputs or
    state.

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> net = rtrl.FullyRecurrent(3, 1, n_outputs=1, seed=0, device="cpu")
    >>> learner = rtrl.BPTT(net, truncation=10, lr=0.5)
    >>> learner.run(np.zeros((100, 1)), np.full((100, 1), 0.5)).loss.shape
    (100,)
    """

    _kind = "bptt"

    def __init__(self, model: FullyRecurrent | RecurrentNet, *, truncation: int | None = None,
                 lr: float | None = None,
                 optimizer: _optim.Optimizer | None = None, loss: str = "mse",
                 reduction: str = "mean", clip_grad_norm: float | None = None, batch_size: int = 1,
                 teacher_forcing: bool = False, on_nonfinite: str = "raise") -> None:
        super().__init__(model, lr=lr, optimizer=optimizer, loss=loss, reduction=reduction,
                         clip_grad_norm=clip_grad_norm, batch_size=batch_size,
                         teacher_forcing=teacher_forcing, on_nonfinite=on_nonfinite)
        if truncation is not None and (isinstance(truncation, bool) or not isinstance(truncation, (int, np.integer))
                                       or truncation < 1):
            raise ValueError(f"truncation: expected a positive integer or None, got {truncation!r}")
        self.truncation = None if truncation is None else int(truncation)

    def run(self, X: Any, targets: Any = None) -> RunResult:
        """Runs BPTT over ``X`` (T, B, I) or (T, I) with ``targets`` (T, B, O) or (T, O);
        returns a :class:`RunResult`."""
        return super().run(X, targets)

    def _run(self, X: Any, targets: Any, unbatched: bool) -> RunResult:
        steps = X.shape[0]
        if self.on_nonfinite == "raise":
            self._kernels.validate(X, targets)
        outputs, loss = self._buffers(steps)
        chunk = self.truncation or max(steps, 1)
        run_start = self.steps
        for start in range(0, steps, chunk):
            stop = min(start + chunk, steps)
            part = slice(start, stop)
            chunk_targets = None if targets is None else targets[part]
            before, pending = self._grad.copy(), self._pending
            report = self._kernels.bptt(X[part], chunk_targets, outputs[part], loss[part])
            self.steps += stop - start
            reset = report["first_streams"] if report["skipped_steps"] else None
            if self.optimizer is not None and self._gradient_hook is not None:
                if not self._gradient_hook(self._grad, reset is None, [])[0] and reset is None:
                    reset = []  # another process's chunk was not finite: every process drops it
                    self._grad[...] = before
            self._pending = True
            if reset is None and (self.optimizer is None or self._apply_update()):
                self._count_skips(1, 0)
                continue
            self._count_skips(1, 1)
            if reset is None:  # the update overflowed: the chunk is dropped like a non-finite one
                reset = []
                self._grad[...] = before
            self._pending = pending
            self._note_nonfinite(run_start, start, stop - 1, reset, 1, len(reset),
                                 self.on_nonfinite == "raise", self._result(outputs[:stop], loss[:stop], unbatched))
        return self._result(outputs, loss, unbatched)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "truncation": self.truncation}
