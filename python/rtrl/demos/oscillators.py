"""Oscillators learned online by exact RTRL (Williams & Zipser 1989, section 4).

A fully recurrent network with no external input, a bias line and logistic units learns to produce a
periodic sequence on its visible unit. With teacher forcing, the visible unit is replaced by its
target while it learns; afterwards it must run free, feeding back its own output. Without teacher
forcing it must learn from its own (wrong) outputs from the start, which is much harder.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..learners import RTRL
from ..models import FullyRecurrent
from .plotting import check_output_path, report_figure, save_figure
from .progress import progress_bar
from .verdict import check_seeds, finish, learned_counts


@dataclass(frozen=True)
class Task:
    name: str
    units: int
    lr: float
    target: Callable[[np.ndarray], np.ndarray]  # time steps -> target values of the visible unit
    period: int
    tolerance: float  # free-running outputs must stay within this distance of the target


def _bits(pattern: Iterable[int]) -> Callable[[np.ndarray], np.ndarray]:
    values = 0.1 + 0.8 * np.asarray(list(pattern), dtype=np.float64)
    return lambda t: values[t % len(values)]


TASKS = (
    Task("0101...", 3, 1.0, _bits([0, 1]), 2, 0.25),
    Task("00110011...", 4, 1.0, _bits([0, 0, 1, 1]), 4, 0.25),
    Task("sine, period 25", 8, 3.0, lambda t: 0.5 + 0.4 * np.sin(2 * np.pi * t / 25), 25, 0.1),
)


def free_run_error(net: FullyRecurrent, learner: RTRL, task: Task, start: int) -> float:
    """Largest distance from the target over four periods of running free from the learner's state."""
    probe = RTRL(net)
    probe.state[...] = learner.state
    steps = 4 * task.period
    outputs = probe.run(np.zeros((steps, 0), dtype=net.dtype)).outputs[:, 0]
    return float(np.max(np.abs(outputs - task.target(np.arange(start, start + steps)))))


def learn(task: Task, *, teacher_forcing: bool, seed: int, max_steps: int, check_every: int,
          curve: list | None = None) -> int | None:
    """Trains one network online; returns the step count at which it first runs free within the
    tolerance (checked every ``check_every`` steps), or None if it never does. Appends
    (steps, mean loss per step of the last ``check_every`` steps) to ``curve`` when given."""
    net = FullyRecurrent(task.units, 0, n_outputs=1, seed=seed, init_scale=0.5, dtype="float64", device="cpu")
    learner = RTRL(net, lr=task.lr, teacher_forcing=teacher_forcing)
    for start in range(0, max_steps, check_every):
        t = np.arange(start, start + check_every)
        loss = learner.run(np.zeros((check_every, 0)), task.target(t)[:, None]).loss
        if curve is not None:
            curve.append((start + check_every, float(np.mean(loss))))
        if free_run_error(net, learner, task, start + check_every) < task.tolerance:
            return start + check_every
    return None


def run(*, seeds: int = 5, max_steps: int = 30_000, check_every: int = 100,
        tasks: Iterable[Task] = TASKS, progress: bool = False) -> list[dict]:
    """One row per (task, teacher forcing): success rate over ``seeds``, median steps to learn and
    the learning curve of every seed (``curves``)."""
    rows, tasks = [], tuple(tasks)
    with progress_bar(2 * len(tasks) * seeds, "oscillators", progress, unit="network") as bar:
        for task in tasks:
            for forcing in (True, False):
                learned, curves = [], []
                for s in range(seeds):
                    curves.append([])
                    learned.append(learn(task, teacher_forcing=forcing, seed=s, max_steps=max_steps,
                                         check_every=check_every, curve=curves[-1]))
                    bar.update()
                rows.append(table_row(task.name, task.units, forcing, learned,
                                      f"free-running |y - d| < {task.tolerance} over 4 periods", curves))
    return rows


