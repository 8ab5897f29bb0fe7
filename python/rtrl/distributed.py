"""rtrl on torch.distributed (DESIGN §12): learners across processes, launched with ``torchrun``.

:class:`StreamParallel` — every rank holds the same model and its own streams; each update combines
the ranks' gradients before the optimizer, so the weights stay identical on every rank, and the run
equals one process running all the streams (to rounding: the sum over streams is taken rank by rank).

:class:`ShardedRTRL` — exact RTRL for one network (FullyRecurrent or RecurrentNet) with its
sensitivities split by weight rows across the ranks: every rank replays the forward, moves its rows'
sensitivities on and computes its rows' gradient, and the ranks gather the whole gradient before the
(replicated) update: bit for bit one process's run, with 1/ranks of the sensitivities' memory on each.

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
from .models import FullyRecurrent, RecurrentNet

__all__ = ["RTRLShard", "ShardedRTRL", "StreamParallel", "gather_shards", "shard_rows", "weight_rows"]


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
    learner : rtrl.RTRL, rtrl.BPTT or an approximate learner (SnAp, EProp, RFLO, UORO, KFRTRL)
        On the CPU (gloo); the same model (seed, sizes, parameters) and settings on every rank — checked
        once here, a mismatch is a ValueError on every rank. ``batch_size`` may differ between ranks.
    group : torch.distributed.ProcessGroup, optional
        The default group unless given; it must be initialised.

    The wrapper has the learner's interface (``run``, ``step``, ``gradients``, ``apply``, ``save``, ...).
    Real-time updates combine each step's gradient, epoch mode combines at ``apply()``, BPTT at each
    chunk's update. With ``reduction="mean"`` the combined gradient is the mean over all the ranks'
    streams (each rank's mean weighted by its share of the streams); with ``"sum"`` their sum. A step
    that is not finite on one rank is dropped on all (only that rank's offending streams are reset),
    in epoch mode too: there the ranks agree on each step's verdict (one value each) as they go, so
    that every rank must run the same number of steps in each call, as in real time. UORO's and
    KF-RTRL's random signs are those of the streams' global indices (this rank's first is the sum
    of the lower ranks' ``batch_size``): the run is one process's with all the streams.
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
        # the stochastic learners' signs keyed by the global stream index, as in one process
        learner._first_stream = sum(streams[:self.rank])
        mean = learner.reduction == "mean"
        self._weights = [b / self.total_streams if mean else 1.0 for b in streams]
        # in epoch mode too, each step: a step not finite on one rank is dropped on all, as in one process
        n, dtype = learner.model._flat.size, learner.model.dtype
        self._exchanges = {True: _Exchange(group, self.world_size, n, 0, dtype),  # with the gradient
                           False: _Exchange(group, self.world_size, 0, 0, dtype)}  # the verdict only
        learner._gradient_hook = _LoopHook(self._combine, each_step=True)

    def _combine(self, grad: Any, finite: bool, streams: list) -> tuple[bool, list]:
        """Replaces ``grad`` (this rank's, in place) by the weighted sum of every rank's, in rank
        order (the same bits on every rank; None at a step of epoch mode: the ranks only agree on
        the verdict); returns whether every rank's step was finite, and this rank's own streams to
        reset (each rank runs its own streams)."""
        exchange = self._exchanges[grad is not None]
        if grad is not None:
            grad = grad.reshape(-1)  # a view: the learner's gradient array is contiguous
            exchange.values[...] = grad
        received, everywhere, _ = exchange(finite, [])
        if grad is not None:
            total = np.zeros_like(grad)
            for weight, values in zip(self._weights, received):
                total += grad.dtype.type(weight) * values
            grad[...] = total
        return everywhere, streams

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["learner"], name)

    def __repr__(self) -> str:
        return (f"StreamParallel({self.learner!r}, rank {self.rank} of {self.world_size}, "
                f"{self.total_streams} streams in all)")


class _LoopHook:
    """What a learner's native loop calls after each step's non-finite check (the core's
    GradientCombiner): ``hook(grad, finite, streams) -> (everywhere, streams)``; ``each_step``: also
    at the steps of epoch mode, with ``grad=None``."""

    def __init__(self, combine: Any, each_step: bool) -> None:
        self.combine, self.each_step = combine, each_step

    def __call__(self, grad: Any, finite: bool, streams: list) -> tuple[bool, list]:
        return self.combine(grad, finite, streams)


class _Exchange:
    """One all_gather of a fixed-size message per call, through buffers allocated once: each rank
    sends ``[values (width) | verdict | stream flags (streams)]``; ``values`` is this rank's part to
    fill before the call."""

    def __init__(self, group: Any, world_size: int, width: int, streams: int, dtype: Any) -> None:
        import torch

        kind = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
        self.group, self.width = group, width
        self._mine = torch.zeros(width + 1 + streams, dtype=kind)
        self._received = torch.zeros((world_size, width + 1 + streams), dtype=kind)
        self._parts = list(self._received.unbind(0))  # contiguous rows: all_gather's outputs
        self._mine_np, self._received_np = self._mine.numpy(), self._received.numpy()
        self.values = self._mine_np[:width]

    def __call__(self, finite: bool, streams: list) -> tuple[np.ndarray, bool, list]:
        """Every rank's values [ranks, width], whether every rank's verdict was finite, and the
        streams any rank flagged (increasing)."""
        w = self.width
        self._mine_np[w] = 1.0 if finite else 0.0
        self._mine_np[w + 1:] = 0.0
        self._mine_np[[w + 1 + s for s in streams]] = 1.0
        _dist().all_gather(self._parts, self._mine, group=self.group)
        flags = self._received_np[:, w + 1:]
        union = np.flatnonzero(flags.max(axis=0)).tolist() if flags.size else []
        return self._received_np[:, :w], bool((self._received_np[:, w] == 1.0).all()), union


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


def weight_rows(model: Any) -> int:
    """The weight rows column-sharded RTRL splits: the fully recurrent network's ``n_units`` (the
    rows of W), or a RecurrentNet's ``gates * hidden_size`` (the rows of every layer's w_ih, w_hh and
    biases; a rank carries the same rows of each layer)."""
    if isinstance(model, FullyRecurrent):
        return model.n_units
    if isinstance(model, RecurrentNet):
        return model.gates * model.hidden_size
    raise ValueError("model: column-sharded RTRL shards the sensitivities of rtrl.FullyRecurrent or "
                     f"rtrl.RecurrentNet; got {type(model).__name__}")


class RTRLShard(RTRL):
    """Exact RTRL carrying the sensitivities of the weight rows ``shard = (first, rows)`` only (of
    :func:`weight_rows`), of a column-sharded learner of ``world_size`` ranks — what one rank's
    checkpoint holds. Its gradient holds those rows' part (zero in the other rows; the readout's part
    in full). It runs no collective: :class:`ShardedRTRL` joins it to a process group, and
    ``rtrl.load([paths])`` gathers every rank's into one :class:`rtrl.RTRL`."""

    def __init__(self, model: Any, *, shard: Any, world_size: int, **kwargs: Any) -> None:
        total = weight_rows(model)
        if isinstance(world_size, bool) or not isinstance(world_size, (int, np.integer)) or world_size < 1:
            raise ValueError(f"world_size: expected a positive integer, got {world_size!r}")
        try:
            first, rows = (int(v) for v in shard)
        except (TypeError, ValueError):
            raise ValueError(f"shard: expected (first row, rows), got {shard!r}") from None
        if rows < 1 or first < 0 or first + rows > total:
            raise ValueError(f"shard: expected weight rows [first, first + rows) within [0, {total}), got "
                             f"first={first}, rows={rows}")
        self._shard, self.world_size = (first, rows), int(world_size)
        super().__init__(model, **kwargs)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "shard": list(self._shard), "world_size": self.world_size}

    def _shard_parameters(self, rank: int) -> list:
        """(start, count) ranges of the flat parameters whose gradient rank ``rank`` computes."""
        return self._kernels.config.shard_parameters(*shard_rows(weight_rows(self.model), self.world_size, rank))


