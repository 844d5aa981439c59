"""Plots of the Thinking Boundary: the (Gain_DA, Gain_CoT) region scatter (paper Fig. 4) and GAP_B bars (Fig. 1).

Uses matplotlib's object API with the Agg canvas, so no global backend is switched and no display is needed.
Rows are the dicts produced by :mod:`dualtune.boundary` (report rows or CLI table records).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from dualtune.utils.plotting import new_figure, save_figure

REGION_COLORS = {"cot": "#b7e4b0", "direct": "#f7c6d9", "negative": "#fbeaa0"}
PLANTED_MARKERS = {"cot": "^", "direct": "s", "negative": "v", "tie": "D", None: "o"}


def _label(row: dict) -> str:
    """Point/bar label: the subtask (or CLI ``task``); aggregates read ``<domain> (all)``."""
    name = row.get("subtask", row.get("task", "?"))
    return f"{row.get('domain', '')} (all)".strip() if name == "ALL" else str(name)


def _limits(values: list[float]) -> tuple[float, float]:
    """Axis limits containing 0 and every value, with 12% padding."""
    lo, hi = min(0.0, *values), max(0.0, *values)
    pad = 0.12 * max(hi - lo, 1.0)
    return lo - pad, hi + pad


def shade_regions(ax, x0: float, x1: float, y0: float, y1: float) -> None:
    """Shade Q1 / Q2 / Q3 on ``ax`` over [x0, x1] x [y0, y1] (together they tile the plane except for their
    borders) and draw the axes through the origin and the diagonal y = x (GAP_DT = 0), all labelled."""
    grid = np.linspace(x0, x1, 400)
    ax.fill_between(grid, np.clip(np.maximum(grid, 0.0), y0, y1), y1, color=REGION_COLORS["cot"],
                    alpha=0.6, lw=0, label="Q1 CoT advantage")
    right = np.linspace(0.0, x1, 400)
    ax.fill_between(right, y0, np.clip(right, y0, y1), color=REGION_COLORS["direct"], alpha=0.6, lw=0,
                    label="Q2 DA advantage")
    ax.fill_between([x0, 0.0], y0, 0.0, color=REGION_COLORS["negative"], alpha=0.6, lw=0,
                    label="Q3 negative")

    # Reference lines: axes through the origin and the diagonal y = x (GAP_DT = 0).
    ax.axhline(0.0, color="black", lw=0.8)
    ax.axvline(0.0, color="black", lw=0.8)
    lo, hi = min(x0, y0), max(x1, y1)
    ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=0.8, label="y = x (GAP_DT = 0)")


def plot_boundary_scatter(rows: list[dict], path, title: str | None = None) -> Path:
    """Scatter of x = Gain_DA vs y = Gain_CoT, one labelled point per row, over the three shaded regions:
    Q1 CoT advantage (y > 0, y > x), Q2 DA advantage (x > 0, x > y), Q3 negative (x < 0, y < 0)."""
    points = [r for r in rows if math.isfinite(r["Gain_DA"]) and math.isfinite(r["Gain_CoT"])]
    if not points:
        raise ValueError("plot_boundary_scatter: no rows with finite gains")
    xs = [float(r["Gain_DA"]) for r in points]
    ys = [float(r["Gain_CoT"]) for r in points]
    (x0, x1), (y0, y1) = _limits(xs), _limits(ys)
    fig, ax = new_figure(7.5, 6.5)
    shade_regions(ax, x0, x1, y0, y1)

    # Points: marker shape encodes the planted region when one is known.
    planted_seen = set()
    for row, x, y in zip(points, xs, ys):
        planted = row.get("planted_region")
        planted_seen.add(planted)
        ax.scatter([x], [y], marker=PLANTED_MARKERS.get(planted, "o"), s=42, color="#1f3b73",
                   edgecolors="white", linewidths=0.6, zorder=3)
        ax.annotate(_label(row), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7, zorder=4)

    handles, _ = ax.get_legend_handles_labels()
    if planted_seen - {None}:
        handles += [Line2D([], [], ls="", marker=PLANTED_MARKERS.get(p, "o"), color="#1f3b73",
                           label=f"planted: {p or 'none'}") for p in sorted(planted_seen, key=str)]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("Gain_DA (%)")
    ax.set_ylabel("Gain_CoT (%)")
    ax.set_title(title or "Thinking Boundary")
    return save_figure(fig, path)


def plot_gap_b(rows: list[dict], path) -> Path:
    """Bar chart of GAP_B = B_L - B_S per row (positive = CoT inference better at base)."""
    if not rows:
        raise ValueError("plot_gap_b: no rows")
    labels = [_label(r) for r in rows]
    gaps = [float(r["GAP_B"]) for r in rows]
    fig, ax = new_figure(max(5.0, 0.45 * len(rows) + 2.0), 4.5)
    colors = ["#4c9a4c" if g > 0 else "#d0607f" if g < 0 else "grey" for g in gaps]
    ax.bar(range(len(gaps)), gaps, color=colors)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_xticks(range(len(gaps)))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("GAP_B = B_L - B_S (points)")
    ax.set_title("Base-model CoT vs DA inference (positive: CoT better)")
    ax.legend(handles=[Patch(color="#4c9a4c", label="CoT better"), Patch(color="#d0607f", label="DA better")],
              fontsize=7)
    return save_figure(fig, path)
