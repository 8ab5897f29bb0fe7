"""Figures of the demos, written to PNG files with matplotlib's Agg backend when matplotlib is installed."""

from __future__ import annotations

import os
from typing import Any, Callable


def check_output_path(path: Any, option: str | None = None) -> str:
    """``path`` as a string, checked to be a file that can be written: its directory exists and is
    writable, and it is not itself a directory. Run before any work, so a mistyped path fails at once.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written later.
    option : str, optional
        How the caller names the argument, put before the path in the message ("--plot",
        "plot_path", ...).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        Naming ``option`` and ``path``, when the file could not be written there.
    """
    path = os.fspath(path)
    name = f"{option} {path}" if option else path
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{name}: is a directory; give a file name")
    if not os.path.exists(directory):
        raise ValueError(f"{name}: the directory {directory} does not exist")
    if not os.path.isdir(directory):
        raise ValueError(f"{name}: {directory} is not a directory")
    if not os.access(directory, os.W_OK):
        raise ValueError(f"{name}: the directory {directory} is not writable")
    return path


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
