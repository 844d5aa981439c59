"""LIMR's learning-impact score (LIM; arXiv 2502.11886, GAIR-NLP/LIMR; rap.md §8.3, §9 item 14).

Each sample has a reward trajectory r_i(k) over K checkpoints / epochs of a short full-data RL run; the
average curve is r̄(k) = mean_i r_i(k). LIMR's normalised alignment score is

    s_i = 1 - sum_k (r_i(k) - r̄(k))^2 / sum_k (1 - r̄(k))^2

(1 = the sample learns exactly like the average; low or negative = far from it). LIMR keeps s_i > θ
(its script's default θ = 0.2); with a budget we keep the top-``budget`` by s_i instead.

Missing entries (a sample not drawn in an epoch) are forward-filled from the sample's previous value, as
LIMR's loader does; leading gaps take the first observed value (our choice). A sample never observed
has NaN score and is never kept. If r̄(k) = 1 for every k the denominator is 0: every score is then 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from dualtune.selection.baselines import check_ids, resolve_budget
from dualtune.selection.budget import fit_to_budget, ranked_budget_orders

LIMR_REASONS = {
    "kept_limr": "learning-impact score s > threshold (or among the top `budget` by s)",
    "dropped_limr": "learning-impact score s <= threshold",
    "dropped_missing_score": "no reward trajectory for this sample",
}


def fill_trajectories(rewards) -> np.ndarray:
    """``[N, K]`` rewards with NaN gaps forward-filled per row (leading gaps: first observed value)."""
    r = np.array(rewards, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] == 0:
        raise ValueError(f"rewards must have shape [N, K] with K >= 1, got {r.shape}")
    for row in r:
        seen = np.flatnonzero(~np.isnan(row))
        if seen.size == 0:
            continue
        row[: seen[0]] = row[seen[0]]
        for k in range(seen[0] + 1, row.size):
            if np.isnan(row[k]):
                row[k] = row[k - 1]
    return r


def limr_scores(rewards) -> np.ndarray:
    """LIM score s_i per row of ``rewards [N, K]`` (after :func:`fill_trajectories`)."""
    r = fill_trajectories(rewards)
    observed = ~np.isnan(r).any(axis=1)
    if not observed.any():
        return np.full(r.shape[0], np.nan)
    avg = r[observed].mean(axis=0)
    denom = float(((1.0 - avg) ** 2).sum())
    if denom == 0.0:
        return np.where(observed, 1.0, np.nan)
    return np.where(observed, 1.0 - ((r - avg) ** 2).sum(axis=1) / denom, np.nan)


def trajectories_from_records(ids, records: Iterable[Mapping], epoch_key: str = "epoch",
                              reward_key: str = "reward") -> np.ndarray:
    """``[N, K]`` mean reward per (sample, epoch) from logged records ``{id, <epoch_key>, <reward_key>}``.

    Epochs are the sorted distinct values of ``epoch_key``; several records of one (id, epoch) (several
    rollouts) are averaged; (id, epoch) pairs without records are NaN; unknown ids are ignored.
    """
    ids = check_ids(ids)
    where = {i: k for k, i in enumerate(ids)}
    rows = [(where[r["id"]], r[epoch_key], float(r[reward_key])) for r in records if r["id"] in where]
    epochs = sorted({e for _, e, _ in rows})
    col = {e: k for k, e in enumerate(epochs)}
    total = np.zeros((len(ids), max(1, len(epochs))))
    count = np.zeros_like(total)
    for i, e, value in rows:
        total[i, col[e]] += value
        count[i, col[e]] += 1
    with np.errstate(invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def select_limr(ids, rewards, threshold: float = 0.2, budget=None, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Keep ``s > threshold`` (``budget`` None) or exactly the top-``budget`` samples by s (seeded ties)."""
    ids = check_ids(ids)
    scores = limr_scores(rewards)
    if scores.shape != (len(ids),):
        raise ValueError(f"rewards has {scores.shape[0]} rows, expected {len(ids)}")
    missing = np.isnan(scores)
    with np.errstate(invalid="ignore"):
        kept = ~missing & (scores > float(threshold))
    reasons = ["dropped_missing_score" if missing[i] else "kept_limr" if kept[i] else "dropped_limr"
               for i in range(len(ids))]
    if budget is None:
        return kept, reasons
    drop, fill = ranked_budget_orders(ids, kept, scores, seed)
    return fit_to_budget(kept, reasons, resolve_budget(len(ids), budget), drop, fill)
