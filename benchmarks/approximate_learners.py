"""Microseconds per real-time Adam step of each online learner on RecurrentNet, float32, I = 32,
O = 4: SnAp-1, e-prop, UORO, KF-RTRL (not on the gru) and exact RTRL (H = 64 only).

    OMP_NUM_THREADS=1 python benchmarks/approximate_learners.py [H ...]

Each cell is one run of enough steps for about a second of work after a two-step warm-up.
"""
import sys
import time

import numpy as np

import rtrl

LEARNERS = (("SnAp-1", rtrl.SnAp, {}), ("e-prop", rtrl.EProp, {}), ("UORO", rtrl.UORO, {"seed": 1}),
            ("KF-RTRL", rtrl.KFRTRL, {"seed": 1}), ("RTRL", rtrl.RTRL, {}))


def microseconds(cls, cell, H, B, I=32, **kwargs):
    net = rtrl.RecurrentNet(cell, I, H, 4, seed=0, device="cpu")
    learner = cls(net, optimizer=rtrl.optim.Adam(1e-3), batch_size=B, **kwargs)
    steps = max(5, int(2e6 / (H * (H + I) * B * 4)))
    X = np.random.default_rng(0).normal(size=(steps, B, I)).astype(np.float32)
    Y = np.zeros((steps, B, 4), np.float32)
    learner.run(X[:2], Y[:2])
    start = time.perf_counter()
    learner.run(X, Y)
    return (time.perf_counter() - start) / steps * 1e6


def main(widths):
    print(f"{'cell':5} {'H':>5} {'B':>3} " + " ".join(f"{name:>12}" for name, _, _ in LEARNERS) + "   (us/step)")
    for cell in ("rnn", "lstm", "gru"):
        for H in widths:
            for B in (1, 16):
                row = []
                for name, cls, kwargs in LEARNERS:
                    if (name == "KF-RTRL" and cell == "gru") or (name == "RTRL" and H > 64):
                        row.append(f"{'-':>12}")
                        continue
                    us = microseconds(cls, cell, H, B, **kwargs)
                    row.append(f"{us:12.1f}")
                print(f"{cell:5} {H:5d} {B:3d} " + " ".join(row), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [64, 256])
