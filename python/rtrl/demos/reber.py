"""The embedded Reber grammar (Hochreiter & Schmidhuber 1997) learned online by RTRL on an LSTM.

A Reber string is a walk through a small finite automaton from B to E; an embedded Reber string is
B, then T or P, then a Reber string, then the same T or P again, then E. The symbol after the inner
string's E (the penultimate symbol) depends only on the second symbol, read many steps earlier:
predicting it needs a memory across the whole inner string.

The network reads the symbols one-hot and predicts the next symbol (softmax outputs, cross-entropy
on the symbol that actually follows: the outputs learn the probabilities of the legal next symbols,
0.5 each where there are two). Learning is online with real-time RTRL, one string after another,
resetting the state (and the sensitivities) between strings.

Criterion: at a step the prediction is correct when the symbols with output probability above
``threshold`` are exactly the legal next symbols; a held-out string is correct when every one of its
predictions is; its penultimate symbol is correct when that step's prediction is. The held-out
strings are drawn afresh from the grammar with their own random stream (the shortest strings are
common and also occur in training).
"""

from __future__ import annotations

import time

import numpy as np

from ..learners import BPTT, RTRL
from ..models import RecurrentNet
from ..optim import Adam
from .plotting import check_output_path, report_figure, save_figure
from .progress import progress_bar
from .verdict import check_seeds, finish

SYMBOLS = "BTPSXVE"
HIDDEN, LR, THRESHOLD = 16, 5e-3, 0.25
# The Reber automaton: state -> ((symbol, next state), (symbol, next state)); state 6 emits E and ends.
GRAPH = {1: (("T", 2), ("P", 3)), 2: (("S", 2), ("X", 4)), 3: (("T", 3), ("V", 5)),
         4: (("X", 3), ("S", 6)), 5: (("P", 4), ("V", 6))}


def reber_string(rng: np.random.Generator) -> str:
    """One Reber string, B...E, each of the two branches taken with probability 1/2."""
    out, state = ["B"], 1
    while state != 6:
        symbol, state = GRAPH[state][rng.integers(2)]
        out.append(symbol)
    return "".join(out) + "E"


def embedded_reber_string(rng: np.random.Generator) -> str:
    """One embedded Reber string: B, T or P, a Reber string, the same T or P, E."""
    branch = "TP"[rng.integers(2)]
    return "B" + branch + reber_string(rng) + branch + "E"


def legal_next(string: str) -> list[set[str]]:
    """For every prefix ``string[:t+1]`` (t < len - 1) of an embedded Reber string, the set of legal
    next symbols (from the grammar, following the string's own path)."""
    branch, sets = string[1], [{"T", "P"}]          # after B: the branch
    sets.append({"B"})                               # after the branch: the inner B
    state = 1
    sets.append({s for s, _ in GRAPH[state]})        # after the inner B
    for symbol in string[3:-3]:
        state = dict(GRAPH[state])[symbol]
        sets.append({"E"} if state == 6 else {s for s, _ in GRAPH[state]})
    sets.append({branch})                            # after the inner E: the branch again
    sets.append({"E"})
    return sets


def encode(string: str) -> tuple[np.ndarray, np.ndarray]:
    """One-hot inputs (len, 7) for every symbol and the class of the next symbol (-1 after the last)."""
    idx = np.array([SYMBOLS.index(c) for c in string])
    X = np.eye(len(SYMBOLS), dtype=np.float32)[idx]
    return X, np.append(idx[1:], -1)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def evaluate(net: RecurrentNet, strings: list[str], threshold: float) -> tuple[float, float]:
    """Fractions of ``strings`` predicted correctly throughout, and at the penultimate symbol, by
    ``net`` with its weights held fixed."""
    probe = BPTT(net)
    whole = penultimate = 0
    for s in strings:
        probe.reset()
        p = softmax(np.asarray(probe.run(encode(s)[0]).outputs))[:-1]
        ok = [{SYMBOLS[i] for i in np.flatnonzero(row > threshold)} == legal for row, legal in zip(p, legal_next(s))]
        whole += all(ok)
        penultimate += ok[-2]
    return whole / len(strings), penultimate / len(strings)