class ShardedRTRL(RTRLShard):
    """Exact RTRL (``rtrl.RTRL``'s keyword arguments and interface) for a FullyRecurrent network or
    a RecurrentNet with its sensitivities split by weight rows across the ranks of ``group`` (the
    default group unless given; initialised by the caller).

    Every rank passes the same model (checked once: a ValueError on every rank otherwise) and the
    same inputs. Rank r carries the sensitivities of weight rows ``shard_rows(weight_rows(model),
    ranks, r)`` and computes their part of each step's gradient: for FullyRecurrent the rows of W —
    sensitivities (n_units, B, rows, width); for a RecurrentNet the same gate rows of every layer
    (rows of w_ih, w_hh and the biases) — each layer's sensitivities then cover ``rows`` of the
    ``gates * hidden_size`` rows of every layer below and of its own (``learner.state_dict()``). The
    ranks gather the whole gradient before the update (real time: every step, inside the native
    loop; epoch mode: at ``apply()``, so ``gradients()`` before it holds this rank's rows only, and
    the readout's gradient in full). Weights, outputs and losses are bit for bit those of one process.

    Each rank saves its own shard (``learner.save(f"ckpt-{rank}.npz")``); :meth:`load` resumes it on
    the same world size, and ``rtrl.load([path_0, ..., path_last])`` gathers all of them into one
    process's :class:`rtrl.RTRL`.
    """

    def __init__(self, model: Any, *, group: Any = None, **kwargs: Any) -> None:
        dist = _check_group(group)
        rows = weight_rows(model)
        if model.device != "cpu":
            raise ValueError(f"model: ShardedRTRL runs on the CPU (gloo); this one is on {model.device!r}")
        world, rank = dist.get_world_size(group), dist.get_rank(group)
        if world > rows:
            raise ValueError(f"group: {world} ranks cannot share {rows} weight rows; use at most {rows} ranks")
        super().__init__(model, shard=shard_rows(rows, world, rank), world_size=world, **kwargs)
        self._join(group)

    def _join(self, group: Any) -> None:
        """Takes part in ``group``: this rank's shard must be the one the group gives it."""
        dist = _check_group(group)
        self.group, self.rank = group, dist.get_rank(group)
        rows = weight_rows(self.model)
        if dist.get_world_size(group) != self.world_size or \
                self._shard != shard_rows(rows, self.world_size, self.rank):
            raise ValueError(f"group: this shard carries weight rows {self._shard} of a {self.world_size}-rank "
                             f"learner; rank {self.rank} of {dist.get_world_size(group)} carries "
                             f"{shard_rows(rows, dist.get_world_size(group), self.rank)}")
        _same_everywhere(self, group, self.world_size)
        self._ranges = [self._shard_parameters(r) for r in range(self.world_size)]
        widest = max(sum(count for _, count in ranges) for ranges in self._ranges)
        B, dtype = self.batch_size, self.model.dtype
        self._exchanges = {True: _Exchange(group, self.world_size, widest, B, dtype),  # with the rows
                           False: _Exchange(group, self.world_size, 0, B, dtype)}  # the verdicts only
        # every step, in epoch mode too: every rank must drop the same steps and reset the same streams
        self._gradient_hook = _LoopHook(self._gather_gradient, each_step=True)

    @classmethod
    def load(cls, path: Any, *, group: Any = None, device: Any = None) -> "ShardedRTRL":
        """This rank's shard from ``path`` (written by ``save`` on the same world size), joined to
        ``group``; every rank calls it with its own file."""
        import os

        from .checkpoint import _load_one

        learner = _load_one(os.fspath(path), device, None, shard=True)
        learner.__class__ = cls  # the shard read from the file is this rank's learner: no second copy
        learner._join(group)
        return learner

    def _gather_gradient(self, grad: Any, finite: bool, streams: list) -> tuple[bool, list]:
        """Fills ``grad`` (this rank's rows, zeros in the others; None at a step of epoch mode) with
        every rank's rows; returns whether every rank's part was finite, and the streams any rank
        reset (the ones the one-process run resets: every rank resets them). Each rank sends its rows'
        values (padded to the largest shard's, as all_gather wants equal parts), its verdict and
        its streams' flags."""
        exchange = self._exchanges[grad is not None]
        if grad is not None:
            grad, at = grad.reshape(-1), 0  # a view: the learner's gradient array is contiguous
            for start, count in self._ranges[self.rank]:
                exchange.values[at:at + count] = grad[start:start + count]
                at += count
        received, everywhere, union = exchange(finite, streams)
        if grad is not None:
            for ranges, values in zip(self._ranges, received):
                at = 0
                for start, count in ranges:
                    grad[start:start + count] = values[at:at + count]
                    at += count
        return everywhere, union


