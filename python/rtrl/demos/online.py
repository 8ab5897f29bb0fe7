"""Online learners side by side on delayed recall with a curriculum.

Each stream sees a random bit x(t) (as -1 or +1) and must output, as a class, the bit it saw d steps
ago. The delay starts at d = 1 and grows by one whenever a chunk of steps is recalled with at least
90% accuracy — the copy/delayed-recall curriculum of the online-learning literature (Mujika et al.
2018, Menick et al. 2021). Identical LSTMs (same initial weights, same data, same Adam) learn it with
exact RTRL, SnAp-1, e-prop, UORO, KF-RTRL and truncated BPTT in a fixed budget of steps; the table gives
the delay each reached and its cost per step.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import optim
from ..learners import BPTT, RTRL
from ..models import RecurrentNet
from ..traces import EProp, SnAp
from ..uoro import KFRTRL, UORO
from .plotting import check_output_path, report_figure, save_figure
from .progress import progress_bar
from .verdict import check_seeds, finish

HIDDEN, STREAMS, CHUNK, PASS = 16, 8, 250, 0.9
LEARNERS = ("RTRL", "SnAp-1", "e-prop", "UORO", "KF-RTRL", "BPTT(8)")


def make_learner(name: str, seed: int, lr: float) -> Any:
    net = RecurrentNet("lstm", 1, HIDDEN, 2, seed=seed, device="cpu")
    common = dict(optimizer=optim.Adam(lr), loss="cross_entropy", batch_size=STREAMS)
    if name == "RTRL":
        return RTRL(net, **common)
    if name == "SnAp-1":
        return SnAp(net, **common)
    if name == "e-prop":
        return EProp(net, **common)
    if name == "UORO":
        return UORO(net, seed=seed, **common)
    if name == "KF-RTRL":
        return KFRTRL(net, seed=seed, **common)
    return BPTT(net, truncation=8, **common)


def curriculum(learner: Any, bits: np.ndarray) -> dict:
    """Runs ``learner`` over ``bits`` (T, B) in chunks, raising the delay after each chunk recalled
    with at least PASS accuracy. Returns the delay reached (the longest one passed), the accuracy of
    the last chunk, the per-step time and the curve [(steps, delay in training), ...]."""
    X = (2.0 * bits - 1.0)[:, :, None].astype(np.float32)
    delay, passed, curve, elapsed, accuracy = 1, 0, [], 0.0, 0.0
    for start in range(0, len(bits), CHUNK):
        t = np.arange(start, min(start + CHUNK, len(bits)))
        target = np.where((t - delay >= 0)[:, None], bits[np.maximum(t - delay, 0)], -1).astype(np.int64)
        began = time.perf_counter()
        outputs = learner.run(X[t], target).outputs
        elapsed += time.perf_counter() - began
        scored = target >= 0
        accuracy = float(np.mean(np.argmax(outputs, axis=-1)[scored] == target[scored])) if scored.any() else 0.0
        if accuracy >= PASS:
            passed, delay = delay, delay + 1
        curve.append((int(t[-1]) + 1, delay))
    return {"delay": passed, "accuracy": accuracy, "us_per_step": elapsed / len(bits) * 1e6, "curve": curve}


def run(*, steps: int = 30_000, seeds: int = 1, lr: float = 3e-3, progress: bool = False) -> list[dict]:
    """One row per learner: the delay reached per seed and its median, the last chunk's accuracy and
    the time per step."""
    rows = []
    with progress_bar(len(LEARNERS) * seeds, "online", progress, unit="run") as bar:
        for name in LEARNERS:
            results = []
            for seed in range(seeds):
                bits = np.random.default_rng(seed).integers(0, 2, size=(steps, STREAMS))
                results.append(curriculum(make_learner(name, seed, lr), bits))
                bar.update()
            rows.append({"learner": name, "steps": steps, "delays": [r["delay"] for r in results],
                         "delay": float(np.median([r["delay"] for r in results])),
                         "accuracy": float(np.mean([r["accuracy"] for r in results])),
                         "us_per_step": float(np.median([r["us_per_step"] for r in results])),
                         "curves": [r["curve"] for r in results]})
    return rows


def format_table(rows: list[dict]) -> str:
    head = f"{'learner':<9} {'delay reached':>13} {'last chunk':>10} {'us/step':>9}  (per seed)"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['learner']:<9} {r['delay']:>13.0f} {100 * r['accuracy']:>9.0f}% {r['us_per_step']:>9.1f}  "
                     f"{r['delays']}")
    return "\n".join(lines)


def plot_curves(path: str | None, rows: list[dict]) -> str | None:
    def draw(axes):
        ax = axes[0]
        for i, r in enumerate(rows):
            for k, curve in enumerate(r["curves"]):
                steps, delay = np.array(curve).T
                ax.step(steps, delay, where="post", color=f"C{i}", lw=1.0, label=r["learner"] if k == 0 else None)
        ax.set(title="delayed recall: the delay in training", xlabel="steps", ylabel="delay d")
        ax.legend(fontsize=7)
    return save_figure(path, draw, panels=1, columns=1, size=(6.0, 3.5))


FULL = dict(steps=30_000, seeds=1)
QUICK = dict(steps=4_000, seeds=1)


def main(seeds: int | None = None, quick: bool = False, plot_path: str | None = None,
         progress: bool = False) -> list[dict]:
    """Runs the demo (``FULL``, or ``QUICK``), prints its table, writes the figure and the verdict."""
    started = time.perf_counter()
    if plot_path is not None:
        check_output_path(plot_path, "plot_path")
    config = QUICK if quick else FULL
    config = dict(config, seeds=check_seeds(seeds, config["seeds"]))
    print(__doc__.strip().splitlines()[0])
    print(f"LSTM, H={HIDDEN}, {STREAMS} streams, Adam, cross-entropy; {config['steps']} steps, chunks of {CHUNK}, "
          f"pass at {100 * PASS:.0f}%.\n")
    rows = run(**config, progress=progress)
    print(format_table(rows))
    if plot_path is not None:
        report_figure(plot_path, plot_curves(plot_path, rows))
    best = max(rows, key=lambda r: r["delay"])
    reached = ", ".join(f"{r['learner']} {r['delay']:.0f}" for r in rows)
    finish(f"delays reached in {config['steps']} steps: {reached} (longest: {best['learner']})", started)
    return rows
