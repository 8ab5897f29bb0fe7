"""What every demo shares around its run: the check of ``seeds`` and the closing line, a one-line
verdict with the demo's total time."""

from __future__ import annotations

import time

import numpy as np


def check_seeds(seeds: int | None, default: int) -> int:
    """``seeds``, or ``default`` when it is None, checked to be an integer of at least 1.

    Parameters
    ----------
    seeds : int or None
        Networks per task, as given by the caller.
    default : int
        The demo's own number (which may depend on ``quick``).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        When ``seeds`` is not an integer or is below 1.
    """
    if seeds is None:
        return default
    if isinstance(seeds, bool) or not isinstance(seeds, (int, np.integer)) or seeds < 1:
        raise ValueError(f"seeds: expected an integer >= 1 (networks per task), got {seeds!r}")
    return int(seeds)


def learned_counts(rows: list[dict]) -> str:
    """"a/b networks learned their task with teacher forcing, c/d without" over the rows of a task
    table (see :func:`rtrl.demos.oscillators.table_row`)."""
    counts = []
    for forcing, words in ((True, "with teacher forcing"), (False, "without")):
        chosen = [r for r in rows if r["teacher_forcing"] == forcing]
        if chosen:
            hits = sum(round(r["success"] * r["seeds"]) for r in chosen)
            counts.append((f"{hits}/{sum(r['seeds'] for r in chosen)}", words))
    first, *rest = counts
    return ", ".join([f"{first[0]} networks learned their task {first[1]}"] + [f"{n} {w}" for n, w in rest])


def finish(verdict: str, started: float) -> str:
    """Prints the closing line of a demo, ``Verdict: <verdict>. Total time <s> s.``, and returns it.

    Parameters
    ----------
    verdict : str
        What the run showed, in one sentence without a final full stop.
    started : float
        ``time.perf_counter()`` when the demo started.

    Returns
    -------
    str
        The line printed (without the blank line before it).
    """
    line = f"Verdict: {verdict}. Total time {time.perf_counter() - started:.1f} s."
    print(f"\n{line}")
    return line