def gather_shards(shards: list, device: Any = None) -> RTRL:
    """The one-process :class:`rtrl.RTRL` whose sensitivities ``shards`` (every rank's
    :class:`RTRLShard`, any order) carry between them; everything else is the same on every rank.
    Raises ValueError when they are not the complete set of one learner's shards."""
    if not shards or not all(isinstance(s, RTRLShard) for s in shards):
        raise ValueError("path: expected the files of every rank of one column-sharded learner")
    shards = sorted(shards, key=lambda s: s._shard[0])
    world, total = shards[0].world_size, weight_rows(shards[0].model)
    if len(shards) != world or any(s.world_size != world for s in shards):
        raise ValueError(f"path: a {world}-rank learner has {world} files; got {len(shards)}")
    if [s._shard for s in shards] != [shard_rows(total, world, r) for r in range(world)]:
        raise ValueError(f"path: the files carry weight rows {[s._shard for s in shards]}, not the {world} "
                         f"shards of {total} rows")
    if len({_fingerprint(s) for s in shards}) != 1:
        raise ValueError("path: the shards hold different models or settings (not one learner's)")
    first = shards[0]
    config = {k: v for k, v in first.config().items() if k not in ("shard", "world_size")}
    config["optimizer"] = first.optimizer
    learner = RTRL(first.model, **config)
    state = first.state_dict()
    states = [s.state_dict() for s in shards]
    for name in _sensitivity_names(first):
        state[name] = _join_columns(first, name, [st[name] for st in states], [s._shard[1] for s in shards])
    grad = state["grad"].reshape(-1)
    for rank, s in enumerate(shards):  # in epoch mode each rank has summed its own rows
        mine = s._grad.reshape(-1)
        for start, count in s._shard_parameters(rank):
            grad[start:start + count] = mine[start:start + count]
    learner.load_state_dict(state)
    return learner


