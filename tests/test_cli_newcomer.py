"""What a newcomer meets first on the command line: its usage errors, its version and help, figures
and output files refused before any run, ``--seeds`` with ``--quick``, the demos' closing verdict,
the forecast figure's truth line, and the summary pytest prints."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import rtrl
from rtrl import cli
from rtrl.demos import DEMOS, forecast, online, oscillators, plotting, reber, text, verdict, wz1989

HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
VERDICT = re.compile(r"^Verdict: .+\. Total time \d+\.\d s\.$")
# What the demos' quick runs shrink to here: a few hundred milliseconds each, learned or not.
TINY = {
    oscillators: dict(seeds=1, max_steps=200),
    wz1989: dict(seeds=1, max_steps=200),
    forecast: dict(steps=1024, hidden=4, lrs=(1e-2,), window=500, windows=(8,)),
    reber: dict(strings=20, held_out=10, check_every=10, seeds=1),
    text: dict(steps=64, streams=2, report_every=32, sample_length=8),
    online: dict(steps=300, seeds=1),
}
PLOTS = {"wz1989": (oscillators, "plot_curves"), "oscillators": (oscillators, "plot_curves"),
         "forecast": (forecast, "plot"), "reber": (reber, "plot"), "text": (text, "plot"),
         "online": (online, "plot_curves")}


@pytest.fixture
def tiny(monkeypatch):
    for module, config in TINY.items():
        monkeypatch.setattr(module, "QUICK", config)


def _spy_runs(monkeypatch, *modules) -> list[tuple[str, dict]]:
    """Records the keyword arguments of every ``run`` of ``modules`` (which still runs)."""
    calls: list[tuple[str, dict]] = []
    for module in modules:
        real = module.run

        def spy(*args, _real=real, _name=module.__name__.rsplit(".", 1)[-1], **kwargs):
            calls.append((_name, kwargs))
            return _real(*args, **kwargs)
        monkeypatch.setattr(module, "run", spy)
    return calls


def _usage_error(argv: list[str], capsys) -> str:
    """Runs ``rtrl ARGV``, which must exit with argparse's usage status 2; returns its stderr."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


# -- the command itself ----------------------------------------------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"rtrl {rtrl.__version__}\n"


def test_bare_command_prints_the_help_and_exits_2(capsys):
    """Without a command: the whole help (not only the usage line) on stderr, status 2 as for any
    usage error; ``--help`` asks for it and gets it on stdout with status 0."""
    assert cli.main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: rtrl")
    for word in ("info", "demo", "bench", "--version", "Exact online learning"):
        assert word in captured.err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0 and capsys.readouterr().out == captured.err


def test_python_dash_m_without_a_command():
    done = subprocess.run([sys.executable, "-m", "rtrl"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == "" and done.stderr.startswith("usage: rtrl") and "Exact online learning" in done.stderr


# -- --seeds ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["demo", "oscillators", "--seeds", "0"],
                                  ["demo", "forecast", "--seeds", "0", "--no-plot"],
                                  ["demo", "--quick", "--seeds", "-2"],
                                  ["demo", "reber", "--seeds", "two"]])
def test_seeds_below_one_are_usage_errors(argv, capsys, monkeypatch):
    calls = _spy_runs(monkeypatch, *TINY)
    err = _usage_error(argv, capsys)
    assert "argument --seeds: expected an integer >= 1" in err and repr(argv[argv.index("--seeds") + 1]) in err
    assert calls == []


@pytest.mark.parametrize("name", sorted(DEMOS))
def test_demo_mains_refuse_seeds_below_one(name, monkeypatch):
    calls = _spy_runs(monkeypatch, *TINY)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        for bad in (0, -1, 1.5, True):
            with pytest.raises(ValueError, match=r"^seeds: expected an integer >= 1"):
                DEMOS[name].main(seeds=bad, quick=True)
    assert calls == [] and out.getvalue() == ""


@pytest.mark.parametrize("task, runs", [("oscillators", ["oscillators"]), ("wz1989", ["wz1989", "oscillators"]),
                                        ("forecast", ["forecast"]), ("reber", ["reber"])])
