"""Exact online learning in a few lines: a 4-unit Williams & Zipser network learns to oscillate.

    python examples/quickstart.py
"""

import numpy as np

import rtrl

net = rtrl.FullyRecurrent(4, 0, n_outputs=1, seed=0)
learner = rtrl.RTRL(net, lr=1.0, teacher_forcing=True)
targets = np.resize([0.1, 0.9], 4000)[:, None]
result = learner.run(np.zeros((4000, 0)), targets)
early, late = float(result.loss[:200].mean()), float(result.loss[-200:].mean())
print(f"mean loss over the first 200 steps {early:.4f}, over the last 200 {late:.4f}")
assert late < early / 4, "the network did not learn to oscillate"
