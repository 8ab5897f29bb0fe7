"""rtrl.distributed on this machine: one process against two (gloo on the loopback address).

    python benchmarks/distributed.py [--steps N] [--quick]

Column-sharded exact RTRL (FullyRecurrent, n in {64, 128, 256}, and RecurrentNet LSTM H in {32, 64};
B = 1, real-time Adam) and stream-parallel RTRL (RecurrentNet LSTM H = 64, 16 streams, real-time and
epoch mode — there the ranks agree on each step's verdict and combine the gradient at apply()): us per
step (the slowest rank's, after a warm-up) and per-rank peak RSS and sensitivities, for one process
with one thread, one process with two threads, and two processes of one thread each. Prints the
ratios the design states its targets in.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np


def _learner(kind: str, size: int, streams: int, sharded: bool):
    import rtrl
    import rtrl.distributed

    update = "epoch" if kind.endswith("epoch") else "realtime"
    if kind.startswith("sharded"):
        net = (rtrl.FullyRecurrent(size, 4, n_outputs=1, seed=0, device="cpu") if kind == "sharded" else
               rtrl.RecurrentNet("lstm", 4, size, 1, seed=0, device="cpu"))
        cls = rtrl.distributed.ShardedRTRL if sharded else rtrl.RTRL
        return cls(net, optimizer=rtrl.optim.Adam(1e-3), batch_size=streams)
    net = rtrl.RecurrentNet("lstm", 4, size, 1, seed=0, device="cpu")
    learner = rtrl.RTRL(net, optimizer=rtrl.optim.Adam(1e-3), batch_size=streams, update=update)
    return rtrl.distributed.StreamParallel(learner) if sharded else learner


def worker(spec: dict, rank: int) -> None:
    """One process: runs the spec's learner, writes its timing and memory as JSON."""
    distributed = spec["world"] > 1
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{spec['port']}", rank=rank,
                                world_size=spec["world"], timeout=datetime.timedelta(seconds=120))
    learner = _learner(spec["kind"], spec["size"], spec["streams"], distributed)
    rng = np.random.default_rng(rank)
    X = rng.uniform(-1, 1, (spec["steps"], spec["streams"], 4)).astype(np.float32)
    Y = rng.uniform(0, 1, (spec["steps"], spec["streams"], 1)).astype(np.float32)
    learner.run(X[:2], Y[:2])  # warm-up: first touch, thread pool
    if distributed:
        dist.barrier()
    start = time.perf_counter()
    learner.run(X, Y)
    if spec["kind"].endswith("epoch"):
        learner.apply()
    if distributed:
        dist.barrier()
    seconds = time.perf_counter() - start
    inner = getattr(learner, "learner", learner)
    result = {"us_per_step": seconds / spec["steps"] * 1e6,
              "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
              "sensitivities": int(sum(a.nbytes for k, a in inner._kernels.arrays.items() if "sensitivities" in k))}
    with open(f"{spec['out']}/rank{rank}.json", "w") as f:
        json.dump(result, f)
    if distributed:
        dist.destroy_process_group()


def launch(spec: dict, threads: int) -> dict:
    """Runs the spec on spec['world'] processes of `threads` threads; the slowest rank's time and the
    largest rank's memory."""
    with tempfile.TemporaryDirectory() as out, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        spec = {**spec, "out": out, "port": s.getsockname()[1]}
        s.close()
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec), str(r)], env=env)
                 for r in range(spec["world"])]
        for p in procs:
            if p.wait(timeout=900) != 0:
                raise RuntimeError(f"a rank exited with {p.returncode}")
        ranks = [json.load(open(f"{out}/rank{r}.json")) for r in range(spec["world"])]
    return {k: max(r[k] for r in ranks) for k in ranks[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker[0]), int(args.worker[1]))
        return
    cases = ([("sharded", n, 1) for n in ((64, 128) if args.quick else (64, 128, 256))] +
             [("sharded-lstm", h, 1) for h in ((32,) if args.quick else (32, 64))] +
             [("streams", 64, 16), ("streams-epoch", 64, 16)])
    print(f"{'mode':>13} {'size':>5} {'B':>3}  {'1p x1t us':>10} {'1p x2t us':>10} {'2p x1t us':>10}"
          f"  {'2p/1p1t':>7} {'2p vs 1p2t':>10}  {'sens/rank 1p':>12} {'2p':>10}  {'RSS/rank 1p':>11} {'2p':>9}")
    for kind, size, streams in cases:
        steps = args.steps or (20 if size >= 256 else 60)
        base = {"kind": kind, "size": size, "streams": streams, "steps": steps}
        one = launch({**base, "world": 1}, 1)
        two_threads = launch({**base, "world": 1}, 2)
        share = streams // 2 if kind.startswith("streams") else streams
        two = launch({**base, "world": 2, "streams": share}, 1)
        print(f"{kind:>13} {size:>5} {streams:>3}  {one['us_per_step']:>10.1f} {two_threads['us_per_step']:>10.1f} "
              f"{two['us_per_step']:>10.1f}  {one['us_per_step'] / two['us_per_step']:>6.2f}x "
              f"{two['us_per_step'] / two_threads['us_per_step']:>9.2f}x  {one['sensitivities'] / 2**20:>10.1f}Mi "
              f"{two['sensitivities'] / 2**20:>8.1f}Mi  {one['peak_rss'] / 2**20:>9.0f}Mi {two['peak_rss'] / 2**20:>7.0f}Mi",
              flush=True)
    print("2p/1p1t: one process of one thread over two of one thread each (target >= 1.6 at n = 256); "
          "2p vs 1p2t: two processes' time over one process with two threads (target <= 1.25).")


if __name__ == "__main__":
    main()
