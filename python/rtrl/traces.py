"""Online learners with unit-diagonal traces (DESIGN §9): SnAp-1, e-prop and RFLO. Each keeps, per
stream, the sensitivities of every unit's state to the parameters of the rows that unit owns, moved
on by the native online loop (diagonal_traces.hpp); on stacked networks one trace per layer, each
layer's error back-propagated from the readout through the current step."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import optim as _optim
from .learners import _OnlineLearner, _check_choice, UPDATES
from .models import FullyRecurrent, RecurrentNet

FEEDBACKS = ("symmetric", "random")


def _checked_seed(seed: Any) -> int:
    """The learner's seed: an int >= 0, or a fresh one drawn from the OS for None."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (1 << 63))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed: expected a non-negative int, got {seed}")
    return int(seed)


class _TraceLearner(_OnlineLearner):
    """RTRL's interface (``step``, ``run``, ``gradients``, ``apply``, checkpoints, ...) over a learner
    whose state is its traces: ``traces`` (B, n_units, width) on FullyRecurrent, ``traces_h`` (and
    ``traces_c`` for the LSTM) (B, N_l) per layer on RecurrentNet in ``state_dict()``."""

    def __init__(self, model: FullyRecurrent | RecurrentNet, *, lr: float | None, optimizer: Any,
                 update: str, teacher_forcing: bool, loss: str, reduction: str,
                 clip_grad_norm: float | None, batch_size: int, on_nonfinite: str) -> None:
        self.update = _check_choice("update", update, UPDATES)
        super().__init__(model, lr=lr, optimizer=optimizer, loss=loss, reduction=reduction,
                         clip_grad_norm=clip_grad_norm, batch_size=batch_size,
                         teacher_forcing=teacher_forcing, on_nonfinite=on_nonfinite)

    @property
    def traces(self) -> dict[str, Any]:
        """The live trace arrays by name (see the class docstring)."""
        return {k: v for k, v in self._kernels.arrays.items() if k.startswith("traces")}


class SnAp(_TraceLearner):
    """SnAp-1 (Menick et al. 2021): RTRL with each unit's sensitivities kept only for the parameters
    of the rows it owns, moved on by the unit's own block of the state Jacobian (its own recurrent
    weight included). Exact when the recurrence is element-wise (a diagonal ``weight_hh``); memory
    and cost per step O(parameters) per stream instead of exact RTRL's O(units x parameters).

    Takes :class:`rtrl.RTRL`'s arguments and has its methods; runs on FullyRecurrent (teacher
    forcing included: a forced unit's traces are zeroed) and on RecurrentNet of any cell and depth.

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> net = rtrl.RecurrentNet("lstm", 2, 16, 1, seed=0, device="cpu")
    >>> learner = rtrl.SnAp(net, optimizer=rtrl.optim.Adam(1e-2))
    >>> learner.run(np.zeros((10, 2)), np.zeros((10, 1))).loss.shape
    (10,)
    """

    _kind = "snap"
    _algorithm = "snap1"

    def __init__(self, model: FullyRecurrent | RecurrentNet, *, lr: float | None = None,
                 optimizer: _optim.Optimizer | None = None, update: str = "realtime",
                 teacher_forcing: bool = False, loss: str = "mse", reduction: str = "mean",
                 clip_grad_norm: float | None = None, batch_size: int = 1,
                 on_nonfinite: str = "raise") -> None:
        super().__init__(model, lr=lr, optimizer=optimizer, update=update, teacher_forcing=teacher_forcing,
                         loss=loss, reduction=reduction, clip_grad_norm=clip_grad_norm,
                         batch_size=batch_size, on_nonfinite=on_nonfinite)