def run(*, strings: int = 6000, hidden: int = HIDDEN, lr: float = LR, held_out: int = 500,
        check_every: int = 1000, threshold: float = THRESHOLD, seeds: int = 1, progress: bool = False) -> list[dict]:
    """Trains one network per seed on ``strings`` training strings, evaluating every ``check_every``.

    Returns
    -------
    list of dict
        One per seed: ``seed``, ``strings``, ``correct`` and ``penultimate`` (fractions of the held-out
        strings, after training), ``curve`` [(strings seen, correct, penultimate), ...].
    """
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        test_rng = np.random.default_rng([seed, 1])
        test = [embedded_reber_string(test_rng) for _ in range(held_out)]
        net = RecurrentNet("lstm", len(SYMBOLS), hidden, len(SYMBOLS), seed=seed, device="cpu")
        learner = RTRL(net, optimizer=Adam(lr), loss="cross_entropy")
        curve = [(0, *evaluate(net, test, threshold))]
        with progress_bar(strings, f"seed {seed}", progress, unit="string") as bar:
            for n in range(1, strings + 1):
                learner.reset()
                learner.run(*encode(embedded_reber_string(rng)))
                bar.update()
                if n % check_every == 0:
                    curve.append((n, *evaluate(net, test, threshold)))
        rows.append({"seed": seed, "strings": strings, "correct": curve[-1][1], "penultimate": curve[-1][2],
                     "curve": curve})
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'seed':>4} {'strings':>8} {'held-out strings correct':>25} {'penultimate correct':>20}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['seed']:>4} {r['strings']:>8} {r['correct']:>25.1%} {r['penultimate']:>20.1%}")
    return "\n".join(lines)


def plot(path: str | None, rows: list[dict]) -> str | None:
    """The held-out fractions against the training strings seen, one line per seed."""
    def draw(axes):
        for r in rows:
            n, correct, penultimate = np.array(r["curve"]).T
            line, = axes[0].plot(n, correct, label=f"seed {r['seed']}: whole string")
            axes[0].plot(n, penultimate, "--", color=line.get_color(), label=f"seed {r['seed']}: penultimate")
        axes[0].set(xlabel="training strings", ylabel="held-out fraction correct", ylim=(-0.02, 1.02),
                    title="Embedded Reber grammar, LSTM + real-time RTRL")
        axes[0].legend(fontsize=7)
    return save_figure(path, draw)


FULL = dict(strings=6000, held_out=500, check_every=500, seeds=3)
QUICK = dict(strings=3000, held_out=200, check_every=500, seeds=1)  # what ``main(quick=True)`` runs
LEARNED = 0.95  # the verdict counts a network as having learned when this fraction of strings is right


def verdict(rows: list[dict]) -> str:
    """How many networks learned the grammar (at least ``LEARNED`` of the held-out strings right at
    every step), with the mean fractions over the seeds."""
    learned = sum(r["correct"] >= LEARNED for r in rows)
    return (f"{learned}/{len(rows)} networks learned the grammar (at least {LEARNED:.0%} of the held-out "
            f"strings right at every step); held-out strings right {np.mean([r['correct'] for r in rows]):.1%}, "
            f"penultimate symbol {np.mean([r['penultimate'] for r in rows]):.1%}")


def main(seeds: int | None = None, quick: bool = False, plot_path: str | None = None,
         progress: bool = False) -> list[dict]:
    """Runs the demo and prints its table, then the figure's file and the verdict.

    Parameters
    ----------
    seeds : int, optional
        Networks, one after another (default 3, or 1 with ``quick``).
    quick : bool
        The smaller run, ``QUICK``.
    plot_path : str, optional
        The PNG of the held-out fractions against the strings seen; None draws nothing.
    progress : bool
        A progress bar on a terminal.
    """
    started = time.perf_counter()
    config = QUICK if quick else FULL
    config = dict(config, seeds=check_seeds(seeds, config["seeds"]))
    if plot_path is not None:
        check_output_path(plot_path, "plot_path")
    print(__doc__.strip().splitlines()[0])
    print(f"LSTM, {HIDDEN} hidden units, Adam lr={LR}, {config['strings']} training strings per seed, "
          f"{config['held_out']} held-out strings.")
    print(f"Criterion: at every step the symbols with softmax output above {THRESHOLD} are exactly "
          "the legal next symbols.\n")
    rows = run(**config, progress=progress)
    print(format_table(rows))
    if plot_path is not None:
        report_figure(plot_path, plot(plot_path, rows))
    finish(verdict(rows), started)
    return rows