def table_row(task: str, units: int, forcing: bool, learned: list, criterion: str,
              curves: list | None = None) -> dict:
    """A row of a demo table: the success rate over seeds and the median steps to learn, from the
    steps at which each seed learned (None: never); ``curves``, one [(steps, loss), ...] per seed."""
    hits = [n for n in learned if n is not None]
    return {"task": task, "units": units, "teacher_forcing": forcing, "success": len(hits) / len(learned),
            "seeds": len(learned), "median_steps": statistics.median(hits) if hits else None,
            "criterion": criterion, "curves": curves or []}


def format_table(rows: list[dict]) -> str:
    head = f"{'task':<18} {'units':>5} {'forcing':>8} {'learned':>9} {'median steps':>13}  criterion"
    lines = [head, "-" * len(head)]
    for r in rows:
        steps = "-" if r["median_steps"] is None else f"{r['median_steps']:.0f}"
        learned = f"{round(r['success'] * r['seeds'])}/{r['seeds']}"
        lines.append(f"{r['task']:<18} {r['units']:>5} {'yes' if r['teacher_forcing'] else 'no':>8} "
                     f"{learned:>9} {steps:>13}  {r['criterion']}")
    return "\n".join(lines)


def plot_curves(path: str | None, rows: list[dict], title: str) -> str | None:
    """One panel per task: the mean loss per step of every seed against the training steps (until
    it learned), solid with teacher forcing, dashed without."""
    names = list(dict.fromkeys(r["task"] for r in rows))

    def draw(axes):
        for ax, name in zip(axes, names):
            for r in (r for r in rows if r["task"] == name):
                style = dict(color="C0", ls="-") if r["teacher_forcing"] else dict(color="C3", ls="--")
                for i, curve in enumerate(r["curves"]):
                    if curve:
                        steps, loss = np.array(curve).T
                        label = ("forcing" if r["teacher_forcing"] else "no forcing") if i == 0 else None
                        ax.plot(steps, loss, lw=0.8, label=label, **style)
            ax.set(title=name, xlabel="steps", ylabel="mean loss per step", yscale="log")
            ax.legend(fontsize=7)
        axes[0].figure.suptitle(title)
    return save_figure(path, draw, panels=len(names), columns=2, size=(5.0, 3.0))


FULL = dict(seeds=5, max_steps=30_000)
QUICK = dict(seeds=2, max_steps=5_000)  # what ``main(quick=True)`` runs; ``seeds`` replaces its seeds


def report(seeds: int | None = None, quick: bool = False, progress: bool = False) -> list[dict]:
    """Prints the heading and the table of a run (``FULL``, or ``QUICK`` when ``quick``; ``seeds``
    networks per task when given) and returns its rows; no figure, no verdict."""
    config = QUICK if quick else FULL
    config = dict(config, seeds=check_seeds(seeds, config["seeds"]))
    print(__doc__.strip().splitlines()[0])
    print("Real-time RTRL, logistic units, a bias line, no inputs; one row per task and forcing.\n")
    rows = run(**config, progress=progress)
    print(format_table(rows))
    return rows


def main(seeds: int | None = None, quick: bool = False, plot_path: str | None = None,
         progress: bool = False) -> list[dict]:
    """Runs the demo and prints its table, then the figure's file and the verdict.

    Parameters
    ----------
    seeds : int, optional
        Networks per task and forcing (default 5, or 2 with ``quick``).
    quick : bool
        The smaller run, ``QUICK``.
    plot_path : str, optional
        The PNG of the learning curves; None draws nothing.
    progress : bool
        A progress bar on a terminal.
    """
    started = time.perf_counter()
    if plot_path is not None:
        check_output_path(plot_path, "plot_path")
    rows = report(seeds, quick, progress)
    if plot_path is not None:
        report_figure(plot_path, plot_curves(plot_path, rows, "Oscillators, real-time RTRL"))
    finish(learned_counts(rows), started)
    return rows
