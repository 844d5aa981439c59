"""Matplotlib figures without pyplot: an Agg canvas per figure, so no global backend is switched."""

from __future__ import annotations

from pathlib import Path


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1):
    """A figure bound to an Agg canvas and its axes (a single axes, or an array when nrows*ncols > 1)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols)


def save_figure(fig, path) -> Path:
    """Save ``fig`` as an image at ``path`` (parent folders created) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight")
    return out
