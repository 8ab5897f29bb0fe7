"""The demos of ``rtrl demo``: their task streams and what their quick runs learn (fixed seeds, CPU)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from rtrl import cli
from rtrl.demos import DEFAULT, DEMOS, oscillators, wz1989


def _rows(rows: list[dict]) -> dict[tuple[str, bool], dict]:
    return {(r["task"], r["teacher_forcing"]): r for r in rows}


@pytest.fixture(scope="module")
def quick_wz1989() -> tuple[str, dict[tuple[str, bool], dict]]:
    """The output and rows of ``rtrl demo --quick`` (the 1989 tasks, then the oscillators)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["demo", "--quick"]) == 0
    with contextlib.redirect_stdout(io.StringIO()):
        rows = wz1989.main(quick=True)
    return out.getvalue(), _rows(rows)


def test_registry():
    assert DEFAULT == "wz1989"
    assert DEMOS["wz1989"] is wz1989 and DEMOS["oscillators"] is oscillators


def test_xor_stream_delay():
    X, d = wz1989.xor_stream(3)(np.random.default_rng(0), 50)
    assert X.shape == (50, 2) and d.shape == (50, 1)
    assert np.isnan(d[:2]).all()
    np.testing.assert_array_equal(d[2:, 0], np.logical_xor(X[:-2, 0], X[:-2, 1]))


def test_sequence_stream_rule():
    X, d = wz1989.sequence_stream(np.random.default_rng(1), 400)
    symbols = "abcd"
    text = "".join(symbols[i] for i in X.argmax(1))
    assert (X.sum(1) == 1).all()
    expected, seen_a = [], False
    for ch in text:  # 1 at the first b after an a, then the context resets
        expected.append(float(ch == "b" and seen_a))
        seen_a = (seen_a or ch == "a") and ch != "b"
    np.testing.assert_array_equal(d[:, 0], expected)
    assert 0 < d.sum() < len(d)


def test_dnms_stream_trials():
    X, d = wz1989.dnms_stream(np.random.default_rng(2), 300)
    assert (X.sum(1) == 1).all()
    answers = np.flatnonzero(~np.isnan(d[:, 0]))
    assert len(answers) > 20
    for t in answers:
        assert X[t, 4] == 1 and X[t - 1, 2:4].sum() == 1  # answer step right after the test
        sample_t = max(s for s in range(t) if X[s, :2].sum())
        assert 2 <= t - 1 - sample_t <= 4  # 1-3 distractors between sample and test
        assert d[t, 0] == float(X[sample_t, :2].argmax() != X[t - 1, 2:4].argmax())


def test_flipflop_stream_holds():
    X, d = wz1989.flipflop_stream(np.random.default_rng(3), 500)
    assert not (X[:, 0] * X[:, 1]).any()
    first = np.flatnonzero(X.any(1))[0]
    assert np.isnan(d[:first]).all() and not np.isnan(d[first:]).any()
    changes = np.flatnonzero(np.diff(d[first:, 0])) + first + 1
    assert all(X[t].any() for t in changes)


def test_same_seed_same_result():
    task = wz1989.TASKS[-1]  # flip-flop
    runs = [wz1989.learn(task, teacher_forcing=False, seed=1, max_steps=3000, check_every=100) for _ in range(2)]
    assert runs[0] is not None and runs[0] == runs[1]


def test_wz1989_quick_learns(quick_wz1989):
    out, rows = quick_wz1989
    seeds = wz1989.QUICK["seeds"]
    assert rows[("XOR, tau=2", True)]["success"] * seeds >= 1
    assert rows[("XOR, tau=2", False)]["success"] * seeds >= 1
    for forcing in (True, False):  # every 1989 task is learned by both fixed seeds, with or without forcing
        for task in wz1989.TASKS:
            row = rows[(task.name, forcing)]
            assert row["success"] == 1.0, row
            assert 0 < row["median_steps"] <= wz1989.QUICK["max_steps"]
    assert rows[("flip-flop", True)]["median_steps"] < 5000
    assert "nonmatch to sample" in out and "flip-flop" in out


def test_quick_demo_prints_the_oscillators(quick_wz1989):
    out, rows = quick_wz1989
    assert "Oscillators learned online" in out and "sine, period 25" in out
    assert rows[("0101...", True)]["success"] == 1.0
    assert rows[("00110011...", True)]["success"] == 1.0
    assert rows[("00110011...", False)]["success"] == 0.0  # without forcing it is much harder


def test_oscillators_quick():
    rows = _rows(oscillators.run(seeds=2, max_steps=5_000))
    assert rows[("0101...", True)]["success"] == 1.0
    assert rows[("0101...", True)]["median_steps"] < rows[("0101...", False)]["median_steps"]
