"""Online next-step forecasting of the Mackey-Glass chaotic series: RTRL against truncated BPTT.

The series comes from the delay differential equation dx/dt = 0.2 x(t-tau) / (1 + x(t-tau)^10) - 0.1 x(t)
with tau = 17 (chaotic), integrated by Euler's method with step 0.1 and sampled every 3 time units,
then normalised to zero mean and unit variance. Each learner reads the stream one value at a time and
must predict the next value; it learns while it predicts (the prediction for step t is made before the
target of step t is used). All learners train an identical LSTM ``RecurrentNet`` (same seed, same
initial weights) with Adam at the same learning rate: RTRL updates after every step with the exact
gradient; truncated BPTT with window k updates after every k steps with the gradient of that window
(k times fewer updates, so the best learning rate differs: the table shows more than one).

Reported: the normalised mean squared error (MSE / variance of the targets) of the predictions over
the last ``window`` steps of the stream, next to predicting the last value (x(t+1) = x(t)), and the
time per step.
"""

from __future__ import annotations

import time
from typing import Iterable

import numpy as np

from ..learners import BPTT, RTRL
from ..models import RecurrentNet
from ..optim import Adam
from .plotting import check_output_path, report_figure, save_figure
from .progress import progress_bar
from .verdict import check_seeds, finish

BLOCK = 1024  # steps per call of learner.run (a multiple of every truncation window)
TAIL = 150    # steps of prediction against truth in the figure


def mackey_glass(n: int, *, tau: float = 17.0, dt: float = 0.1, sample_every: float = 3.0,
                 warmup: float = 500.0, seed: int = 0) -> np.ndarray:
    """``n`` samples of the Mackey-Glass series, normalised to zero mean and unit variance.

    Parameters
    ----------
    n : int
        Number of samples.
    tau : float
        The delay (17 gives a chaotic series).
    dt : float
        Euler integration step.
    sample_every : float
        Time between samples (a multiple of ``dt``).
    warmup : float
        Time integrated and discarded before the first sample.
    seed : int
        Seeds the initial history, 1.2 plus uniform noise in [-0.1, 0.1].

    Returns
    -------
    ndarray (n,), float64
    """
    rng = np.random.default_rng(seed)
    lag, every = int(round(tau / dt)), int(round(sample_every / dt))
    skip = int(round(warmup / dt))
    total = skip + n * every
    x = np.empty(lag + 1 + total)
    x[:lag + 1] = 1.2 + 0.2 * (rng.random(lag + 1) - 0.5)
    for t in range(lag, lag + total):
        d = x[t - lag]
        x[t + 1] = x[t] + dt * (0.2 * d / (1.0 + d ** 10) - 0.1 * x[t])
    s = x[lag + 1 + skip::every][:n]
    return (s - s.mean()) / s.std()


def nmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error divided by the variance of the target."""
    return float(np.mean((prediction - target) ** 2) / np.var(target))


def learners(hidden: int, seed: int, lr: float, windows: Iterable[int]) -> dict[str, RTRL | BPTT]:
    """RTRL and truncated BPTT (one per window), each on its own copy of the same LSTM."""
    def net() -> RecurrentNet:
        return RecurrentNet("lstm", 1, hidden, 1, seed=seed, device="cpu")
    out: dict[str, RTRL | BPTT] = {"RTRL (every step)": RTRL(net(), optimizer=Adam(lr))}
    for k in windows:
        out[f"BPTT, k={k}"] = BPTT(net(), truncation=k, optimizer=Adam(lr))
    return out


def run(*, steps: int = 20_480, hidden: int = 16, lrs: Iterable[float] = (2e-3, 5e-3),
        windows: Iterable[int] = (4, 16, 64), window: int = 1000, seeds: int = 1,
        progress: bool = False) -> tuple[list[dict], dict]:
    """Trains every learner online on the same stream (one stream per seed), at each learning rate.

    Returns
    -------
    rows : list of dict
        One per (seed, learning rate, learner): ``learner``, ``seed``, ``lr``, ``nmse`` (last
        ``window`` steps), ``us_per_step``; first a "last value" row per seed.
    trace : dict
        For the plot (seed 0, the first learning rate): ``target`` (steps,), ``predictions``
        {learner: (steps,)}, ``lr``.
    """
    windows = tuple(windows)
    rows, trace = [], {}
    for seed in range(seeds):
        s = mackey_glass(steps + 1, seed=seed).astype(np.float32)
        X, Y = s[:-1, None], s[1:, None]
        rows.append({"learner": "last value", "seed": seed, "lr": None, "nmse": nmse(X[-window:], Y[-window:]),
                     "us_per_step": None})
        for lr in lrs:
            predictions = {}
            for name, learner in learners(hidden, seed, lr, windows).items():
                outputs, elapsed = [], 0.0
                with progress_bar(steps, f"{name}, lr {lr:g}, seed {seed}", progress, unit="step") as bar:
                    for start in range(0, steps, BLOCK):
                        t0 = time.perf_counter()
                        result = learner.run(X[start:start + BLOCK], Y[start:start + BLOCK])
                        elapsed += time.perf_counter() - t0
                        outputs.append(result.outputs[:, 0])
                        bar.update(len(result.outputs))
                predictions[name] = np.concatenate(outputs)
                rows.append({"learner": name, "seed": seed, "lr": lr,
                             "nmse": nmse(predictions[name][-window:], Y[-window:, 0]),
                             "us_per_step": elapsed / steps * 1e6})
            if not trace:
                trace = {"target": Y[:, 0], "predictions": predictions, "lr": lr}
    return rows, trace


def format_table(rows: list[dict], window: int) -> str:
    head = f"{'learner':<18} {'seed':>4} {'lr':>7} {'NMSE, last ' + str(window):>16} {'us/step':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        us = "-" if r["us_per_step"] is None else f"{r['us_per_step']:.1f}"
        lr = "-" if r["lr"] is None else f"{r['lr']:g}"
        lines.append(f"{r['learner']:<18} {r['seed']:>4} {lr:>7} {r['nmse']:>16.4f} {us:>9}")
    return "\n".join(lines)


def plot(path: str | None, trace: dict) -> str | None:
    """Prediction against truth over the last ``TAIL`` steps (the truth drawn on top, dashed), and the
    running NMSE (windows of 500 steps)."""
    target, predictions = trace["target"], trace["predictions"]

    def draw(axes):
        tail = slice(len(target) - TAIL, len(target))
        steps = np.arange(len(target))[tail]
        for name, p in predictions.items():
            axes[0].plot(steps, p[tail], lw=1.8, alpha=0.75, label=name)
        # the truth last and on top, thin and dashed: visible where a prediction lies on it
        axes[0].plot(steps, target[tail], color="k", lw=1.2, ls=(0, (4, 2)), zorder=3, label="truth")
        axes[0].set(title=f"Mackey-Glass, next-step prediction (last {TAIL} steps), Adam lr={trace['lr']:g}",
                    xlabel="step")
        handles, labels = axes[0].get_legend_handles_labels()  # truth first, outside the data
        axes[0].legend(handles[-1:] + handles[:-1], labels[-1:] + labels[:-1], fontsize=7, ncol=len(labels),
                       loc="upper center", bbox_to_anchor=(0.5, -0.2))
        w = 500
        for name, p in predictions.items():
            starts = np.arange(0, len(target) - w + 1, w)
            axes[1].plot(starts + w, [nmse(p[i:i + w], target[i:i + w]) for i in starts], label=name)
        axes[1].set(yscale="log", xlabel="step", ylabel=f"NMSE over {w} steps", title="learning curves")
        axes[1].legend(fontsize=7)
    return save_figure(path, draw, panels=2)


def verdict(rows: list[dict]) -> str:
    """Which learner predicts best, by its NMSE (mean over the seeds, at its best learning rate), next
    to the other learners' and the last value's."""
    def mean_nmse(name: str, lr: float | None) -> float:
        return float(np.mean([r["nmse"] for r in rows if r["learner"] == name and r["lr"] == lr]))

    last = mean_nmse("last value", None)
    best = {name: min(mean_nmse(name, r["lr"]) for r in rows if r["learner"] == name)
            for name in dict.fromkeys(r["learner"] for r in rows if r["lr"] is not None)}
    winner = min(best, key=best.get)
    others = "; ".join(f"{n} {best[n]:.4f}" for n in best if n != winner)
    if best[winner] >= last:
        return f"no learner beats the last value (NMSE {last:.4f}); the best is {winner}, {best[winner]:.4f}"
    return (f"{winner} predicts best, NMSE {best[winner]:.4f} ({last / best[winner]:.0f}x better than the last "
            f"value's {last:.4f}){'; the others: ' + others if others else ''}")


FULL = dict(steps=20_480, hidden=16, lrs=(2e-3, 5e-3), window=1000)
QUICK = dict(steps=4096, hidden=8, lrs=(1e-2,), window=1000)  # what ``main(quick=True)`` runs


def main(seeds: int | None = None, quick: bool = False, plot_path: str | None = None,
         progress: bool = False) -> list[dict]:
    """Runs the demo and prints its table, then the figure's file and the verdict.

    Parameters
    ----------
    seeds : int, optional
        Streams (and networks), one after another (default 1).
    quick : bool
        The smaller run, ``QUICK``.
    plot_path : str, optional
        The PNG of prediction against truth and of the learning curves; None draws nothing.
    progress : bool
        A progress bar on a terminal.
    """
    started = time.perf_counter()
    seeds = check_seeds(seeds, 1)
    if plot_path is not None:
        check_output_path(plot_path, "plot_path")
    print(__doc__.strip().splitlines()[0])
    config = QUICK if quick else FULL
    print(f"LSTM, {config['hidden']} hidden units, Adam, {config['steps']} steps of one stream; "
          f"NMSE = MSE / variance over the last {config['window']} steps.\n")
    rows, trace = run(**config, seeds=seeds, progress=progress)
    print(format_table(rows, config["window"]))
    if plot_path is not None:
        report_figure(plot_path, plot(plot_path, trace))
    finish(verdict(rows), started)
    return rows
