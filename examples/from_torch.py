"""A torch GRU and readout moved into an online learner, and torch tensors in and out.

    python examples/from_torch.py       (needs torch)
"""

import numpy as np
import torch

import rtrl

torch.manual_seed(0)
gru, readout = torch.nn.GRU(3, 8, num_layers=2), torch.nn.Linear(8, 1)
net = rtrl.RecurrentNet.from_torch(gru, readout)
X = torch.randn(50, 1, 3)
with torch.no_grad():
    expected = readout(gru(X)[0])
learner = rtrl.RTRL(net, update="epoch")        # weights fixed: the same function as torch's
outputs = learner.run(X).outputs                # a torch tensor, because X is one
print(type(outputs).__name__, tuple(outputs.shape))
np.testing.assert_allclose(outputs.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
print("rtrl's GRU computes what torch's does")
