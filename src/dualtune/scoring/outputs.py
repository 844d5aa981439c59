"""Run-dir outputs of a selection: scores.parquet, provenance.json, selection.json, plots/.

``scores.parquet``: one row per training id with ``p_mm, p_txt, cde_gap, ace_psi, ace_flag,
difficulty, kept, reason`` (+ the raw per-rollout correctness / rewards, ACE details, cost
shares, subtask and the lab's planted ``language_prior`` flag). ``selection.json``: kept ids,
budget, counts per reason and per subtask, and cost accounting — scoring wall time and generated
tokens (the total behind the score file and what this run spent); ``training`` is filled in by
:func:`update_selection_cost` when ``train.py`` trains on the selection.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np

from dualtune.scoring.store import write_json_atomic, write_parquet_atomic

SCORE_COLUMNS = ("p_mm", "p_txt", "cde_gap", "ace_psi", "ace_log_psi", "difficulty")
# Selection-specific columns of a reused run-dir score file: always recomputed.
STALE_COLUMNS = ("kept", "reason", "ace_flag", "rel_p_img", "rel_p_txt", "rel_similarity")


def base_table(rows: list[dict]):
    """Score table for selectors that score nothing: identity columns, NaN scores."""
    import pandas as pd

    from dualtune.scoring.pipeline import base_row

    df = pd.DataFrame([base_row(r) for r in rows])
    for col in SCORE_COLUMNS:
        df[col] = np.nan
    return df


def finish_table(table, kept, reasons, info: dict):
    """Add ``ace_flag`` (False when unscored), ``kept``, ``reason`` and selector columns."""
    df = table.drop(columns=[c for c in STALE_COLUMNS if c in table], errors="ignore").copy()
    for col, values in (info.get("columns") or {}).items():
        df[col] = np.asarray(values)
    if "ace_flag" not in df:
        df["ace_flag"] = False
    df["kept"] = np.asarray(kept, dtype=bool)
    df["reason"] = list(reasons)
    return df


def _num(value) -> float | int | None:
    """JSON-safe number (NaN -> None)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else (int(value) if value.is_integer() else round(value, 4))


def scoring_cost(df, this_run: dict | None) -> dict:
    """Total cost behind the score table (column sums) and this run's share."""
    total = {"wall_s": _num(df["cost_wall_s"].sum()) if "cost_wall_s" in df else 0,
             "generated_tokens": _num(df["cost_generated_tokens"].sum()) if "cost_generated_tokens" in df else 0}
    run = {k: _num(v) if isinstance(v, (int, float)) else v for k, v in (this_run or {}).items()}
    return {"total": total, "this_run": run}


def cde_by_language_prior(df, lam_c: float) -> dict | None:
    """CDE on planted language-prior samples vs the rest: per group ``n``, mean ``p_mm`` / ``p_txt`` and the
    share CDE rejects (``cde_gap <= lam_c``); None without CDE scores or the lab's flag."""
    if "language_prior" not in df or "cde_gap" not in df or df["cde_gap"].isna().all():
        return None
    prior = df["language_prior"].astype(bool)
    out = {}
    for name, group in (("language_prior", df[prior]), ("rest", df[~prior])):
        out[name] = {"n": int(len(group)), "p_mm": _num(group["p_mm"].mean()), "p_txt": _num(group["p_txt"].mean()),
                     "cde_rejected": _num((group["cde_gap"] <= lam_c).mean())}
    return out


def ace_summary(df) -> dict | None:
    """How many samples had a scored ACE column, how many were flagged, and the largest psi."""
    if "ace_n_columns" not in df or df["ace_psi"].isna().all():
        return None
    return {"scored": int((df["ace_n_columns"] > 0).sum()), "flagged": int(df["ace_flag"].sum()),
            "max_psi": float(df["ace_psi"].max())}


