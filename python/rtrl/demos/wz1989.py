"""The tasks of Williams & Zipser (1989) learned online by real-time RTRL, with and without teacher forcing.

A fully recurrent network of logistic units with a bias line (rtrl.FullyRecurrent, float64, CPU,
initial weights uniform in [-0.3, 0.3]) reads one input vector per step and is trained after every step on
its single visible unit. ``outputs[t]`` is the visible unit's value computed from the input ``x(t)``
and the units at ``t`` (``y(t+1)`` in the paper's notation), so an answer that needs two layers of
logistic units must come one step later. Targets are 0 and 1; NaN where there is none.

Tasks
-----
pipelined XOR, delay tau
    Two random bits each step; ``outputs[t]`` must be the XOR of the bits read at ``t - tau + 1``
    (the paper's ``y(t + tau) = XOR(x(t))``): tau=2 is the shortest delay a two-layer XOR allows.
sequence recognition
    One-hot inputs over {a, b, c, d} (c, d are distractors). The output is 1 at the first b that
    follows an a (with any distractors between), then the context is reset (a new a is needed);
    otherwise 0. Target on every step.
delayed nonmatch to sample
    One-hot inputs "sample 0", "sample 1", "test 0", "test 1", "distractor". A trial is a sample
    (the bit to store), a delay of 1-3 distractor steps, a test bit, then one answer step whose
    target is 1 if the test bit differs from the stored sample, else 0 (no target elsewhere).
flip-flop
    Inputs "set" and "reset" (each on with probability 0.1 per step, never both); the output must
    be 1 from a set until the next reset and 0 from a reset until the next set (target on every
    step after the first set or reset).

Learned: every ``check_every`` steps a probe learner (no optimizer, no teacher forcing) starts from
the training learner's state and runs over the next ``window`` steps of the stream (not yet trained
on); the task counts as learned when every output with a target is within ``tolerance`` of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..learners import RTRL
from ..models import FullyRecurrent
from . import oscillators
from .plotting import check_output_path, report_figure
from .progress import progress_bar
from .verdict import check_seeds, finish, learned_counts

NAN = np.nan


# -- task streams: rng, steps -> (X (T, I), targets (T, 1), NaN = no target) -------------------------
def xor_stream(tau: int) -> Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]:
    def make(rng: np.random.Generator, steps: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.integers(0, 2, (steps, 2)).astype(np.float64)
        d = np.full(steps, NAN)
        d[tau - 1:] = np.logical_xor(X[:steps - tau + 1, 0], X[:steps - tau + 1, 1])
        return X, d[:, None]
    return make


def sequence_stream(rng: np.random.Generator, steps: int) -> tuple[np.ndarray, np.ndarray]:
    symbols = rng.integers(0, 4, steps)  # 0 = a, 1 = b, 2 = c, 3 = d
    X = np.eye(4)[symbols]
    d = np.zeros(steps)
    seen_a = False
    for t, s in enumerate(symbols):
        if s == 0:
            seen_a = True
        elif s == 1:
            d[t], seen_a = float(seen_a), False
    return X, d[:, None]


def dnms_stream(rng: np.random.Generator, steps: int, max_delay: int = 3) -> tuple[np.ndarray, np.ndarray]:
    X, d = np.zeros((steps, 5)), np.full(steps, NAN)
    t = 0
    while t < steps:
        sample, test, delay = rng.integers(0, 2), rng.integers(0, 2), rng.integers(1, max_delay + 1)
        rows = [sample] + [4] * delay + [2 + test, 4]  # sample, delay, test, answer step
        for i, r in enumerate(rows):
            if t + i < steps:
                X[t + i, r] = 1.0
        if t + len(rows) - 1 < steps:
            d[t + len(rows) - 1] = float(sample != test)
        t += len(rows)
    return X, d[:, None]


def flipflop_stream(rng: np.random.Generator, steps: int, p: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    u = rng.random(steps)
    X = np.zeros((steps, 2))
    X[u < p, 0] = 1.0                      # set
    X[(u >= p) & (u < 2 * p), 1] = 1.0     # reset
    d, state = np.full(steps, NAN), NAN
    for t in range(steps):
        if X[t, 0]:
            state = 1.0
        elif X[t, 1]:
            state = 0.0
        d[t] = state
    return X, d[:, None]


@dataclass(frozen=True)
class Task:
    name: str
    units: int
    n_inputs: int
    lr: float
    stream: Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]
    tolerance: float = 0.3
    window: int = 500


TASKS = (
    Task("XOR, tau=2", 3, 2, 1.0, xor_stream(2)),
    Task("XOR, tau=4", 8, 2, 2.0, xor_stream(4)),
    Task("sequence a..b", 3, 4, 2.0, sequence_stream),
    Task("nonmatch to sample", 8, 5, 4.0, dnms_stream),
    Task("flip-flop", 2, 2, 2.0, flipflop_stream),
)


def probe_error(net: FullyRecurrent, learner: RTRL, X: np.ndarray, d: np.ndarray) -> float:
    """Largest |output - target| over the steps with a target, running ``X`` with frozen weights and
    no teacher forcing from the learner's state."""
    probe = RTRL(net)
    probe.state[...] = learner.state
    outputs = probe.run(X).outputs
    mask = ~np.isnan(d)
    return float(np.max(np.abs(outputs[mask] - d[mask]))) if mask.any() else np.inf


