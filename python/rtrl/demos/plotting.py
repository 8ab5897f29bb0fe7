"""Figures of the demos, written to PNG files with matplotlib's Agg backend when matplotlib is installed."""

from __future__ import annotations

from typing import Any, Callable


def save_figure(path: str | None, draw: Callable[[Any], None], *, panels: int = 1, columns: int = 1,
                size: tuple[float, float] = (7.0, 3.2)) -> str | None:
    """Draws a figure of ``panels`` axes with ``draw(axes)`` and writes it to ``path``.

    Parameters
    ----------
    path : str or None
        The PNG file to write; None writes nothing.
    draw : callable
        Called with the list of axes.
    panels : int
        Number of axes, filled row by row.
    columns : int
        Axes per row.
    size : (float, float)
        Width and height of one panel in inches.

    Returns
    -------
    str or None
        ``path`` when the file was written; None when no path was given or matplotlib is missing.
    """
    if path is None:
        return None
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    rows = -(-panels // columns)
    fig = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
    FigureCanvasAgg(fig)  # drawn by Agg, without switching the process's pyplot backend
    axes = list(fig.subplots(rows, columns, squeeze=False).ravel())
    for unused in axes[panels:]:
        unused.set_visible(False)
    draw(axes[:panels])
    fig.savefig(path, dpi=100)
    return path


def report_figure(path: str | None, written: str | None) -> None:
    """Prints where the figure went (or why it did not)."""
    if written is not None:
        print(f"\nPlot written to {written}")
    elif path is not None:
        print("\n(No plot: matplotlib is not installed; pip install matplotlib)")
