"""Selection plots: score histograms (CDE gap, ACE psi, DRM difficulty) and kept vs dropped per subtask."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dualtune.utils.plotting import new_figure, save_figure


def _finite(values) -> np.ndarray:
    """Finite float values of a column (NaN / inf removed)."""
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def plot_score_histograms(df, path, lam_c: float | None = None, lam_a: float | None = None) -> Path | None:
    """Three panels: cde_gap, log10 psi and difficulty, kept vs dropped stacked; None if nothing to plot."""
    panels = [("cde_gap", "CDE gap p_mm - p_txt", lam_c),
              ("ace_log10_psi", "ACE log10 psi", np.log10(lam_a) if lam_a else None),
              ("difficulty", "DRM difficulty 1 - p_mm", None)]
    data = df.assign(ace_log10_psi=np.asarray(df.get("ace_log_psi", np.nan), dtype=np.float64) / np.log(10.0))
    if not any(len(_finite(data[c])) for c, _, _ in panels if c in data):
        return None
    fig, axes = new_figure(13, 3.6, 1, 3)
    kept = np.asarray(data["kept"], dtype=bool)
    for ax, (col, title, line) in zip(axes, panels):
        values = np.asarray(data[col], dtype=np.float64) if col in data else np.full(len(data), np.nan)
        groups = [_finite(values[kept]), _finite(values[~kept])]
        if any(len(g) for g in groups):
            ax.hist(groups, bins=21, stacked=True, label=["kept", "dropped"], color=["tab:green", "tab:gray"])
        if line is not None:
            ax.axvline(line, color="tab:red", linestyle="--", linewidth=1)
        ax.set_title(title)
        ax.set_ylabel("samples")
    axes[0].legend()
    fig.tight_layout()
    return save_figure(fig, path)


def plot_kept_by_subtask(df, path) -> Path:
    """Horizontal stacked bars: kept and dropped sample counts per (domain/)subtask."""
    labels = [f"{d}/{s}" if d else str(s) for d, s in zip(df["domain"].fillna(""), df["subtask"].fillna("?"))]
    kept = np.asarray(df["kept"], dtype=bool)
    names = sorted(set(labels))
    n_kept = [sum(1 for lab, k in zip(labels, kept) if lab == n and k) for n in names]
    n_drop = [sum(1 for lab, k in zip(labels, kept) if lab == n and not k) for n in names]
    fig, ax = new_figure(7, 0.35 * len(names) + 1.4)
    ax.barh(names, n_kept, color="tab:green", label="kept")
    ax.barh(names, n_drop, left=n_kept, color="tab:gray", label="dropped")
    ax.set_xlabel("samples")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)
