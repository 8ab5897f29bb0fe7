"""The CPU backend gives bit-identical results for the same seed whatever the number of OpenMP threads:
every reduction runs in a fixed order, and the thread count only changes how GEMM columns and
sensitivity blocks are shared out, not any element's order of summation."""

import os
import subprocess
import sys

import pytest

PROGRAM = r"""
import hashlib
import numpy as np
import rtrl

rng = np.random.default_rng(0)
out = []
net = rtrl.FullyRecurrent(48, 4, n_outputs=2, seed=1, device="cpu")
learner = rtrl.RTRL(net, optimizer=rtrl.optim.Adam(1e-3), batch_size=4)
r = learner.run(rng.normal(size=(20, 4, 4)).astype(np.float32), rng.uniform(size=(20, 4, 2)).astype(np.float32))
out += [r.outputs, r.loss, net.weight, learner.sensitivities]
cell_net = rtrl.RecurrentNet("lstm", 4, 24, 3, seed=2, device="cpu")
cell_learner = rtrl.RTRL(cell_net, lr=1e-2, batch_size=3, loss="cross_entropy")
rc = cell_learner.run(rng.normal(size=(10, 3, 4)).astype(np.float32), rng.integers(-1, 3, size=(10, 3)))
out += [rc.outputs, cell_net._flat]
bptt = rtrl.BPTT(rtrl.RecurrentNet("gru", 4, 32, 2, seed=4, device="cpu"), truncation=5, lr=0.1, batch_size=8)
out += [bptt.run(rng.normal(size=(15, 8, 4)).astype(np.float32), rng.normal(size=(15, 8, 2)).astype(np.float32)).outputs]
for cell in ("lstm", "gru", "rnn"):  # stacked: the two-slab products of the layers below
    deep = rtrl.RecurrentNet(cell, 4, 24, 2, num_layers=3, seed=5, device="cpu")
    deep_learner = rtrl.RTRL(deep, optimizer=rtrl.optim.Adam(1e-2), batch_size=3)
    rd = deep_learner.run(rng.normal(size=(8, 3, 4)).astype(np.float32), rng.normal(size=(8, 3, 2)).astype(np.float32))
    state = deep_learner.state_dict()
    out += [rd.outputs, rd.loss, deep._flat] + [state[f"sensitivities_h_l{l}"] for l in range(3)]
    deep_bptt = rtrl.BPTT(deep, truncation=3, lr=0.1, batch_size=3)
    out += [deep_bptt.run(rng.normal(size=(7, 3, 4)).astype(np.float32)).outputs, deep._flat]
layer = rtrl.nn.LSTM(16, 64, num_layers=2, bidirectional=True, device="cpu", seed=3)
y, _ = layer(rng.normal(size=(30, 16, 16)).astype(np.float32))
layer.backward(np.ones_like(y))
out += [y] + [layer.grads[k] for k in sorted(layer.grads)]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


def _digest(threads: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("threads", [2, 3])
def test_results_do_not_depend_on_the_thread_count(threads):
    assert _digest(threads) == _digest(1)
