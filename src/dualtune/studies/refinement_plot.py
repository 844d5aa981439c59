"""Outputs of the data-refinement study (`dualtune.studies.refinement`): markdown, csv and the Figs. 5-7 scatter
(predicted gain from the report on x, measured gain of the own part's retraining on y, coloured by part; the
measured gain's bootstrap CI as a vertical bar; points in the top-right and bottom-left quadrants agree)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dualtune.utils.plotting import new_figure, save_figure

PART_COLORS = {"positive": "#2a9d8f", "negative": "#e76f51", "rest": "#2a9d8f", "q3": "#e9c46a"}
TITLES = {"gain_da": "Fig. 5: split by Gain_DA, DA-only retraining",
          "gain_cot": "Fig. 6: split by Gain_CoT, CoT-only retraining",
          "q3": "Fig. 7: Q3 (both gains < 0) vs the rest, Dual Tuning"}
X_LABEL = {"gain_da": "predicted Gain_DA (%)", "gain_cot": "predicted Gain_CoT (%)",
           "q3": "predicted max(Gain_DA, Gain_CoT) (%)"}


def plot_split(rows: list[dict], split: str, gain_kind: str, path) -> Path | None:
    """The scatter of one split (None when it has no row)."""
    rows = [r for r in rows if r["split"] == split]
    if not rows:
        return None
    fig, ax = new_figure(6.0, 4.6)
    for part in dict.fromkeys(r["part"] for r in rows):
        sub = [r for r in rows if r["part"] == part]
        x, y = [r["predicted_gain"] for r in sub], [r["measured_gain"] for r in sub]
        err = [[r["measured_gain"] - r["measured_lo"] for r in sub],
               [r["measured_hi"] - r["measured_gain"] for r in sub]]
        ax.errorbar(x, y, yerr=err, fmt="o", color=PART_COLORS.get(part, "#555555"), ecolor="#999999", capsize=2,
                    label=f"trained on part '{part}' ({len(sub)} tasks)")
        for r in sub:
            ax.annotate(r["subtask"], (r["predicted_gain"], r["measured_gain"]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")
    ax.axhline(0, color="black", lw=0.7)
    ax.axvline(0, color="black", lw=0.7)
    unit = "points" if gain_kind == "same_mode" else "% of B_max"
    ax.set_xlabel(X_LABEL[split])
    ax.set_ylabel(f"measured gain, tuned - base ({unit})")
    ax.set_title(TITLES[split], fontsize=9)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path)


def _fmt(value, digits: int = 2) -> str:
    """A cell: '-' for None / NaN, rounded floats."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _table(rows: list[dict], cols: list[str]) -> str:
    """A markdown table of ``cols``."""
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def markdown(study: dict) -> str:
    """The study as one markdown document."""
    summary = [dict(r, rate=r["rate"] if r["rate"] is None else 100 * r["rate"],
                    ci_lo=None if r["ci_lo"] is None else 100 * r["ci_lo"],
                    ci_hi=None if r["ci_hi"] is None else 100 * r["ci_hi"]) for r in study["summary"]]
    unit = ("points, tuned - base in the split's mode" if study["gain"] == "same_mode"
            else "% of B_max (report's gains)")
    parts = [
        "# Data refinement (Dual Tuning Figs. 5-7)", "",
        f"Sign agreement between the report's predicted gain and the measured gain of retraining on the task's own "
        f"part (%, 95% bootstrap CI, {study['n_boot']} resamples, resampling {study['resample']}; tasks with a "
        "predicted gain of exactly 0 are not counted; a measured 0 disagrees).", "",
        _table(summary, ["figure", "split", "part", "mode", "tasks", "counted", "agree", "rate", "ci_lo", "ci_hi"]), "",
        f"## Per task (measured gain: {unit})", "",
        _table(study["tasks"], ["figure", "part", "domain", "subtask", "region", "predicted_gain",
                                "predicted_uncertain", "n", "B_S", "B_L", "DT_S", "DT_L", "measured_gain",
                                "measured_lo", "measured_hi", "agree"]), ""]
    return "\n".join(parts)


def write_study(study: dict, out) -> list[Path]:
    """``refinement.md``, ``refinement_tasks.csv``, ``refinement_summary.csv`` and one png per split in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "refinement.md", out / "refinement_tasks.csv", out / "refinement_summary.csv"]
    files[0].write_text(markdown(study))
    pd.DataFrame(study["tasks"]).to_csv(files[1], index=False)
    pd.DataFrame(study["summary"]).to_csv(files[2], index=False)
    for split, fig in (("gain_da", 5), ("gain_cot", 6), ("q3", 7)):
        path = plot_split(study["tasks"], split, study["gain"], out / f"fig{fig}_{split}.png")
        if path is not None:
            files.append(path)
    return files
