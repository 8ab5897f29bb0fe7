"""Column-sharded exact RTRL in one process (no process group): each shard (rtrl.distributed.RTRLShard)
computes its weight rows' part of the gradient bit for bit as the whole learner does, and the shards'
sensitivities join into the whole learner's (DESIGN §12)."""

from __future__ import annotations

import numpy as np
import pytest

import rtrl
from rtrl.distributed import RTRLShard, gather_shards, shard_rows, weight_rows

MODELS = [
    ("rnn", 1), ("rnn", 2), ("lstm", 1), ("lstm", 3), ("gru", 1), ("gru", 2), ("elstm", 1), ("elstm", 2),
    ("leaky", 2), ("fully_recurrent", 1),
]


def _model(kind: str, layers: int, dtype: str):
    if kind == "fully_recurrent":
        return rtrl.FullyRecurrent(6, 3, n_outputs=2, seed=1, dtype=dtype)
    if kind == "leaky":
        return rtrl.RecurrentNet("rnn", 3, 5, 2, num_layers=layers, alpha=0.5, seed=1, dtype=dtype)
    return rtrl.RecurrentNet(kind, 3, 5, 2, num_layers=layers, seed=1, dtype=dtype)


def _sensitivities(learner) -> dict:
    return {k: np.asarray(v) for k, v in learner.state_dict().items() if k.startswith("sensitivities")}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("world", [2, 3, 4])
@pytest.mark.parametrize("kind,layers", MODELS)
def test_the_shards_gradients_and_sensitivities_are_the_whole_learners(kind, layers, world, dtype):
    net = _model(kind, layers, dtype)
    rng = np.random.default_rng(world)
    B, T = 3, 7
    X = rng.standard_normal((T, B, 3))
    Y = rng.uniform(0.1, 0.9, (T, B, 2))
    whole = rtrl.RTRL(net, batch_size=B)  # no optimizer: the gradient accumulates, the weights stay
    expected = whole.run(X, Y).outputs
    shards = [RTRLShard(net, shard=shard_rows(weight_rows(net), world, r), world_size=world, batch_size=B)
              for r in range(world)]
    for s in shards:
        np.testing.assert_array_equal(s.run(X, Y).outputs, expected)
    full = whole._grad.reshape(-1)
    theta = full.size if kind == "fully_recurrent" else net._backend.core.CellNetConfig(
        net.cell, net.nonlinearity, 3, 5, 2, B, "mse", "mean", layers=layers, alpha=net.alpha).offsets[4]
    covered = np.zeros(full.size, dtype=int)
    for r, s in enumerate(shards):
        mine = s._grad.reshape(-1)
        inside = np.zeros(full.size, dtype=bool)
        for start, count in s._shard_parameters(r):
            covered[start:start + count] += 1
            inside[start:start + count] = True
        np.testing.assert_array_equal(mine[inside], full[inside])  # its rows' gradient
        assert (mine[:theta][~inside[:theta]] == 0).all()  # the other rows': the other ranks'
        np.testing.assert_array_equal(mine[theta:], full[theta:])  # the readout's, in full
    assert (covered[:theta] == 1).all() and (covered[theta:] == 0).all()  # every weight row once
    joined = gather_shards(shards[::-1])
    for name, value in _sensitivities(whole).items():
        np.testing.assert_array_equal(_sensitivities(joined)[name], value, err_msg=name)
    carried = sum(v.size for v in _sensitivities(shards[0]).values())
    rows0 = shard_rows(weight_rows(net), world, 0)[1]
    assert carried * weight_rows(net) == rows0 * sum(v.size for v in _sensitivities(whole).values())


def test_a_shard_is_checked():
    net = rtrl.RecurrentNet("lstm", 3, 5, 2)
    assert weight_rows(net) == 20  # 4 gates of 5 units
    with pytest.raises(ValueError, match=r"shard: expected weight rows \[first, first \+ rows\) within \[0, 20\)"):
        RTRLShard(net, shard=(15, 6), world_size=2)
    with pytest.raises(ValueError, match="shard: expected"):
        RTRLShard(net, shard="ab", world_size=2)
    with pytest.raises(ValueError, match="world_size"):
        RTRLShard(net, shard=(0, 10), world_size=0)
    with pytest.raises(ValueError, match="FullyRecurrent or rtrl.RecurrentNet"):
        weight_rows("lstm")
    config = net._backend.core.CellNetConfig("lstm", "tanh", 3, 5, 2, 1, "mse", "mean", shard_row0=18,
                                             shard_rows=2)
    assert config.carried_rows == 2 and config.carried_through == [2 * (3 + 5 + 1)]
    with pytest.raises(ValueError, match="gate rows"):
        net._backend.core.CellNetConfig("lstm", "tanh", 3, 5, 2, 1, "mse", "mean", shard_row0=18, shard_rows=3)
    with pytest.raises(ValueError, match="only exact RTRL"):
        config.layout("snap1", True, 0)
