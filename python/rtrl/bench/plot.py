"""A PNG of the ``rtrl`` table (``rtrl bench --plot FILE``): time per step against n, log scales.

One panel per number of streams B; one line each for rtrl, the NumPy, torch-ops and JAX RTRLs (those
that were measured) and the same-shape sgemm (the time of the sensitivity GEMM alone). Needs
matplotlib (the ``bench`` extra); drawn with the Agg backend, so no display is needed.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["SERIES", "matplotlib_missing", "plot_rtrl"]

SERIES = (  # label, row key of the time per step in µs, style
    ("rtrl", "us_per_step", "o-"),
    ("NumPy RTRL", "numpy_us_per_step", "s--"),
    ("torch-ops RTRL", "torch_us_per_step", "^--"),
    ("JAX RTRL (jit, scan)", "jax_us_per_step", "v--"),
    ("sgemm of the same shape", "sgemm_us", "k:"),
)


def matplotlib_missing() -> Optional[str]:
    """None when matplotlib can be imported, else a message saying how to install it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib, or the 'bench' extra)"
    return None


def plot_rtrl(rows: list[dict], path: str, *, title: str = "exact RTRL, fully recurrent network") -> str:
    """Writes the PNG of the ``rtrl`` table's ``rows`` to ``path``; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    batches = sorted({r["batch"] for r in rows})
    fig = Figure(figsize=(5.5 * max(1, len(batches)), 4.5), constrained_layout=True)
    axes = fig.subplots(1, max(1, len(batches)), squeeze=False)[0]
    for ax, batch in zip(axes, batches):
        mine = sorted((r for r in rows if r["batch"] == batch), key=lambda r: r["n"])
        for label, key, style in SERIES:
            points = [(r["n"], r[key]) for r in mine if r.get(key) is not None]
            if points:
                ax.plot(*zip(*points), style, label=label)
        device = mine[0].get("device", "cpu") if mine else "cpu"
        ax.set(xscale="log", yscale="log", xlabel="n (units)", ylabel="µs per step",
               title=f"{title}\nB = {batch}, float32, rtrl on {device}")
        ax.set_xticks([r["n"] for r in mine], [str(r["n"]) for r in mine])
        ax.tick_params(axis="x", which="minor", labelbottom=False)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.savefig(path, dpi=100, format="png")
    return path
