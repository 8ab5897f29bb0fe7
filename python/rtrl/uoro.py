"""UORO (Tallec & Ollivier 2018; DESIGN §9): an unbiased rank-one estimate of RTRL's sensitivities,
moved on by the native online loop (uoro.hpp) with random signs from a counter-based generator keyed
by the learner's seed and indexed by its step count, so that a run is the same on any thread count
and after a checkpoint."""

from __future__ import annotations

from typing import Any

from . import optim as _optim
from .learners import UPDATES, _check_choice, _OnlineLearner
from .models import FullyRecurrent, RecurrentNet
from .traces import _checked_seed


class _StochasticLearner(_OnlineLearner):
    """What UORO and KF-RTRL share: :class:`rtrl.RTRL`'s arguments plus ``seed``, which keys their
    random signs (an int; None draws one, kept in the checkpoint)."""

    def __init__(self, model: FullyRecurrent | RecurrentNet, *, seed: int | None = None,
                 lr: float | None = None, optimizer: _optim.Optimizer | None = None,
                 update: str = "realtime", teacher_forcing: bool = False, loss: str = "mse",
                 reduction: str = "mean", clip_grad_norm: float | None = None, batch_size: int = 1,
                 on_nonfinite: str = "raise") -> None:
        self._check_model(model)
        self.update = _check_choice("update", update, UPDATES)
        self.seed = _checked_seed(seed)
        self._immediate_scale = 1.0  # below 1: the deliberately biased control of the unbiasedness tests
        super().__init__(model, lr=lr, optimizer=optimizer, loss=loss, reduction=reduction,
                         clip_grad_norm=clip_grad_norm, batch_size=batch_size,
                         teacher_forcing=teacher_forcing, on_nonfinite=on_nonfinite)

    @staticmethod
    def _check_model(model: FullyRecurrent | RecurrentNet) -> None:
        """Raises ValueError for a model the algorithm does not run on (every model: nothing)."""

    def config(self) -> dict[str, Any]:
        return {**super().config(), "seed": self.seed}


class UORO(_StochasticLearner):
    """Unbiased Online Recurrent Optimisation (Tallec & Ollivier 2018): per stream a state tangent
    s~ and a parameter tangent theta~ whose product s~ theta~^T is an unbiased estimate of RTRL's
    sensitivities, at O(parameters) memory and cost per step; the gradient (delta . s~) theta~ is
    unbiased for each step, with a variance that the optimizer averages out.

    Takes :class:`rtrl.RTRL`'s arguments and has its methods, plus ``seed`` (an int; None draws one,
    kept in the checkpoint). Runs on FullyRecurrent (teacher forcing included) and on RecurrentNet of
    any cell and depth (one pair of tangents per layer, each layer's error by back-propagation
    through the current step). ``state_dict()`` holds ``theta_tangent`` and ``tangent``; the
    generator's counter is the learner's ``steps``.

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> net = rtrl.RecurrentNet("gru", 2, 16, 1, seed=0, device="cpu")
    >>> learner = rtrl.UORO(net, seed=5, optimizer=rtrl.optim.Adam(1e-3))
    >>> learner.run(np.zeros((10, 2)), np.zeros((10, 1))).loss.shape
    (10,)
    """

    _kind = "uoro"
    _algorithm = "uoro"


class KFRTRL(_StochasticLearner):
    """Kronecker-factored RTRL (Mujika et al. 2018): per stream the sensitivities are kept as one
    Kronecker product A (x) u^T (A: the state x the parameter rows, u: the values the rows' weights
    multiply), moved on unbiasedly with two random signs per step; D_t A is one product with the
    recurrent weights over one column per parameter row. Memory per stream O(H x rows + width),
    cost per step O(H^2 rows) — between UORO and exact RTRL, with far less variance than UORO.

    Takes :class:`rtrl.RTRL`'s arguments and has its methods, plus ``seed``. Runs on FullyRecurrent
    and on RecurrentNet("rnn" | "lstm", ...) of any depth; the GRU's and the eLSTM's immediate terms
    are no Kronecker product (refused with a ValueError). ``state_dict()`` holds ``kron_A_h``
    (``kron_A_c``) (H, B G H) and ``kron_u`` (B, width) per layer, ``kron_A`` (n, B, n) on
    FullyRecurrent.

    Examples
    --------
    >>> import numpy as np, rtrl
    >>> net = rtrl.RecurrentNet("lstm", 2, 16, 1, seed=0, device="cpu")
    >>> learner = rtrl.KFRTRL(net, seed=5, optimizer=rtrl.optim.Adam(1e-3))
    >>> learner.run(np.zeros((10, 2)), np.zeros((10, 1))).loss.shape
    (10,)
    """

    _kind = "kf"
    _algorithm = "kf"

    @staticmethod
    def _check_model(model: FullyRecurrent | RecurrentNet) -> None:
        if isinstance(model, RecurrentNet) and model.cell not in ("rnn", "lstm"):
            raise ValueError(f"model: KF-RTRL runs on FullyRecurrent and on RecurrentNet('rnn' | 'lstm', ...), got "
                             f"RecurrentNet({model.cell!r}, ...) (its immediate term is no Kronecker product); "
                             "rtrl.UORO or rtrl.SnAp run on every cell")
