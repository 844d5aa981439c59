"""RAP's estimators against planted truth: precision / recall of CDE, DRM (and ACE) on a domain whose samples
carry ``meta.planted`` (the selection lab, ``lab/selection_lab.py``: language_prior | easy | hard | cognitive).

Each detector is a mask over the scored samples, compared with the planted kind it is meant to find:

| detector      | predicted positive                                    | planted truth      |
|---------------|-------------------------------------------------------|--------------------|
| `cde`         | CDE drops it: ``p_mm - p_txt <= lam_c``               | `language_prior`   |
| `drm_easy`    | DRM's easy test: all M multimodal rollouts correct    | `easy`             |
| `drm_band`    | DRM's band: difficulty in [1/M, 1)                    | `hard`             |
| `drm_removed` | DRM removed it from the kept set (``dropped_easy_drm``) | `easy`           |
| `drm_added`   | DRM added it (``added_drm``)                          | `hard`             |
| `ace`         | ACE flags it (only when ACE flagged anything)         | not `cognitive`    |

``by_kind`` gives, per planted kind, the mean pass rates and the share each stage drops / flags / keeps, and
``kept`` the kinds' shares in the final subset (against their shares in the pool, i.e. a random subset).

``score.py`` calls :func:`write_planted` when the training rows carry planted kinds: a ``planted`` column in
``scores.parquet``, ``planted.md`` and a ``planted`` entry in ``selection.json``. :func:`report_from_run_dir`
recomputes the report from a run dir alone (``python -m dualtune.scoring.planted <run dir>``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from dualtune.schema import sample_meta
from dualtune.selection.cde import cde_keep
from dualtune.selection.drm import in_hard_band, is_easy

KINDS = ("language_prior", "easy", "hard", "cognitive")
DETECTORS = {"cde": "language_prior", "drm_easy": "easy", "drm_band": "hard", "drm_removed": "easy",
             "drm_added": "hard", "ace": "not cognitive"}


def planted_flags(rows) -> dict[str, str]:
    """Map sample id -> ``meta.planted`` for every row that has one ({} when the domain plants nothing)."""
    flags = {}
    for row in rows:
        kind = sample_meta(row).get("planted")
        if kind is not None:
            if kind not in KINDS:
                raise ValueError(f"sample {row.get('id')!r}: meta.planted={kind!r} is not one of {KINDS}")
            flags[str(row["id"])] = str(kind)
    return flags


def precision_recall(predicted, truth) -> dict:
    """Counts and precision / recall of the bool mask ``predicted`` against ``truth`` (None where undefined:
    precision without a prediction, recall without a true sample)."""
    pred, true = np.asarray(predicted, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.shape != true.shape:
        raise ValueError(f"predicted shape {pred.shape} != truth shape {true.shape}")
    tp, fp, fn = int((pred & true).sum()), int((pred & ~true).sum()), int((~pred & true).sum())
    return {"n_predicted": tp + fp, "n_true": tp + fn, "tp": tp, "fp": fp, "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None}


def _mean(values) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else None


def planted_metrics(df, flags: dict[str, str], M: int, lam_c: float | None = 0.5) -> dict:
    """Precision / recall of each detector (module docstring) and per-kind shares, over the rows of the
    score table ``df`` (``id, p_mm, p_txt, cde_gap, ace_flag, kept, reason``) that have a planted kind.
    ``lam_c=None`` (or no ``cde_gap`` scores) leaves CDE out."""
    ids = df["id"].astype(str).to_numpy()
    have = np.array([i in flags for i in ids])
    if not have.any():
        raise ValueError("no scored sample has a planted kind")
    sub = df[have]
    kinds = np.array([flags[i] for i in ids[have]])
    p_mm = sub["p_mm"].to_numpy(dtype=np.float64)
    reason = sub["reason"].astype(str).to_numpy()
    kept = sub["kept"].to_numpy(dtype=bool)
    ace = sub["ace_flag"].fillna(False).to_numpy(dtype=bool) if "ace_flag" in sub else np.zeros(len(sub), bool)
    gap = sub["cde_gap"].to_numpy(dtype=np.float64) if "cde_gap" in sub else np.full(len(sub), np.nan)
    masks = {"drm_easy": is_easy(p_mm), "drm_band": in_hard_band(p_mm, M),
             "drm_removed": reason == "dropped_easy_drm", "drm_added": reason == "added_drm"}
    if lam_c is not None and not np.isnan(gap).all():
        masks = {"cde": ~cde_keep(gap, float(lam_c)), **masks}
    if ace.any():
        masks["ace"] = ace
    detectors = {}
    for name, mask in masks.items():
        truth = kinds != "cognitive" if name == "ace" else kinds == DETECTORS[name]
        detectors[name] = {"truth": DETECTORS[name], **precision_recall(mask, truth)}
    by_kind = {}
    for kind in KINDS:
        sel = kinds == kind
        if not sel.any():
            continue
        by_kind[kind] = {"n": int(sel.sum()), "p_mm": _mean(p_mm[sel]), "p_txt": _mean(sub["p_txt"].to_numpy(
            dtype=np.float64)[sel]), **{f"share_{name}": float(mask[sel].mean()) for name, mask in masks.items()},
            "share_kept": float(kept[sel].mean())}
    n_kept = int(kept.sum())
    composition = {kind: {"pool": float((kinds == kind).mean()),
                          "kept": float((kinds[kept] == kind).mean()) if n_kept else None} for kind in by_kind}
    return {"n": int(len(sub)), "n_kept": n_kept, "M": int(M), "lam_c": lam_c, "detectors": detectors,
            "by_kind": by_kind, "kept": composition}


def _fmt(value) -> str:
    return "–" if value is None else (f"{value:.2f}" if isinstance(value, float) else str(value))


def planted_markdown(report: dict, title: str = "RAP against the planted flags") -> str:
    """``planted.md``: the detector table and the per-kind table of :func:`planted_metrics`'s report."""
    lines = [f"# {title}", "", f"{report['n']} scored samples with a planted kind, M = {report['M']}, "
             f"lambda_c = {report['lam_c']}; {report['n_kept']} kept.", "",
             "| detector | finds | predicted | true | TP | precision | recall |", "|---|---|---|---|---|---|---|"]
    for name, d in report["detectors"].items():
        lines.append(f"| {name} | {d['truth']} | {d['n_predicted']} | {d['n_true']} | {d['tp']} | "
                     f"{_fmt(d['precision'])} | {_fmt(d['recall'])} |")
    shares = [k for k in next(iter(report["by_kind"].values())) if k.startswith("share_")]
    lines += ["", "| planted | n | p_mm | p_txt | " + " | ".join(shares) + " | pool share | kept share |",
              "|---" * (6 + len(shares)) + "|"]
    for kind, row in report["by_kind"].items():
        comp = report["kept"][kind]
        lines.append(f"| {kind} | {row['n']} | {_fmt(row['p_mm'])} | {_fmt(row['p_txt'])} | "
                     + " | ".join(_fmt(row[s]) for s in shares) + f" | {_fmt(comp['pool'])} | {_fmt(comp['kept'])} |")
    return "\n".join(lines) + "\n"


