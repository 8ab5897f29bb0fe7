"""What the RecurrentNet test modules share: the cases and how a net with given parameters and a
learner with a given initial state are set up."""

import rtrl

CELLS = [("rnn", "tanh", 4), ("rnn", "relu", 5), ("lstm", "tanh", 4), ("gru", "tanh", 5)]  # cell, nl, H
CELL_IDS = [f"{c}-{nl}" for c, nl, _ in CELLS]
LOSSES = ["mse", "cross_entropy"]


def make_net(cell, nonlinearity, H, params, device, dtype="float64"):
    """A RecurrentNet holding ``params`` (sizes read off them)."""
    inputs, outputs = params["weight_ih"].shape[1], params["weight_out"].shape[0]
    net = rtrl.RecurrentNet(cell, inputs, H, outputs, nonlinearity=nonlinearity, seed=0, dtype=dtype,
                            device=device)
    net.load_parameters(params)
    return net


def set_initial_state(learner, h0, c0):
    learner.state[...] = learner._xp.asarray(h0)
    if c0 is not None:
        learner._kernels.arrays["state_c"][...] = learner._xp.asarray(c0)