def _sensitivity_names(learner: RTRLShard) -> list[str]:
    if isinstance(learner.model, FullyRecurrent):
        return ["sensitivities"]
    return [name for names in learner._kernels.sensitivity_names.values() for name in names]


def _join_columns(first: RTRLShard, name: str, parts: list, rows: list) -> np.ndarray:
    """One learner's sensitivity array from its shards' (in rank order), which carry ``rows`` weight
    rows each: FullyRecurrent (n, B, rows, L) joined on the rows; a RecurrentNet layer's (H, B, C_0)
    or (H, B C_<=l) joined, for each layer m it covers and each stream, on the rows of layer m's
    columns [rows, W_m] (cell_rtrl.hpp)."""
    model, B = first.model, first.batch_size
    if isinstance(model, FullyRecurrent):
        return np.concatenate(parts, axis=2)
    H, GH = model.hidden_size, model.gates * model.hidden_size
    layer = 0 if model.num_layers == 1 else int(name.rsplit("_l", 1)[1])
    widths = [n // GH for n in first._kernels.config.layer_theta[:layer + 1]]  # W_m
    blocks, at = [], [0] * len(parts)
    for W in widths:  # layer m's columns of every shard: [H, B, rows_r, W_m]
        pieces = []
        for r, (part, n_g) in enumerate(zip(parts, rows)):
            flat = part.reshape(H, -1)
            pieces.append(flat[:, at[r]:at[r] + B * n_g * W].reshape(H, B, n_g, W))
            at[r] += B * n_g * W
        blocks.append(np.concatenate(pieces, axis=2).reshape(H, B * GH * W))
    joined = np.concatenate(blocks, axis=1)
    return joined.reshape(H, B, -1) if model.num_layers == 1 else joined