def test_seeds_are_honoured_with_quick(task, runs, tiny, monkeypatch, capsys):
    calls = _spy_runs(monkeypatch, *TINY)
    assert cli.main(["demo", task, "--quick", "--seeds", "3", "--no-plot", "--no-progress"]) == 0
    assert [name for name, _ in calls] == runs and all(kw["seeds"] == 3 for _, kw in calls)
    calls.clear()
    assert cli.main(["demo", task, "--quick", "--no-plot", "--no-progress"]) == 0  # the quick run's own
    own = {"oscillators": 1, "wz1989": 1, "forecast": 1, "reber": 1}
    assert [kw["seeds"] for _, kw in calls] == [own[name] for name in runs]
    capsys.readouterr()


def test_help_says_where_seeds_is_not_used(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    help_ = " ".join(capsys.readouterr().out.split())
    assert "--seeds N networks per task, at least 1, with or without --quick" in help_
    assert "text trains one network and does not use it" in help_


# -- figures: none with --no-plot, a bad --plot refused before the run -------------------------------
@pytest.mark.parametrize("task", sorted(DEMOS))
def test_no_plot_draws_nothing_and_every_demo_ends_with_its_verdict(task, tiny, monkeypatch, tmp_path, capsys):
    def fail(*args, **kwargs):
        raise AssertionError("a figure was drawn under --no-plot")
    module, attribute = PLOTS[task]
    monkeypatch.setattr(module, attribute, fail)
    monkeypatch.setattr(plotting, "save_figure", fail)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", task, "--quick", "--no-plot", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Plot written" not in out and "No plot" not in out
    assert list(tmp_path.iterdir()) == []
    lines = out.rstrip("\n").splitlines()
    assert VERDICT.match(lines[-1]), lines[-1]
    assert sum(line.startswith("Verdict:") for line in lines) == 1  # wz1989: one over both of its parts


def test_verdict_follows_the_plot_line(tiny, tmp_path, capsys):
    path = tmp_path / "curves.png"
    assert cli.main(["demo", "oscillators", "--quick", "--plot", str(path), "--no-progress"]) == 0
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    assert VERDICT.match(lines[-1])
    assert lines[-3] == (f"Plot written to {path}" if HAVE_MATPLOTLIB
                         else "(No plot: matplotlib is not installed; pip install matplotlib)")


@pytest.mark.parametrize("argv", [["demo", "--plot", "{missing}"], ["demo", "oscillators", "--quick", "--plot",
                                                                    "{missing}"],
                                  ["bench", "--quick", "--only", "rtrl", "--plot", "{missing}"],
                                  ["bench", "--quick", "--json", "{missing}"]])
def test_output_file_in_a_missing_directory_fails_before_the_run(argv, tmp_path, capsys, monkeypatch):
    import rtrl.bench

    missing = tmp_path / "no such dir" / "out.file"
    argv = [a.format(missing=missing) for a in argv]
    calls = _spy_runs(monkeypatch, *TINY)
    monkeypatch.setattr(rtrl.bench, "report", lambda *a, **k: calls.append(("bench", k)))
    started = time.perf_counter()
    err = _usage_error(argv, capsys)
    assert time.perf_counter() - started < 1.0  # the quick runs take seconds; this is parsing alone
    assert calls == []
    option = argv[-2]
    assert f"argument {option}: {missing}: the directory {missing.parent} does not exist" in err
    assert not missing.parent.exists()


def test_plot_that_is_a_directory_and_plot_with_no_plot_are_refused(tmp_path, capsys):
    assert "is a directory" in _usage_error(["demo", "--plot", str(tmp_path)], capsys)
    err = _usage_error(["demo", "--plot", str(tmp_path / "a.png"), "--no-plot"], capsys)
    assert "--no-plot: not allowed with argument --plot" in err
    err = _usage_error(["bench", "--plot", str(tmp_path / "a.png"), "--no-plot"], capsys)
    assert "--no-plot: not allowed with argument --plot" in err
    assert list(tmp_path.iterdir()) == []


def test_default_plot_in_an_unwritable_directory_is_refused_before_the_run(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setitem(DEMOS, "fake", type("Fake", (), {"main": staticmethod(lambda **kw: calls.append(kw))}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plotting.os, "access", lambda *args, **kwargs: False)
    assert cli.main(["demo", "fake"]) == 2
    err = capsys.readouterr().err
    assert "the default plot rtrl-demo-fake.png" in err and "is not writable" in err and "--no-plot" in err
    assert calls == []
    assert cli.main(["demo", "fake", "--no-plot"]) == 0 and calls[-1]["plot_path"] is None


@pytest.mark.parametrize("name", sorted(DEMOS))
def test_demo_mains_refuse_a_plot_path_they_cannot_write(name, tmp_path, monkeypatch):
    calls = _spy_runs(monkeypatch, *TINY)
    missing = tmp_path / "missing" / "x.png"
    with contextlib.redirect_stdout(io.StringIO()):
        with pytest.raises(ValueError, match=r"^plot_path .*x\.png: the directory .*missing does not exist"):
            DEMOS[name].main(quick=True, plot_path=str(missing))
    assert calls == []


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed")
def test_forecast_draws_the_truth_on_top(monkeypatch, tmp_path):
    """The truth is drawn last, above every prediction and dashed, so it shows where a good prediction
    lies on it; the legend lists it first."""
    axes = []

    def keep(path, draw, **kwargs):
        from matplotlib.figure import Figure
        axes.extend(Figure().subplots(2))
        draw(axes)
        return path
    monkeypatch.setattr(forecast, "save_figure", keep)
    _, trace = forecast.run(steps=1024, hidden=4, windows=(8,), window=500)
    forecast.plot(str(tmp_path / "f.png"), trace)
    lines = axes[0].get_lines()
    truth = lines[-1]
    assert truth.get_label() == "truth" and len(lines) == 1 + len(trace["predictions"])
    np.testing.assert_array_equal(truth.get_ydata(), trace["target"][-forecast.TAIL:])
    assert all(truth.get_zorder() > line.get_zorder() for line in lines[:-1])
    assert truth.get_linestyle() not in ("-", "solid")
    assert [t.get_text() for t in axes[0].get_legend().get_texts()][0] == "truth"


# -- verdicts -------------------------------------------------------------------------------------
def test_learned_counts():
    rows = [oscillators.table_row("a", 2, True, [100, None], "c"), oscillators.table_row("b", 2, True, [5, 6], "c"),
            oscillators.table_row("a", 2, False, [None, None], "c"), oscillators.table_row("b", 2, False, [7, None], "c")]
    assert verdict.learned_counts(rows) == "3/4 networks learned their task with teacher forcing, 1/4 without"


def test_forecast_verdict_names_the_best_learner():
    def rows(rtrl_nmse: float, bptt_nmse: float, last: float = 0.2) -> list[dict]:
        return [{"learner": "last value", "lr": None, "nmse": last},
                {"learner": "RTRL (every step)", "lr": 0.1, "nmse": rtrl_nmse},
                {"learner": "RTRL (every step)", "lr": 0.2, "nmse": 3 * rtrl_nmse},
                {"learner": "BPTT, k=4", "lr": 0.1, "nmse": bptt_nmse}]
    assert forecast.verdict(rows(0.01, 0.05)) == ("RTRL (every step) predicts best, NMSE 0.0100 (20x better than "
                                                  "the last value's 0.2000); the others: BPTT, k=4 0.0500")
    assert forecast.verdict(rows(0.05, 0.02)).startswith("BPTT, k=4 predicts best, NMSE 0.0200")
    assert forecast.verdict(rows(0.3, 0.4)).startswith("no learner beats the last value (NMSE 0.2000)")


def test_finish_prints_one_line_with_the_time(capsys):
    line = verdict.finish("it worked", time.perf_counter() - 2.0)
    assert VERDICT.match(line) and 2.0 <= float(line.split()[-2]) < 10
    assert capsys.readouterr().out == f"\n{line}\n"


# -- pytest's own summary ---------------------------------------------------------------------------
def test_pytest_summary_lists_skips_failures_and_errors():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    addopts = re.search(r'^addopts\s*=\s*"([^"]*)"', pyproject, re.M).group(1).split()
    (chars,) = [opt[2:] for opt in addopts if opt.startswith("-r")]
    assert set("fEs") <= set(chars)
