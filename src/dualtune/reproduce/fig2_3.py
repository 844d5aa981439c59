"""Figures of the thinking-pattern study (Dual Tuning Figs. 2-3; `dualtune.studies.thinking_patterns`).

Input: ``{source label: rows}`` with the rows of `dualtune.studies.thinking_patterns.source_rows` (one per
(domain, subtask), ALL rows included), the first source the reference. Agg canvas, no pyplot.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib import colormaps
from matplotlib.lines import Line2D

from dualtune.boundary_plots import _limits, shade_regions
from dualtune.utils.plotting import new_figure, save_figure

MARKERS = ("o", "^", "s", "D", "v", "P")  # per source: circles = the first (the paper's Data1), triangles = Data2
BAR_COLORS = ("#1f3b73", "#e08a2c", "#4c9a4c", "#8e5ea2", "#c0392b", "#7f7f7f")


def _name(row: dict, several_domains: bool) -> str:
    """A task's label: the subtask (``<domain>/<subtask>`` when the figure holds several domains)."""
    return f"{row['domain']}/{row['subtask']}" if several_domains else str(row["subtask"])


def plot_region_shift(per_source: dict[str, list[dict]], path, title: str = "") -> Path | None:
    """Fig. 2: x = Gain_DA, y = Gain_CoT over the shaded regions; one marker shape per source and one colour
    per subtask, an arrow from the first source's point to each other source's. None without a point."""
    sources = list(per_source)
    points = {s: {(r["domain"], r["subtask"]): r for r in rows if r["subtask"] != "ALL"
                  and r.get("Gain_DA") is not None and r.get("Gain_CoT") is not None}
              for s, rows in per_source.items()}
    keys = list(dict.fromkeys(k for s in sources for k in points[s]))
    if not keys:
        return None
    xs = [points[s][k]["Gain_DA"] for s in sources for k in points[s]]
    ys = [points[s][k]["Gain_CoT"] for s in sources for k in points[s]]
    (x0, x1), (y0, y1) = _limits(xs), _limits(ys)
    fig, ax = new_figure(8.0, 6.8)
    shade_regions(ax, x0, x1, y0, y1)
    several = len({k[0] for k in keys}) > 1
    cmap = colormaps["tab20"]
    for i, key in enumerate(keys):
        color = cmap(i % 20)
        present = [(j, points[s][key]) for j, s in enumerate(sources) if key in points[s]]
        for j, row in present:
            ax.scatter([row["Gain_DA"]], [row["Gain_CoT"]], marker=MARKERS[j % len(MARKERS)], s=48, color=color,
                       edgecolors="black", linewidths=0.5, zorder=4)
        ref = points[sources[0]].get(key)
        for j, row in present[1:] if ref else []:
            ax.annotate("", xy=(row["Gain_DA"], row["Gain_CoT"]), xytext=(ref["Gain_DA"], ref["Gain_CoT"]),
                        arrowprops={"arrowstyle": "->", "color": color, "lw": 0.9}, zorder=3)
        anchor = present[0][1]
        ax.annotate(_name(anchor, several), (anchor["Gain_DA"], anchor["Gain_CoT"]), xytext=(4, 4),
                    textcoords="offset points", fontsize=7, color="black", zorder=5)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], ls="", marker=MARKERS[j % len(MARKERS)], color="grey", markeredgecolor="black",
                       label=f"CoT source: {s}") for j, s in enumerate(sources)]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("Gain_DA (%)")
    ax.set_ylabel("Gain_CoT (%)")
    ax.set_title(title or "Region shift between CoT sources", fontsize=9)
    return save_figure(fig, path)


def plot_gain_token(per_source: dict[str, list[dict]], path, title: str = "") -> Path | None:
    """Fig. 3: two panels of grouped bars per task (ALL rows included), one bar per source: Gain_CoT (seeds'
    std as error bars) and Gain_token. None without a task."""
    sources = list(per_source)
    by_key = {s: {(r["domain"], r["subtask"]): r for r in rows} for s, rows in per_source.items()}
    keys = list(dict.fromkeys(k for s in sources for k in by_key[s]))
    if not keys:
        return None
    several = len({k[0] for k in keys}) > 1
    fig, axes = new_figure(max(6.0, 0.9 * len(keys) * len(sources) / 2 + 3.0), 7.0, 2, 1)
    width = 0.8 / len(sources)
    for ax, metric in zip(axes, ("Gain_CoT", "Gain_token")):
        for j, s in enumerate(sources):
            rows = [by_key[s].get(k) or {} for k in keys]
            values = [r.get(metric) if r.get(metric) is not None else 0.0 for r in rows]
            errors = [r.get(f"{metric}_std") or 0.0 for r in rows]
            ax.bar([i + (j - (len(sources) - 1) / 2) * width for i in range(len(keys))], values, width=width,
                   yerr=errors if any(errors) else None, capsize=2, color=BAR_COLORS[j % len(BAR_COLORS)], label=s)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_ylabel(metric + (" (%)" if metric == "Gain_CoT" else ""))
        ax.set_xticks(range(len(keys)))
        ax.legend(fontsize=7, title="CoT source", title_fontsize=7)
    axes[0].set_xticklabels([])  # the task names once, under the lower panel
    axes[1].set_xticklabels([_name({"domain": d, "subtask": t}, several) for d, t in keys], rotation=45,
                            ha="right", fontsize=7)
    axes[0].set_title(title or "Gain_CoT and Gain_token per task", fontsize=9)
    return save_figure(fig, path)