def summarize(df, method: str, params: dict, info: dict, cost: dict, legend: dict, store=None) -> dict:
    """The ``selection.json`` dict."""
    kept = df["kept"].to_numpy(dtype=bool)
    lam_c = (params.get("cde") or {}).get("lam_c") if isinstance(params.get("cde"), dict) else None
    by_subtask = {}
    for key, group in df.groupby(df["domain"].fillna("") + "/" + df["subtask"].fillna("")):
        entry = {"n": int(len(group)), "kept": int(group["kept"].sum())}
        if "language_prior" in group:
            lp = group["language_prior"].astype(bool)
            entry.update(language_prior=int(lp.sum()), language_prior_kept=int((lp & group["kept"]).sum()))
        if lam_c is not None and (cde := cde_by_language_prior(group, float(lam_c))) is not None:
            entry["cde"] = cde
        by_subtask[key] = entry
    reasons = Counter(df["reason"])
    details = {k: v for k, v in info.items() if k != "columns"}
    return {
        "method": method,
        "params": params,
        "details": details,
        "n_total": int(len(df)),
        "n_kept": int(kept.sum()),
        "budget": {"requested": details.get("budget"), "resolved": details.get("resolved_budget", int(kept.sum()))},
        "kept_ids": [str(i) for i, k in zip(df["id"], kept) if k],
        "counts_by_reason": dict(sorted(reasons.items())),
        "reason_legend": {r: legend.get(r, "") for r in sorted(reasons)},
        "by_subtask": by_subtask,
        "cde": cde_by_language_prior(df, float(lam_c)) if lam_c is not None else None,
        "ace": ace_summary(df),
        "scores_store": str(store.path) if store is not None else None,
        "cost": {"scoring": cost, "training": None,
                 "total": {"wall_s": cost["total"]["wall_s"], "generated_tokens": cost["total"]["generated_tokens"]}},
    }


def write_outputs(out_dir, df, summary: dict, provenance: dict | None, sel_params: dict, plots: bool = True) -> dict:
    """Write scores.parquet, provenance.json, selection.json and plots/ into ``out_dir``; return paths."""
    from dualtune.scoring.plots import plot_kept_by_subtask, plot_score_histograms

    out = Path(out_dir)
    paths = {"scores": write_parquet_atomic(df, out / "scores.parquet"),
             "selection": write_json_atomic(summary, out / "selection.json")}
    if provenance is not None:
        paths["provenance"] = write_json_atomic(provenance, out / "provenance.json")
    if not plots:
        return paths
    lam_c = (sel_params.get("cde") or {}).get("lam_c") if isinstance(sel_params.get("cde"), dict) else None
    lam_a = (sel_params.get("ace") or {}).get("lam_a") if isinstance(sel_params.get("ace"), dict) else None
    hist = plot_score_histograms(df, out / "plots" / "score_histograms.png", lam_c=lam_c, lam_a=lam_a)
    if hist is not None:
        paths["histograms"] = hist
    paths["by_subtask"] = plot_kept_by_subtask(df, out / "plots" / "kept_by_subtask.png")
    return paths


def update_selection_cost(out_dir, training_wall_s: float, training_tokens: int | None = None) -> dict:
    """Record the training cost of a run trained on this selection; ``total`` = scoring + training.

    Call it from ``train.py`` after fitting: ``update_selection_cost(out, wall_s, n_tokens)``.
    Returns the updated ``selection.json`` dict (rewritten atomically).
    """
    path = Path(out_dir) / "selection.json"
    summary = json.loads(path.read_text())
    scoring = summary["cost"]["scoring"]["total"]
    summary["cost"]["training"] = {"wall_s": _num(training_wall_s), "tokens": training_tokens}
    summary["cost"]["total"] = {"wall_s": _num((scoring.get("wall_s") or 0) + float(training_wall_s)),
                                "generated_tokens": scoring.get("generated_tokens"),
                                "training_tokens": training_tokens}
    write_json_atomic(summary, path)
    return summary
