"""One rank of a tests/test_distributed.py run: ``python distributed_worker.py SPEC_JSON RANK``.

Builds the learner the spec describes (``build``) — rtrl.distributed.StreamParallel over this rank's
share of the streams, or rtrl.distributed.ShardedRTRL over all of them — runs it over gloo on the
loopback address and writes its outputs,
parameters and stats (or the error it raised) to ``{out}/rank{RANK}.npz``. ``build`` and ``data``
also give the one-process reference the test compares with.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import traceback

import numpy as np

import rtrl
import rtrl.distributed


def data(spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """X (T, B_all, I) and targets for all streams, from a fixed seed."""
    rng = np.random.default_rng(11)
    B, T, I = spec["streams"], spec["steps"], spec["inputs"]
    X = rng.standard_normal((T, B, I))
    Y = rng.uniform(0.1, 0.9, (T, B, spec["outputs"]))
    Y[::3, 0, 0] = np.nan
    if spec.get("inf_at"):
        t, s = spec["inf_at"]
        X[t, s, 0] = np.inf
    return X, Y


def build(spec: dict, batch_size: int, seed_offset: int = 0, sharded: bool = False):
    if spec["model"] == "fully_recurrent":
        net = rtrl.FullyRecurrent(5, spec["inputs"], n_outputs=spec["outputs"], seed=3 + seed_offset,
                                  dtype="float64", device="cpu")
    else:
        net = rtrl.RecurrentNet(spec["model"], spec["inputs"], 4, spec["outputs"], seed=3 + seed_offset,
                                num_layers=spec.get("layers", 1), dtype="float64", device="cpu")
    optimizer = rtrl.optim.Adam(0.05) if spec["optimizer"] == "adam" else rtrl.optim.SGD(0.2, momentum=0.5)
    common = dict(optimizer=optimizer, batch_size=batch_size, on_nonfinite=spec.get("on_nonfinite", "raise"),
                  clip_grad_norm=spec.get("clip"))
    if spec["learner"] == "bptt":
        return rtrl.BPTT(net, truncation=4, **common)
    approximate = {"snap": rtrl.SnAp, "eprop": rtrl.EProp, "uoro": rtrl.UORO, "kf": rtrl.KFRTRL}
    if spec["learner"] in approximate:
        seeded = {"seed": 5} if spec["learner"] != "snap" else {}
        return approximate[spec["learner"]](net, update=spec.get("update", "realtime"), **seeded, **common)
    kind = rtrl.distributed.ShardedRTRL if sharded else rtrl.RTRL
    return kind(net, update=spec.get("update", "realtime"), teacher_forcing=spec["model"] == "fully_recurrent",
                **common)


def poison(learner, spec) -> None:
    """Sets one sensitivity of the fully recurrent network to NaN — unit 0, stream s, weight (row, 0)
    — in the learner that carries that weight row (spec["poison"] = [stream, row])."""
    if not spec.get("poison"):
        return
    s, row = spec["poison"]
    first, rows = getattr(learner, "_shard", (0, learner.model.n_units))
    if first <= row < first + rows:
        learner._kernels.arrays["sensitivities"][0, s, row - first, 0] = np.nan


def drive(learner, X, Y, spec):
    """Runs X in two calls (a save and load between them when asked); returns the learner and the
    outputs."""
    poison(learner, spec)
    half = X.shape[0] // 2
    first = learner.run(X[:half], Y[:half]).outputs
    if spec.get("save_path"):
        learner.save(spec["save_path"])
        if isinstance(learner, rtrl.distributed.ShardedRTRL):
            learner = rtrl.distributed.ShardedRTRL.load(spec["save_path"])
        else:
            learner.load_state_dict(rtrl.load(spec["save_path"]).state_dict())
    second = learner.run(X[half:], Y[half:]).outputs
    if spec.get("update") == "epoch":
        learner.apply()
    return learner, np.concatenate([first, second])


def main() -> None:
    spec, rank = json.loads(sys.argv[1]), int(sys.argv[2])
    import torch.distributed as dist

    out = f"{spec['out']}/rank{rank}.npz"
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{spec['port']}", rank=rank,
                                world_size=spec["world"], timeout=datetime.timedelta(seconds=spec.get("timeout", 30)))
        if spec.get("die") == rank:
            os._exit(3)
        X, Y = data(spec)
        if spec.get("save_path"):
            spec["save_path"] = spec["save_path"].format(rank=rank)
        offset = spec.get("mismatch_rank") == rank
        if spec.get("sharded"):  # every rank all the streams, its weight rows' sensitivities
            learner = build(spec, spec["streams"], seed_offset=offset, sharded=True)
            mine = slice(None)
        else:  # every rank its share of the streams
            share = spec["streams"] // spec["world"]
            mine = slice(rank * share, (rank + 1) * share)
            learner = rtrl.distributed.StreamParallel(build(spec, share, seed_offset=offset))
        learner, outputs = drive(learner, X[:, mine], Y[:, mine], spec)
        np.savez(out, outputs=outputs, **{f"param_{k}": v for k, v in learner.model.parameters().items()},
                 skipped=learner.stats["skipped_steps"], resets=learner.stats["reset_streams"])
        dist.barrier()  # no rank tears its connections down while another still uses them
        dist.destroy_process_group()
    except Exception as exc:  # noqa: BLE001 - the test reads what went wrong
        np.savez(out, error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc())
        # without the process group's teardown: exiting normally would destroy gloo's threads while
        # they still wait on a peer that has gone (std::terminate, SIGABRT)
        os._exit(2)


if __name__ == "__main__":
    main()
