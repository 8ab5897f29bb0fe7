"""A fresh learner's cost: construction, its first one-step run and a steady one-step run, in one process.

    OMP_NUM_THREADS=2 python benchmarks/first_run.py

Prints, for each model, the medians over 7 fresh learners (after one to warm the process) and the
ratios first/steady and (construction + first)/steady.
"""
import time

import numpy as np

import rtrl


def once(n, kind="fr"):
    """(construction, first run, median steady run) in ms for a fresh learner."""
    t0 = time.perf_counter()
    if kind == "fr":
        net = rtrl.FullyRecurrent(n, 2, n_outputs=1, seed=0, device="cpu")
        X, Y = np.zeros((1, 2)), np.zeros((1, 1))
    else:
        net = rtrl.RecurrentNet(kind, 4, n, 2, seed=0, device="cpu")
        X, Y = np.zeros((1, 4)), np.zeros((1, 2))
    L = rtrl.RTRL(net, lr=0.1)
    t1 = time.perf_counter(); L.run(X, Y); t2 = time.perf_counter()
    steady = []
    for _ in range(20):
        a = time.perf_counter(); L.run(X, Y); steady.append(time.perf_counter() - a)
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3, float(np.median(steady)) * 1e3
for kind, n in [("fr", 64), ("fr", 128), ("lstm", 32), ("lstm", 64)]:
    once(n, kind=kind)  # warm the process (imports, OpenMP pool)
    make, firsts, st = (np.median(v) for v in zip(*[once(n, kind=kind) for _ in range(7)]))
    print(f"{kind} n={n}: construction {make:.3f} ms, first run {firsts:.3f} ms, steady {st:.3f} ms, "
          f"first/steady {firsts/st:.2f}, (construction+first)/steady {(make+firsts)/st:.2f}")
