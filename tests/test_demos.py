"""The demos of ``rtrl demo``: their task streams and what their quick runs learn (fixed seeds, CPU)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from rtrl import cli
from rtrl.demos import DEFAULT, DEMOS, forecast, oscillators, reber, text, wz1989
from rtrl.demos.plotting import save_figure
from rtrl.demos.progress import progress_bar

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _quietly(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with stdout captured: (result, output)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = fn(*args, **kwargs)
    return result, out.getvalue()


def _assert_png(path, written: bool = HAVE_MATPLOTLIB) -> None:
    if written:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
    else:
        assert not path.exists()


def _rows(rows: list[dict]) -> dict[tuple[str, bool], dict]:
    return {(r["task"], r["teacher_forcing"]): r for r in rows}


@pytest.fixture(scope="module")
def quick_wz1989(tmp_path_factory) -> tuple[str, dict[tuple[str, bool], dict], Path]:
    """The output and rows of ``rtrl demo --quick --plot FILE`` (the 1989 tasks, then the oscillators)."""
    plot = tmp_path_factory.mktemp("wz1989") / "curves.png"
    code, out = _quietly(cli.main, ["demo", "--quick", "--plot", str(plot)])
    assert code == 0
    rows, _ = _quietly(wz1989.main, quick=True)
    return out, _rows(rows), plot


def test_registry():
    assert DEFAULT == "wz1989"
    assert DEMOS["wz1989"] is wz1989 and DEMOS["oscillators"] is oscillators
    assert DEMOS["forecast"] is forecast and DEMOS["reber"] is reber and DEMOS["text"] is text


def test_demo_help_lists_the_tasks(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["demo", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in DEMOS:
        assert f"  {name} " in out
    assert "--plot FILE" in out and "--no-plot" in out and "--no-progress" in out


def test_demo_options_reach_main(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setitem(DEMOS, "fake", type("Fake", (), {"main": staticmethod(lambda **kw: calls.append(kw))}))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "fake"]) == 0
    assert calls[-1] == {"quick": False, "progress": True, "plot_path": "rtrl-demo-fake.png"}
    assert cli.main(["demo", "fake", "--quick", "--no-plot", "--no-progress", "--seeds", "3"]) == 0
    assert calls[-1] == {"quick": True, "progress": False, "plot_path": None, "seeds": 3}
    assert cli.main(["demo", "fake", "--plot", "x.png"]) == 0
    assert calls[-1]["plot_path"] == "x.png"
    assert cli.main(["demo", "nonesuch"]) == 2


def test_no_figure_without_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # the import fails as if not installed
    path = tmp_path / "none.png"
    assert save_figure(str(path), lambda axes: None) is None and not path.exists()
    assert save_figure(None, lambda axes: None) is None


def test_progress_bar_is_silent_off_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with progress_bar(10, "steps") as bar:
        bar.update(5)
    assert err.getvalue() == ""


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
    out, rows, _ = quick_wz1989
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
    out, rows, _ = quick_wz1989
    assert "Oscillators learned online" in out and "sine, period 25" in out
    assert rows[("0101...", True)]["success"] == 1.0
    assert rows[("00110011...", True)]["success"] == 1.0
    assert rows[("00110011...", False)]["success"] == 0.0  # without forcing it is much harder


def test_oscillators_quick():
    rows = _rows(oscillators.run(seeds=2, max_steps=5_000))
    assert rows[("0101...", True)]["success"] == 1.0
    assert rows[("0101...", True)]["median_steps"] < rows[("0101...", False)]["median_steps"]


def test_wz1989_quick_writes_the_learning_curves(quick_wz1989):
    out, rows, plot = quick_wz1989
    _assert_png(plot)
    assert (f"Plot written to {plot}" in out) == HAVE_MATPLOTLIB
    row = rows[("flip-flop", True)]
    assert len(row["curves"]) == wz1989.QUICK["seeds"]
    for curve in row["curves"]:  # one point per check of 100 steps, ending where it learned
        assert [n for n, _ in curve] == list(range(100, curve[-1][0] + 1, 100))
        assert curve[-1][1] < curve[0][1]
    assert np.median([curve[-1][0] for curve in row["curves"]]) == row["median_steps"]


# -- forecast -------------------------------------------------------------------------------------------
def test_mackey_glass_series():
    s = forecast.mackey_glass(3000, seed=0)
    assert s.shape == (3000,) and np.isfinite(s).all()
    assert abs(s.mean()) < 1e-9 and abs(s.std() - 1) < 1e-9
    np.testing.assert_array_equal(s, forecast.mackey_glass(3000, seed=0))
    assert not np.array_equal(s, forecast.mackey_glass(3000, seed=1))
    # chaotic, not periodic or damped: it keeps varying, and last-value prediction is poor but not useless
    assert 0.1 < forecast.nmse(s[:-1], s[1:]) < 0.4
    assert s[-500:].std() > 0.8 and s.max() - s.min() > 3.0


@pytest.fixture(scope="module")
def quick_forecast(tmp_path_factory):
    plot = tmp_path_factory.mktemp("forecast") / "forecast.png"
    rows, out = _quietly(forecast.main, quick=True, plot_path=str(plot))
    return {r["learner"]: r for r in rows}, out, plot


def test_forecast_quick_rtrl_learns(quick_forecast):
    rows, out, plot = quick_forecast
    baseline = rows["last value"]["nmse"]
    assert 0.1 < baseline < 0.3
    assert rows["RTRL (every step)"]["nmse"] < 0.2 * baseline   # measured: 0.016 against 0.19
    for k in (4, 16, 64):
        assert rows[f"BPTT, k={k}"]["nmse"] < baseline and rows[f"BPTT, k={k}"]["us_per_step"] > 0
    assert "RTRL (every step)" in out and "BPTT, k=64" in out
    _assert_png(plot)


def test_forecast_same_seed_same_errors():
    runs = [forecast.run(steps=1024, hidden=4, windows=(8,), window=500)[0] for _ in range(2)]
    assert [r["nmse"] for r in runs[0]] == [r["nmse"] for r in runs[1]]


# -- reber ---------------------------------------------------------------------------------------------
# The automaton of Reber's grammar, written out edge by edge: "state symbol next-state"; 6 then emits E.
REBER_EDGES = "1T2 1P3 2S2 2X4 3T3 3V5 4X3 4S6 5P4 5V6"


def _reber_paths(inner: str) -> list[set[str]] | None:
    """The legal next symbols after each symbol of a Reber string, or None if it is not one."""
    edges = {(e[0], e[1]): e[2] for e in REBER_EDGES.split()}
    if len(inner) < 5 or inner[0] != "B" or inner[-1] != "E":
        return None
    state, legal = "1", [{"T", "P"}]
    for ch in inner[1:-1]:
        if (state, ch) not in edges:
            return None
        state = edges[(state, ch)]
        legal.append({"E"} if state == "6" else {c for (s, c) in edges if s == state})
    return legal if state == "6" else None


def test_reber_strings_follow_the_grammar():
    rng = np.random.default_rng(0)
    strings = [reber.embedded_reber_string(rng) for _ in range(500)]
    for s in strings:
        assert s[0] == "B" and s[-1] == "E" and s[1] in "TP" and s[-2] == s[1]
        inner = _reber_paths(s[2:-2])
        assert inner is not None, s
        assert reber.legal_next(s) == [{"T", "P"}, {"B"}] + inner + [{s[1]}, {"E"}]
    assert {s[1] for s in strings} == {"T", "P"}
    assert len({s[2:-2] for s in strings}) > 50
    X, y = reber.encode(strings[0])
    assert X.shape == (len(strings[0]), 7) and (X.sum(1) == 1).all()
    assert y[-1] == -1 and "".join(reber.SYMBOLS[i] for i in y[:-1]) == strings[0][1:]


def test_reber_quick_learns_the_long_lag(tmp_path):
    plot = tmp_path / "reber.png"
    rows, out = _quietly(reber.main, quick=True, plot_path=str(plot))
    (row,) = rows
    assert row["curve"][0][1:] == (0.0, 0.0)             # untrained: nothing right
    assert row["correct"] >= 0.8 and row["penultimate"] >= 0.9  # measured: 1.0 and 1.0
    assert "penultimate" in out and "Criterion" in out
    _assert_png(plot)


# -- text ----------------------------------------------------------------------------------------------
def test_text_corpus_is_deterministic():
    a, b = text.corpus(), text.corpus()
    assert a == b and len(a) > 50_000 and "def " in a
    assert set(a) <= set(text.ALPHABET) and len(text.ALPHABET) == 96
    assert text.clean("\tx\u00e9") == "    x?"
    idx = text.encode(a[:1000])
    assert "".join(text.ALPHABET[i] for i in idx) == a[:1000]


def test_text_quick_learns_and_samples(tmp_path):
    plot = tmp_path / "text.png"
    result, out = _quietly(text.main, quick=True, plot_path=str(plot))
    bpc = [b for _, b in result["curve"]]
    assert bpc[-1] < bpc[0] - 1.0                                    # measured: 5.66 -> 3.99
    assert result["held_out_after"] < result["held_out_before"] - 1.0  # measured: 6.58 -> 5.01
    assert len(result["sample"]) == text.QUICK["sample_length"]
    assert set(result["sample"]) <= set(text.ALPHABET)
    assert result["sample"] in out and "bits per char" in out
    _assert_png(plot)


def test_online_demo_ranks_the_learners(tmp_path, capsys, monkeypatch):
    """Quick mode, shortened: every learner runs the curriculum; exact RTRL passes delay 2 at least
    and reaches no shorter delay than SnAp-1, e-prop and UORO, which ignore or blur its long paths."""
    from rtrl.demos import online

    monkeypatch.setattr(online, "QUICK", dict(steps=2500, seeds=1))
    rows = {r["learner"]: r for r in DEMOS["online"].main(quick=True, plot_path=str(tmp_path / "online.png"))}
    out = capsys.readouterr().out
    assert set(rows) == set(online.LEARNERS) and "delay reached" in out
    assert rows["RTRL"]["delay"] >= 2
    assert all(rows["RTRL"]["delay"] >= rows[k]["delay"] for k in ("SnAp-1", "e-prop", "UORO"))
    assert all(r["us_per_step"] > 0 and len(r["curves"][0]) == 10 for r in rows.values())
    try:
        __import__("matplotlib")
    except ImportError:
        return
    assert (tmp_path / "online.png").read_bytes()[:4] == b"\x89PNG"
