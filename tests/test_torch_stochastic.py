"""The torch-ops UORO and KF-RTRL of ``rtrl bench --only approximate`` compute what rtrl.UORO and
rtrl.KFRTRL compute, given the same seed (float64, real-time Adam, B > 1, target gaps, the leaky rnn)."""

import numpy as np
import pytest

import rtrl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["UORO", "KFRTRL"])
@pytest.mark.parametrize("alpha", [1.0, 0.4])
@pytest.mark.parametrize("seed", [3, 2**40 + 7])
@pytest.mark.parametrize("hidden", [5, 150])  # 150 units: UORO's signs from every word and two blocks
def test_torch_stochastic_learner_equals_the_library(name, alpha, seed, hidden):
    from rtrl.bench import torch_stochastic

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(15, 3, 4)), rng.normal(size=(15, 3, 2))
    Y[rng.random(Y.shape) < 0.3] = np.nan
    net = rtrl.RecurrentNet("rnn", 4, hidden, 2, alpha=alpha, seed=1, dtype="float64", device="cpu")
    ref = getattr(torch_stochastic, f"Torch{name}")({k: v.copy() for k, v in net.parameters().items()}, seed,
                                                    batch=3, lr=0.02, alpha=alpha, dtype="float64")
    outputs = np.stack([ref.step(X[t], Y[t]).numpy() for t in range(15)])
    learner = getattr(rtrl, name)(net, seed=seed, optimizer=rtrl.optim.Adam(0.02), batch_size=3)
    result = learner.run(X, Y)
    np.testing.assert_allclose(outputs, result.outputs, rtol=1e-10, atol=1e-12)
    for k, v in net.parameters().items():
        np.testing.assert_allclose(ref.p[k].numpy(), v, rtol=1e-10, atol=1e-12, err_msg=k)


def test_the_generator_gives_the_published_known_answers():
    """Philox4x32-10's known-answer vectors (Salmon et al. 2011, the Random123 distribution): counter
    (c0, c1, c2, c3), key (k0, k1) -> four words; here c0 = block, c1 = stream, (c2, c3) = step,
    (k0, k1) = seed. The library's generator equals this one (the runs above)."""
    from rtrl.bench.torch_stochastic import philox_words

    cases = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for (c0, c1, c2, c3), (k0, k1), expected in cases:
        words = philox_words(k0 | k1 << 32, c2 | c3 << 32, np.array([c0]), np.array([c1]))
        assert [int(w) for w in words[0]] == list(expected)


def test_signs_are_the_bits_of_the_generator_blocks():
    """Element e's sign is bit e mod 32 of word (e / 32) mod 4 of block e / 128, and the signs are
    balanced (a binomial count over 2 x 1000 signs, 5 standard deviations)."""
    from rtrl.bench.torch_stochastic import philox_signs, philox_words

    signs = philox_signs(9, 7, 2, 1000)
    words = philox_words(9, 7, np.arange(8)[None, :], np.arange(2)[:, None])
    for s, e in [(0, 0), (0, 31), (0, 32), (1, 127), (1, 128), (1, 999), (0, 517)]:
        bit = (int(words[s, e // 128, (e // 32) % 4]) >> (e % 32)) & 1
        assert signs[s, e] == (1.0 if bit else -1.0)
    assert abs(signs.sum()) < 5 * np.sqrt(signs.size)
    assert not np.array_equal(signs[0], signs[1])


@pytest.mark.parametrize("name", ["UORO", "KFRTRL"])
def test_other_signs_give_another_run(name):
    """The comparison above can fail: another seed's signs move the weights elsewhere."""
    from rtrl.bench import torch_stochastic
    from rtrl.bench.torch_stochastic import philox_signs

    assert not np.array_equal(philox_signs(3, 0, 2, 8), philox_signs(4, 0, 2, 8))
    assert not np.array_equal(philox_signs(3, 0, 2, 8), philox_signs(3, 1, 2, 8))
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(6, 2, 4)), rng.normal(size=(6, 2, 2))
    net = rtrl.RecurrentNet("rnn", 4, 5, 2, seed=1, dtype="float64", device="cpu")
    ref = getattr(torch_stochastic, f"Torch{name}")({k: v.copy() for k, v in net.parameters().items()}, 4,
                                                    batch=2, lr=0.02, dtype="float64")
    for t in range(6):
        ref.step(X[t], Y[t])
    getattr(rtrl, name)(net, seed=3, optimizer=rtrl.optim.Adam(0.02), batch_size=2).run(X, Y)
    assert not np.allclose(ref.p["weight_hh"].numpy(), net.parameters()["weight_hh"], rtol=1e-6)
