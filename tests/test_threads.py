"""Learners used from several Python threads at once: the native loop releases the GIL, so two
learners really run concurrently, and each must give exactly what it gives when run alone."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import to_numpy

import rtrl

N_INPUTS, N_OUTPUTS = 3, 2
# (units, streams, steps): "small" runs long single-threaded native loops, so the threads overlap
# for many steps; "parallel" is big enough for the core's OpenMP loops (one team per caller thread)
# and kept short because OpenMP teams oversubscribe a small machine.
SIZES = {"small": (10, 2, 6000), "parallel": (32, 4, 24)}


def _learner(kind, device, seed, size="small"):
    n_units, batch, _ = SIZES[size]
    net = rtrl.FullyRecurrent(n_units, N_INPUTS, n_outputs=N_OUTPUTS, seed=seed, device=device)
    if kind == "rtrl-realtime":
        return rtrl.RTRL(net, optimizer=rtrl.optim.Adam(0.01), batch_size=batch)
    if kind == "rtrl-epoch":
        return rtrl.RTRL(net, lr=0.1, update="epoch", batch_size=batch)
    if kind == "bptt":
        return rtrl.BPTT(net, truncation=20, optimizer=rtrl.optim.SGD(0.05, momentum=0.5), batch_size=batch)
    raise AssertionError(kind)


def _data(seed, size="small"):
    _, batch, steps = SIZES[size]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(steps, batch, N_INPUTS)).astype(np.float32)
    D = rng.uniform(0.1, 0.9, size=(steps, batch, N_OUTPUTS)).astype(np.float32)
    D[rng.random(D.shape) < 0.25] = np.nan
    return X, D


def _job(learner, X, D, start=None):
    """Several run() calls (and an apply in epoch mode); returns everything observable."""
    if start is not None:
        start.wait()
    outputs, losses, T = [], [], len(X)
    for lo in range(0, T, T // 3):
        result = learner.run(X[lo:lo + T // 3], D[lo:lo + T // 3])
        outputs.append(to_numpy(result.outputs))
        losses.append(to_numpy(result.loss))
        if getattr(learner, "update", None) == "epoch":
            learner.apply()
    learner.reset(streams=[1])
    learner.run(X[:5], D[:5])
    observed = {
        "outputs": np.concatenate(outputs), "loss": np.concatenate(losses),
        "weight": to_numpy(learner.model.weight).copy(), "state": to_numpy(learner.state).copy(),
        "grad": to_numpy(learner.gradients()["weight"]),
    }
    if hasattr(learner, "sensitivities"):
        observed["sensitivities"] = to_numpy(learner.sensitivities).copy()
    return observed


def _concurrently(jobs):
    """Runs the callables in jobs at once, one thread each; returns their results in order."""
    results, errors = [None] * len(jobs), []
    start = threading.Barrier(len(jobs))

    def target(i):
        try:
            results[i] = jobs[i](start)
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a learner thread hung"
    if errors:
        raise errors[0]
    return results


def _assert_identical(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key], equal_nan=True), f"{key} differs"


PAIRS = [("rtrl-realtime", "rtrl-realtime", "small"), ("rtrl-epoch", "rtrl-realtime", "small"),
         ("bptt", "bptt", "small"), ("rtrl-realtime", "bptt", "small"),
         ("rtrl-realtime", "rtrl-epoch", "parallel")]


@pytest.mark.parametrize("kind_a, kind_b, size", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_two_learners_in_two_threads_match_sequential(device, kind_a, kind_b, size):
    (Xa, Da), (Xb, Db) = _data(1, size), _data(2, size)
    alone_a = _job(_learner(kind_a, device, 1, size), Xa, Da)
    alone_b = _job(_learner(kind_b, device, 2, size), Xb, Db)

    a, b = _learner(kind_a, device, 1, size), _learner(kind_b, device, 2, size)
    together_a, together_b = _concurrently([lambda s: _job(a, Xa, Da, s), lambda s: _job(b, Xb, Db, s)])
    _assert_identical(together_a, alone_a)
    _assert_identical(together_b, alone_b)
    assert a.steps == b.steps == len(Xa) + 5


def test_identical_learners_in_four_threads_agree(device):
    """Same model, same data in four threads: any shared scratch space would make them differ."""
    X, D = _data(3)
    expected = _job(_learner("rtrl-realtime", device, seed=3), X, D)
    learners = [_learner("rtrl-realtime", device, seed=3) for _ in range(4)]
    results = _concurrently([lambda s, L=L: _job(L, X, D, s) for L in learners])
    for result in results:
        _assert_identical(result, expected)


def test_rejected_call_in_one_thread_does_not_disturb_the_other(device):
    X, D = _data(4)
    expected = _job(_learner("rtrl-realtime", device, seed=4), X, D)
    good, bad = _learner("rtrl-realtime", device, seed=4), _learner("rtrl-realtime", device, seed=5)
    X_bad = X.copy()
    X_bad[100, 1, 1] = np.nan

    def failing(start):
        start.wait()
        messages = []
        for _ in range(20):
            with pytest.raises(ValueError, match="step 100, stream 1") as info:
                bad.run(X_bad, D)
            messages.append(str(info.value))
        return messages

    good_result, messages = _concurrently([lambda s: _job(good, X, D, s), failing])
    _assert_identical(good_result, expected)
    assert len(messages) == 20 and bad.steps == 0


def test_native_run_releases_the_gil():
    """While one thread is inside learner.run, a pure-Python thread keeps running. Calibrated
    against time.sleep (which releases the GIL) over the same wall time, so it is a ratio, not a
    timing threshold: with the GIL held the spinner could not run at all during the call."""
    net = rtrl.FullyRecurrent(12, 2, seed=0, device="cpu")  # small: no OpenMP team competing with the spinner
    learner = rtrl.RTRL(net, lr=0.01)
    X = np.random.default_rng(0).normal(size=(10000, 2))
    learner.run(X[:20])  # warm up

    count, stop = [0], threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        time.sleep(0.02)
        c0, t0 = count[0], time.perf_counter()
        learner.run(X)
        c1, t1 = count[0], time.perf_counter()
        time.sleep(t1 - t0)
        c2 = count[0]
    finally:
        stop.set()
        spinner.join()
    during_native, during_sleep = c1 - c0, c2 - c1
    assert during_sleep > 0
    assert during_native > 0.2 * during_sleep, (during_native, during_sleep)
