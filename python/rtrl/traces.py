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
