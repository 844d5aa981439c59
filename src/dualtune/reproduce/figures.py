"""Figures of a sweep: Eval-S / Eval-L bars per configuration (Tables 1/2), the boundary scatter per
configuration (Fig. 4, seeds' mean gains), the auto-think rate per subtask, and the tuned accuracy against a
swept number (RAP Fig. 1a budget curve, Fig. 5b sensitivity, M). Agg canvas, no pyplot."""

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


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def curve_axes(identities: list[dict]) -> tuple[str, list[str]] | None:
    """``(x key, series keys)`` of a sweep whose configurations differ in at least one number: x is the
    numeric varying key with the most distinct values (ties: the first by name), the other varying keys name
    the lines. None when no varying key is numeric in every configuration."""
    from dualtune.reproduce.collect import varying_keys

    varying = varying_keys(identities)
    numeric = [k for k in varying if all(_is_number(i.get(k)) for i in identities)]
    if not numeric:
        return None
    x_key = max(sorted(numeric), key=lambda k: len({i.get(k) for i in identities}))
    return x_key, [k for k in varying if k != x_key]


def plot_sweep_curve(groups, rows: list[dict], path) -> Path | None:
    """Two panels (Eval-S: direct prompt, Eval-L: CoT prompt): the tuned accuracy of every configuration
    (`sweep_table` rows, seeds' mean ± std) against the swept number of `curve_axes`, one line per value of
    the other varying keys, the base model's mean as a dashed line. None when the sweep has no numeric axis or
    no line would have two points."""
    identities = [runs[0].identity for _, runs in groups]
    axes_keys = curve_axes(identities)
    if axes_keys is None:
        return None
    x_key, series_keys = axes_keys
    by_label = {r["config"]: r for r in rows}
    lines: dict[str, list[tuple[float, dict]]] = {}
    for (label, _), ident in zip(groups, identities):
        name = ", ".join(f"{k}={ident.get(k)}" for k in series_keys) or "tuned"
        lines.setdefault(name, []).append((float(ident[x_key]), by_label[label]))
    if all(len(points) < 2 for points in lines.values()):  # e.g. Optuna trials: every knob differs, no curve
        return None
    fig, axes = new_figure(11.0, 4.2, 1, 2)
    for ax, (mode, title) in zip(axes, (("S", "Eval-S (direct prompt)"), ("L", "Eval-L (CoT prompt)"))):
        base = [r[f"B_{mode}"] for r in rows if r.get(f"B_{mode}") is not None and r.get(f"DT_{mode}") is not None]
        if base:
            ax.axhline(sum(base) / len(base), color="grey", linestyle="--", label="base")
        for name, points in lines.items():
            points = sorted((p for p in points if p[1].get(f"DT_{mode}") is not None), key=lambda p: p[0])
            if not points:
                continue
            ax.errorbar([x for x, _ in points], [r.get(f"DT_{mode}") for _, r in points],
                        yerr=[r.get(f"DT_{mode}_std") or 0.0 for _, r in points], marker="o", capsize=3, label=name)
        xs = [x for points in lines.values() for x, _ in points]
        if min(xs) > 0 and max(xs) / min(xs) >= 20:  # e.g. lambda_a 0.01..1: a log axis
            ax.set_xscale("log")
        ax.set_xlabel(x_key)
        ax.set_ylabel("tuned accuracy (%)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_step_curves(rows: list[dict], path) -> Path | None:
    """Accuracy against training step (`step_table` rows), one line per configuration (seeds' mean ± std),
    one panel per eval mode: RAP Fig. 1a's layout. None without rows."""
    if not rows:
        return None
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    fig, axes = new_figure(5.5 * len(modes), 4.2, 1, len(modes))
    axes = list(axes) if len(modes) > 1 else [axes]
    for ax, mode in zip(axes, modes):
        for label in dict.fromkeys(r["config"] for r in rows):
            points = [r for r in rows if r["config"] == label and r["mode"] == mode]
            ax.errorbar([r["step"] for r in points], [r["accuracy"] for r in points],
                        yerr=[r.get("accuracy_std") or 0.0 for r in points], marker="o", capsize=2, label=label)
        ax.set_xlabel("training step")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{mode} prompt")
        ax.legend(fontsize=6)
    return save_figure(fig, path)