class EProp(_TraceLearner):
    """e-prop (Bellec et al. 2020): each unit's eligibility traces follow only the state's internal
    memory (the LSTM's forget gate, the GRU's z, the leaky rnn's 1 - alpha; none for Elman's cell
    and the fully recurrent network), not the path through the recurrent weights; the learning
    signal is the step's error carried to the units by ``weight_out`` (``feedback="symmetric"``) or
    by a fixed random matrix in its place (``"random"``, U(-1/sqrt(H), 1/sqrt(H)) drawn once from
    ``seed``; RecurrentNet only: the fully recurrent network's errors are its units' own).

    Takes :class:`rtrl.RTRL`'s arguments and has its methods, plus ``feedback`` and ``seed``.

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> net = rtrl.RecurrentNet("lstm", 2, 16, 1, seed=0, device="cpu")
    >>> learner = rtrl.EProp(net, feedback="random", seed=3, lr=1e-2)
    >>> learner.state_dict()["feedback"].shape
    (1, 16)
    """

    _kind = "eprop"
    _algorithm = "eprop"

    def __init__(self, model: FullyRecurrent | RecurrentNet, *, feedback: str = "symmetric",
                 seed: int | None = None, lr: float | None = None,
                 optimizer: _optim.Optimizer | None = None, update: str = "realtime",
                 teacher_forcing: bool = False, loss: str = "mse", reduction: str = "mean",
                 clip_grad_norm: float | None = None, batch_size: int = 1,
                 on_nonfinite: str = "raise") -> None:
        self._check_model(model)
        if not isinstance(feedback, str):
            raise TypeError(f"feedback: expected one of {FEEDBACKS}, got {type(feedback).__name__}")
        self.feedback = _check_choice("feedback", feedback, FEEDBACKS)
        self.seed = _checked_seed(seed)
        if self.feedback == "random" and isinstance(model, FullyRecurrent):
            raise ValueError("feedback='random': FullyRecurrent has no readout whose weights random feedback "
                             "would replace (its errors are its units' own); use feedback='symmetric', or "
                             "rtrl.RecurrentNet")
        super().__init__(model, lr=lr, optimizer=optimizer, update=update, teacher_forcing=teacher_forcing,
                         loss=loss, reduction=reduction, clip_grad_norm=clip_grad_norm,
                         batch_size=batch_size, on_nonfinite=on_nonfinite)

    def _check_model(self, model: Any) -> None:
        """Refuses a model this learner does not run on (a ValueError naming what it supports)."""

    def _feedback_matrix(self) -> Any:
        if self.feedback != "random":
            return None
        m = self.model
        bound = 1.0 / np.sqrt(m.hidden_size)
        rng = np.random.Generator(np.random.Philox(self.seed))
        return rng.uniform(-bound, bound, (m.output_size, m.hidden_size))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "feedback": self.feedback, "seed": self.seed}


class RFLO(EProp):
    """Random-feedback local online learning (Murray 2019): e-prop on the (leaky) rnn,
    B_t = (1 - alpha) B_{t-1} + alpha f'(u_t) v_t^T per unit and weight row, the gradient the
    feedback-carried error times B_t; random feedback by default. ``RecurrentNet("rnn", ...)`` only
    (any ``alpha`` and depth).

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> net = rtrl.RecurrentNet("rnn", 2, 16, 1, alpha=0.2, seed=0, device="cpu")
    >>> learner = rtrl.RFLO(net, seed=1, lr=1e-2)
    >>> learner.feedback
    'random'
    """

    _kind = "rflo"

    def __init__(self, model: RecurrentNet, *, feedback: str = "random", seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(model, feedback=feedback, seed=seed, **kwargs)

    def _check_model(self, model: Any) -> None:
        if isinstance(model, FullyRecurrent) or (isinstance(model, RecurrentNet) and model.cell != "rnn"):
            got = "FullyRecurrent" if isinstance(model, FullyRecurrent) else f"RecurrentNet({model.cell!r}, ...)"
            raise ValueError(f"model: RFLO runs on RecurrentNet('rnn', ...) only (the leaky rnn, any alpha and "
                             f"depth), got {got}; rtrl.EProp runs e-prop on the other models")
