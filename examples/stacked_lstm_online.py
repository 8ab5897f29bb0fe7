"""A two-layer LSTM learning online with exact RTRL, eight streams at once, checkpointed midway.

    python examples/stacked_lstm_online.py

Task: each stream sees a random bit every step and must output the bit it saw three steps earlier.
"""

import os
import tempfile

import numpy as np

import rtrl

rng = np.random.default_rng(0)
T, B, delay = 3000, 8, 3
bits = rng.integers(0, 2, (T, B, 1)).astype(np.float32)
targets = np.full_like(bits, np.nan)
targets[delay:] = bits[:-delay]

net = rtrl.RecurrentNet("lstm", 1, 16, 1, num_layers=2, seed=1)
learner = rtrl.RTRL(net, optimizer=rtrl.optim.Adam(3e-3), batch_size=B)
print(f"{learner!r}: {learner.memory_bytes() / 2**20:.1f} MiB of state")
first = learner.run(bits[: T // 2], targets[: T // 2])
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "lstm.npz")
    learner.save(path)
    learner = rtrl.load(path)  # resumes bit for bit
second = learner.run(bits[T // 2:], targets[T // 2:])
early, late = float(np.mean(first.loss[100:400])), float(np.mean(second.loss[-300:]))
print(f"mean loss early {early:.4f}, at the end {late:.4f}")
assert late < early / 2, "the LSTM did not learn the delay"
