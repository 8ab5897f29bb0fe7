"""rtrl on torch.distributed (DESIGN §12): learners across processes, launched with ``torchrun``.

:class:`StreamParallel` — every rank holds the same model and its own streams; each update combines
the ranks' gradients before the optimizer, so the weights stay identical on every rank, and the run
equals one process running all the streams (to rounding: the sum over streams is taken rank by rank).

:class:`ShardedRTRL` — exact RTRL for one FullyRecurrent network with its sensitivities split by weight
rows across the ranks: every rank replays the forward, moves its rows' sensitivities on and computes
its rows' gradient, and the ranks gather the whole gradient before the (replicated) update: bit for bit
one process's run, with 1/ranks of the sensitivities' memory on each.

The combination happens inside the native loop, at the step where the update needs it (a hook of the
one online loop, DESIGN §8, that takes the GIL for the collective only). torch is needed (``pip install
"rtrl[distributed]"``); the process group is torch's, initialised by the caller::

    import torch.distributed as dist, rtrl, rtrl.distributed
    dist.init_process_group("gloo")                      # under torchrun
    net = rtrl.RecurrentNet("lstm", 8, 64, 2, seed=0)    # the same seed on every rank
    learner = rtrl.distributed.StreamParallel(rtrl.RTRL(net, optimizer=rtrl.optim.Adam(1e-3), batch_size=8))
    learner.run(X_mine, Y_mine)                          # this rank's 8 streams: (T, 8, 8), (T, 8, 2)

Each rank saves and loads its own learner (``learner.save(f"ckpt-{rank}.npz")``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from .learners import RTRL, Learner
from .models import FullyRecurrent

__all__ = ["ShardedRTRL", "StreamParallel"]


def _dist() -> Any:
    try:
        import torch.distributed as dist
    except ImportError as exc:  # pragma: no cover - torch is a test dependency
        raise ImportError("rtrl.distributed needs torch: pip install 'rtrl[distributed]'") from exc
    if not dist.is_available():
        raise RuntimeError("rtrl.distributed: this torch build has no torch.distributed")
    return dist


def _fingerprint(learner: Any) -> str:
    """A hash of what must agree across ranks: the model's and learner's configuration (the streams
    and the shard apart) and the parameters' bytes."""
    config = {k: v for k, v in learner.config().items() if k not in ("batch_size", "shard")}
    config.update(kind=type(learner).__name__, model=repr(learner.model))
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(learner.model._flat).tobytes())
    return h.hexdigest()


class StreamParallel:
    """Wraps a learner whose ``batch_size`` streams are this rank's share of all the streams.

    Parameters
    ----------
    learner : rtrl.RTRL or rtrl.BPTT
        On the CPU (gloo); the same model (seed, sizes, parameters) and settings on every rank — checked
        once here, a mismatch is a ValueError on every rank. ``batch_size`` may differ between ranks.
    group : torch.distributed.ProcessGroup, optional
        The default group unless given; it must be initialised.

    The wrapper has the learner's interface (``run``, ``step``, ``gradients``, ``apply``, ``save``, ...).
    Real-time updates combine each step's gradient, epoch mode combines at ``apply()``, BPTT at each
    chunk's update. With ``reduction="mean"`` the combined gradient is the mean over all the ranks'
    streams (each rank's mean weighted by its share of the streams); with ``"sum"`` their sum. A step
    that is not finite on one rank is dropped on all (only that rank's offending streams are reset).
    """

    def __init__(self, learner: Any, *, group: Any = None) -> None:
        if not isinstance(learner, Learner):
            raise TypeError(f"learner: expected an rtrl learner (RTRL, BPTT), got {type(learner).__name__}")
        dist = _check_group(group)
        if learner.model.device != "cpu":
            raise ValueError("learner: StreamParallel runs CPU learners (the gloo backend); this one is on "
                             f"{learner.model.device!r}")
        self.learner, self.group = learner, group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        _same_everywhere(learner, group, self.world_size)
        everyone: list[Any] = [None] * self.world_size
        dist.all_gather_object(everyone, learner.batch_size, group=group)
        streams = list(everyone)
        self.total_streams = sum(streams)
        mean = learner.reduction == "mean"
        self._weights = [b / self.total_streams if mean else 1.0 for b in streams]
        learner._gradient_hook = self._combine

    def _combine(self, grad: np.ndarray, finite: bool) -> bool:
        """Replaces ``grad`` (this rank's, in place) by the weighted sum of every rank's, in rank
        order (the same bits on every rank); returns whether every rank's was finite."""
        import torch

        dist = _dist()
        grad = grad.reshape(-1)  # a view: the learner's gradient array is contiguous
        mine = torch.empty(grad.size + 1, dtype=torch.float64 if grad.dtype == np.float64 else torch.float32)
        mine[:-1] = torch.from_numpy(grad)
        mine[-1] = 1.0 if finite else 0.0
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(parts, mine, group=self.group)
        everywhere = all(bool(p[-1] == 1.0) for p in parts)
        total = np.zeros_like(grad)
        for weight, p in zip(self._weights, parts):
            total += grad.dtype.type(weight) * p[:-1].numpy()
        grad[...] = total
        return everywhere

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["learner"], name)

    def __repr__(self) -> str:
        return (f"StreamParallel({self.learner!r}, rank {self.rank} of {self.world_size}, "
                f"{self.total_streams} streams in all)")