def _selection_params(summary: dict) -> tuple[int, float | None]:
    """(M, lam_c) of a selection.json's params (M defaults to 5; lam_c None when CDE is off)."""
    params = summary.get("params") or {}
    M = int(((params.get("rollouts") or {}).get("num_generations")) or 5)
    cde = params.get("cde") or {}
    return M, (float(cde["lam_c"]) if cde.get("enabled", True) and cde.get("lam_c") is not None else None)


def write_planted(out_dir, df, flags: dict[str, str]) -> dict:
    """Add the ``planted`` column to ``out_dir/scores.parquet``, write ``planted.md`` and the ``planted`` entry of
    ``selection.json``; return the report."""
    from dualtune.scoring.store import write_json_atomic, write_parquet_atomic

    out = Path(out_dir)
    summary = json.loads((out / "selection.json").read_text())
    M, lam_c = _selection_params(summary)
    report = planted_metrics(df, flags, M, lam_c)
    table = df.copy()
    table["planted"] = [flags.get(str(i)) for i in table["id"]]
    write_parquet_atomic(table, out / "scores.parquet")
    summary["planted"] = report
    write_json_atomic(summary, out / "selection.json")
    (out / "planted.md").write_text(planted_markdown(report))
    return report


def report_from_run_dir(run_dir) -> dict:
    """The report recomputed from a score run dir (``scores.parquet`` with its ``planted`` column and the
    ``selection.json`` params)."""
    import pandas as pd

    run = Path(run_dir)
    df = pd.read_parquet(run / "scores.parquet")
    if "planted" not in df:
        raise ValueError(f"{run}/scores.parquet has no planted column (the domain plants no flags)")
    flags = {str(i): k for i, k in zip(df["id"], df["planted"]) if isinstance(k, str)}
    M, lam_c = _selection_params(json.loads((run / "selection.json").read_text()))
    return planted_metrics(df, flags, M, lam_c)


if __name__ == "__main__":  # python -m dualtune.scoring.planted <run dir>
    print(planted_markdown(report_from_run_dir(sys.argv[1])))