def learn(task: Task, *, teacher_forcing: bool, seed: int, max_steps: int, check_every: int,
          curve: list | None = None) -> int | None:
    """Trains one network online on one stream; returns the training steps at which it first passes
    the probe (checked every ``check_every`` steps), or None if it never does. Appends (steps, mean
    loss per step of the last ``check_every`` steps) to ``curve`` when given."""
    net = FullyRecurrent(task.units, task.n_inputs, n_outputs=1, seed=seed, init_scale=0.3,
                         dtype="float64", device="cpu")
    learner = RTRL(net, lr=task.lr, teacher_forcing=teacher_forcing)
    X, d = task.stream(np.random.default_rng(seed), max_steps + task.window)
    for start in range(0, max_steps, check_every):
        stop = start + check_every
        loss = learner.run(X[start:stop], d[start:stop]).loss
        if curve is not None:
            curve.append((stop, float(np.mean(loss))))
        if probe_error(net, learner, X[stop:stop + task.window], d[stop:stop + task.window]) < task.tolerance:
            return stop
    return None


def run(*, seeds: int = 5, max_steps: int = 50_000, check_every: int = 100,
        tasks: Iterable[Task] = TASKS, forcing: Iterable[bool] = (True, False), progress: bool = False) -> list[dict]:
    """One row per (task, teacher forcing): success rate over ``seeds``, median steps to learn and
    the learning curve of every seed (``curves``)."""
    rows, forcing, tasks = [], tuple(forcing), tuple(tasks)
    with progress_bar(len(tasks) * len(forcing) * seeds, "1989 tasks", progress, unit="network") as bar:
        for task in tasks:
            for tf in forcing:
                learned, curves = [], []
                for s in range(seeds):
                    curves.append([])
                    learned.append(learn(task, teacher_forcing=tf, seed=s, max_steps=max_steps,
                                         check_every=check_every, curve=curves[-1]))
                    bar.update()
                rows.append(oscillators.table_row(task.name, task.units, tf, learned,
                                                  f"next {task.window} steps, frozen: |y - d| < {task.tolerance}",
                                                  curves))
    return rows


format_table = oscillators.format_table

FULL = dict(seeds=5, max_steps=50_000)
QUICK = dict(seeds=2, max_steps=30_000)  # what ``main(quick=True)`` runs (and the tests check)


def main(seeds: int | None = None, quick: bool = False, plot_path: str | None = None,
         progress: bool = False) -> list[dict]:
    """Runs the 1989 tasks, then the oscillators; prints their tables, the figure's file and one
    verdict over both.

    Parameters
    ----------
    seeds : int, optional
        Networks per task and forcing, for the 1989 tasks and the oscillators (default 5, or 2 with
        ``quick``).
    quick : bool
        The smaller runs, ``QUICK`` here and :data:`rtrl.demos.oscillators.QUICK`.
    plot_path : str, optional
        The PNG of the learning curves; None draws nothing.
    progress : bool
        A progress bar on a terminal.
    """
    started = time.perf_counter()
    config = QUICK if quick else FULL
    config = dict(config, seeds=check_seeds(seeds, config["seeds"]))
    if plot_path is not None:
        check_output_path(plot_path, "plot_path")
    print(__doc__.strip().splitlines()[0])
    print("Real-time RTRL, logistic units, a bias line; one row per task and teacher forcing.\n")
    rows = run(**config, progress=progress)
    print(format_table(rows))
    print()
    rows += oscillators.report(seeds=seeds, quick=quick, progress=progress)
    if plot_path is not None:
        report_figure(plot_path, oscillators.plot_curves(plot_path, rows, "Williams & Zipser 1989 tasks and "
                                                         "oscillators, real-time RTRL"))
    finish(learned_counts(rows), started)
    return rows