def _check_group(group: Any) -> Any:
    dist = _dist()
    if not dist.is_initialized():
        raise RuntimeError("rtrl.distributed: the torch.distributed process group is not initialised; "
                           "call torch.distributed.init_process_group first (e.g. under torchrun)")
    return dist


def _same_everywhere(learner: Any, group: Any, world_size: int) -> None:
    dist = _dist()
    everyone: list[Any] = [None] * world_size
    dist.all_gather_object(everyone, _fingerprint(learner), group=group)
    differ = [r for r, h in enumerate(everyone) if h != everyone[0]]
    if differ:
        raise ValueError(f"model: ranks {differ} hold another model or settings than rank 0 (their "
                         "configuration or parameters differ); give every rank the same model and seed")


def shard_rows(units: int, world_size: int, rank: int) -> tuple[int, int]:
    """(first row, rows) of the weight rows rank ``rank`` carries: ``units`` split as evenly as
    possible, the first ``units % world_size`` ranks taking one more."""
    base, extra = divmod(units, world_size)
    return rank * base + min(rank, extra), base + (rank < extra)


class ShardedRTRL(RTRL):
    """Exact RTRL (``rtrl.RTRL``'s keyword arguments and interface) for a FullyRecurrent network
    with its sensitivities split by weight rows across the ranks of ``group`` (the default group
    unless given; initialised by the caller).

    Every rank passes the same model (checked once: a ValueError on every rank otherwise) and the
    same inputs. Rank r carries the sensitivities of weight rows ``shard_rows(n_units, ranks, r)``
    — (n_units, B, rows, width), ``learner.sensitivities`` — and computes their part of each step's
    gradient; the ranks gather the whole gradient before the update (real time: every step, inside
    the native loop; epoch mode: at ``apply()``, so ``gradients()`` before it holds this rank's rows
    only). Weights, outputs and losses are bit for bit those of one process. Each rank saves its
    own shard (``state_dict()``, ``load_state_dict()`` on the same world size).
    """

    def __init__(self, model: Any, *, group: Any = None, **kwargs: Any) -> None:
        dist = _check_group(group)
        if not isinstance(model, FullyRecurrent):
            raise ValueError("model: ShardedRTRL shards the fully recurrent network's sensitivities "
                             f"(rtrl.FullyRecurrent); got {type(model).__name__}")
        if model.device != "cpu":
            raise ValueError(f"model: ShardedRTRL runs on the CPU (gloo); this one is on {model.device!r}")
        self.group = group
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        if self.world_size > model.n_units:
            raise ValueError(f"group: {self.world_size} ranks cannot share {model.n_units} weight rows; "
                             "use at most n_units ranks")
        self._shard = shard_rows(model.n_units, self.world_size, self.rank)
        super().__init__(model, **kwargs)
        _same_everywhere(self, group, self.world_size)
        self._gradient_hook = self._gather_gradient

    def _gather_gradient(self, grad: np.ndarray, finite: bool) -> bool:
        """Fills ``grad`` [n L] (this rank's rows, zeros elsewhere) with every rank's rows; returns
        whether every rank's part was finite. Each rank sends its rows only (padded to the largest
        shard, as all_gather wants equal parts)."""
        import torch

        dist = _dist()
        grad = grad.reshape(-1)  # a view: the learner's gradient array is contiguous
        n, L = self.model.n_units, self.model.width
        widest = shard_rows(n, self.world_size, 0)[1] * L
        row0, rows = self._shard
        mine = torch.zeros(widest + 1, dtype=torch.float64 if grad.dtype == np.float64 else torch.float32)
        mine[:rows * L] = torch.from_numpy(grad[row0 * L:(row0 + rows) * L])
        mine[-1] = 1.0 if finite else 0.0
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(parts, mine, group=self.group)
        for r, part in enumerate(parts):
            first, count = shard_rows(n, self.world_size, r)
            grad[first * L:(first + count) * L] = part[:count * L].numpy()
        return all(bool(p[-1] == 1.0) for p in parts)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "shard": list(self._shard), "world_size": self.world_size}


