"""Figures of a sweep: Eval-S / Eval-L bars per configuration (Tables 1/2), the boundary scatter per
configuration (Fig. 4, seeds' mean gains) and the auto-think rate per subtask. Agg canvas, no pyplot."""

from __future__ import annotations

import re
from pathlib import Path

from dualtune.boundary_plots import plot_boundary_scatter
from dualtune.utils.plotting import new_figure, save_figure


def slug(text: str) -> str:
    """A file-name-safe version of a configuration label."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")[:80] or "config"


def plot_modes(rows: list[dict], path) -> Path | None:
    """Grouped bars (one panel per evaluated domain): Eval-S and Eval-L of every `modes_table` row, with
    the seeds' std as error bars. None when no row has a number."""
    domains = list(dict.fromkeys(k[: -len(" Eval-S")] for r in rows for k in r if k.endswith(" Eval-S")))
    if not domains or not rows:
        return None
    fig, axes = new_figure(max(5.0, 0.8 * len(rows) + 2.0) * len(domains), 4.2, 1, len(domains))
    axes = list(axes) if len(domains) > 1 else [axes]
    xs = range(len(rows))
    for ax, domain in zip(axes, domains):
        for offset, (mode, color) in zip((-0.2, 0.2), (("S", "#d0607f"), ("L", "#4c9a4c"))):
            key = f"{domain} Eval-{mode}"
            values = [r.get(key) if r.get(key) is not None else 0.0 for r in rows]
            errors = [r.get(f"{key}_std") or 0.0 for r in rows]
            ax.bar([x + offset for x in xs], values, width=0.4, yerr=errors, color=color, capsize=2,
                   label=f"Eval-{mode} ({'direct' if mode == 'S' else 'CoT'} prompt)")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([r["row"] for r in rows], rotation=45, ha="right", fontsize=7)
        ax.set_title(domain)
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_boundary_means(rows: list[dict], label: str, path) -> Path | None:
    """The (Gain_DA, Gain_CoT) scatter of one configuration's `boundary_table` subtask rows (seed means)."""
    points = [r for r in rows if r["config"] == label and r["subtask"] != "ALL"
              and r.get("Gain_DA") is not None and r.get("Gain_CoT") is not None]
    if not points:
        return None
    plotted = [dict(r, planted_region=r.get("planted")) for r in points]
    n = max(r["n_seeds"] for r in points)
    return plot_boundary_scatter(plotted, path, title=f"Thinking Boundary: {label} (mean of {n} seed(s))")


def plot_think_rate(rows: list[dict], path) -> Path | None:
    """Bars of the tuned model's auto-think rate per (configuration, subtask), std as error bars."""
    rows = [r for r in rows if r["subtask"] != "ALL" and r.get("think_rate") is not None]
    if not rows:
        return None
    fig, ax = new_figure(max(5.0, 0.45 * len(rows) + 2.0), 4.2)
    ax.bar(range(len(rows)), [r["think_rate"] for r in rows], yerr=[r.get("think_rate_std") or 0 for r in rows],
           color="#1f3b73", capsize=2)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r['subtask']}\n{r['config']}" for r in rows], rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("completions that think (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Auto-think: how often the tuned model reasons (neutral prompt)")
    return save_figure(fig, path)
