"""One learner, layer or cell shared by two threads: each call holds the object's lock, so the
calls run one at a time, each whole. The checks are exact: every result a thread saw must be what
some one-at-a-time order of the same calls gives (found by replaying them), and a forward/backward
pair held under ``obj.lock`` gives the single-threaded gradients."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import rtrl

CALLS = 12


@pytest.fixture(autouse=True)
def _switch_often():
    """Python threads switch every few microseconds instead of every 5 ms: more interleavings."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


def _two_threads(work):
    """Runs ``work(thread_index, barrier)`` in two threads at once; returns their results."""
    barrier = threading.Barrier(2)
    results, errors = [None, None], []

    def target(i):
        try:
            results[i] = work(i, barrier)
        except BaseException as exc:  # re-raised here
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def _make_learner(kind):
    if kind == "rtrl-fully-recurrent":
        net = rtrl.FullyRecurrent(6, 2, n_outputs=2, seed=0, device="cpu")
        return rtrl.RTRL(net, optimizer=rtrl.optim.Adam(0.01), batch_size=2)
    if kind == "rtrl-gru":
        net = rtrl.RecurrentNet("gru", 2, 5, 2, seed=0, device="cpu")
        return rtrl.RTRL(net, lr=0.05, update="epoch", batch_size=2)
    net = rtrl.RecurrentNet("lstm", 2, 5, 2, seed=0, device="cpu")
    return rtrl.BPTT(net, truncation=7, optimizer=rtrl.optim.SGD(0.05, momentum=0.5), batch_size=2)


def _inputs(thread, call, T=300):
    rng = np.random.default_rng(1000 * thread + call)
    return rng.normal(size=(T, 2, 2)), rng.uniform(0.1, 0.9, size=(T, 2, 2))


def _equal(a, b):
    return np.array_equal(a.outputs, b.outputs, equal_nan=True) and np.array_equal(a.loss, b.loss, equal_nan=True)


def _replay(kind, seen):
    """Finds a one-at-a-time order of both threads' calls that reproduces every result exactly."""
    learner, done = _make_learner(kind), [0, 0]
    for _ in range(2 * CALLS):
        before = learner.state_dict()
        for thread in (0, 1):
            if done[thread] == CALLS:
                continue
            result = learner.run(*_inputs(thread, done[thread]))
            if _equal(result, seen[thread][done[thread]]):
                done[thread] += 1
                break
            learner.load_state_dict(before)
        else:
            raise AssertionError(f"no one-at-a-time order explains the results after {done} calls")
    return learner


@pytest.mark.parametrize("kind", ["rtrl-fully-recurrent", "rtrl-gru", "bptt-lstm"])
def test_learner_shared_by_two_threads_is_one_call_at_a_time(kind):
    learner = _make_learner(kind)

    def work(thread, barrier):
        barrier.wait()
        return [learner.run(*_inputs(thread, call)) for call in range(CALLS)]

    seen = _two_threads(work)
    replayed = _replay(kind, seen)
    assert learner.steps == replayed.steps == 2 * CALLS * 300
    for k, v in learner.state_dict().items():
        expected = replayed.state_dict()[k]
        if k == "parameters":
            assert all(np.array_equal(v[n], expected[n]) for n in v), k
        else:
            assert np.array_equal(v, expected) if hasattr(v, "shape") else v == expected, k


def test_learner_save_and_step_from_two_threads(tmp_path):
    learner = _make_learner("rtrl-fully-recurrent")

    def work(thread, barrier):
        barrier.wait()
        if thread == 0:
            for call in range(CALLS):
                learner.run(*_inputs(0, call, T=100))
            return None
        for i in range(CALLS):
            learner.save(tmp_path / f"c{i}.npz")
        return None

    _two_threads(work)
    for i in range(CALLS):  # each checkpoint is a whole state: a multiple of the run length
        loaded = rtrl.load(tmp_path / f"c{i}.npz")
        assert loaded.steps % 100 == 0
        assert loaded.state_dict()["optimizer_step"] == loaded.steps


# big enough that the native calls release the GIL, so the threads really overlap
I, H = 16, 32


def _layer_and_cell_cases():
    return {
        "LSTM": lambda: rtrl.nn.LSTM(I, H, num_layers=2, bidirectional=True, seed=0, device="cpu"),
        "GRU": lambda: rtrl.nn.GRU(I, H, seed=0, device="cpu"),
        "RNN": lambda: rtrl.nn.RNN(I, H, nonlinearity="relu", seed=0, device="cpu"),
        "LSTMCell": lambda: rtrl.nn.LSTMCell(I, H, seed=0, device="cpu"),
        "GRUCell": lambda: rtrl.nn.GRUCell(I, H, seed=0, device="cpu"),
        "RNNCell": lambda: rtrl.nn.RNNCell(I, 2 * H, seed=0, device="cpu"),
    }


CASES = _layer_and_cell_cases()


def _pair(obj, x):
    """One forward and backward; returns everything observable (as copies)."""
    out = obj(x)
    first = out[0] if isinstance(out, tuple) else out
    grads = obj.backward(np.ones_like(first))
    dx = grads[0]
    return [np.array(first), np.array(dx)] + [np.array(v) for _, v in sorted(obj.grads.items())]


def _x(name, thread, call):
    rng = np.random.default_rng(100 * thread + call)
    shape = (32, I) if name.endswith("Cell") else (8, 4, I)
    return rng.normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("name", list(CASES))
def test_layer_or_cell_shared_by_two_threads(name):
    """Forward calls from two threads at once give the single-threaded outputs, and pairs held
    under ``obj.lock`` the single-threaded gradients."""
    shared, alone = CASES[name](), CASES[name]()
    expected = [[_pair(alone, _x(name, t, c)) for c in range(40)] for t in (0, 1)]

    def work(thread, barrier):
        barrier.wait()
        seen = []
        for call in range(40):
            out = shared(_x(name, thread, call))  # plain calls interleave freely
            first = out[0] if isinstance(out, tuple) else out
            assert np.array_equal(first, expected[thread][call][0])
            with shared.lock:
                seen.append(_pair(shared, _x(name, thread, call)))
        return seen

    for thread, seen in enumerate(_two_threads(work)):
        for call, (got, want) in enumerate(zip(seen, expected[thread])):
            assert all(np.array_equal(a, b) for a, b in zip(got, want)), (thread, call)


@pytest.mark.parametrize("name", ["LSTM", "GRUCell"])
def test_load_state_dict_concurrent_with_calls_is_whole(name):
    """A thread loading parameters while another calls: each call sees the old or the new
    parameters, never a mix."""
    obj, old, new = CASES[name](), CASES[name](), CASES[name]()
    new.load_state_dict({k: v * 0.5 for k, v in new.state_dict().items()})
    x = _x(name, 0, 0)

    def first(o):
        out = o(x)
        return np.array(out[0] if isinstance(out, tuple) else out)

    want_old, want_new = first(old), first(new)
    states = [old.state_dict(), new.state_dict()]

    def work(thread, barrier):
        barrier.wait()
        if thread == 0:
            for i in range(200):
                obj.load_state_dict(states[i % 2])
            return None
        outs = [first(obj) for _ in range(200)]
        return outs

    _, outs = _two_threads(work)
    for out in outs:
        assert np.array_equal(out, want_old) or np.array_equal(out, want_new)
