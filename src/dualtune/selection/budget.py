"""Fit a selector's kept set to a budget: trim in a drop order, fill in a fill order (issue 13 item 1).

``selection.budget`` (null | int count | float fraction in (0, 1] of the training split, resolved by
``resolve_budget``) turns any score-based selector into one that keeps *exactly* ``min(budget, n)``
samples. The selector runs as usual; then

* too many kept: drop kept samples in the selector's **drop order** (first = least wanted) until the
  budget is met (reason ``dropped_budget``);
* too few kept: add not-kept samples in the selector's **fill order** (first = most wanted) until it
  is met (reason ``added_budget``). Samples with a missing score are never added.

RAP's orders (:func:`rap_budget_orders`, written down in conf/selection/rap.yaml and scoring/README.md):

* drop: first the DRM additions (reasons ``added_*``: ``added_drm``, the released script's
  ``added_released_readd``), least difficult first (1 - p_mm ascending) — the reverse of DRM's own
  top-k order; then the CDE keeps, smallest gap p_mm - p_txt first, then least difficult first;
* fill: first the samples neither ACE-flagged nor easy (p_mm < 1), then the rest (ACE-flagged or
  easy); within a tier by CDE gap descending, then in-band (1 <= #correct <= M - 1) before out-of-band,
  then difficulty descending.

Every remaining tie is broken by a seeded random rank (:func:`tie_ranks`): independent of the input
order, and not by id, because lab ids group by subtask and an id order would trim whole subtasks.
"""

from __future__ import annotations

import numpy as np

from dualtune.selection.baselines import check_ids, id_ranks
from dualtune.selection.cde import as_mask, as_vector
from dualtune.selection.drm import in_hard_band, is_easy

BUDGET_REASONS = {
    "dropped_budget": "selected by the method, then trimmed to selection.budget (lowest priority first)",
    "added_budget": "not selected by the method, added to reach selection.budget (highest priority first)",
}


def tie_ranks(ids, seed: int = 0) -> np.ndarray:
    """A seeded random rank per sample (0 .. n-1), a function of the id set and the seed only."""
    ids = check_ids(ids)
    n = len(ids)
    by_id = np.argsort(id_ranks(ids), kind="stable")  # positions in ascending id order
    ranks = np.empty(n, dtype=np.int64)
    ranks[by_id] = np.random.default_rng(seed).permutation(n)
    return ranks


def order_by(keys, ties: np.ndarray) -> np.ndarray:
    """Indices sorted ascending by ``keys`` (first key primary), remaining ties by ``ties``."""
    return np.lexsort((ties, *reversed([np.asarray(k, dtype=np.float64) for k in keys])))


def fit_to_budget(kept, reasons, target: int, drop_order, fill_order) -> tuple[np.ndarray, list[str]]:
    """Trim or fill ``kept`` to exactly ``target`` samples (fewer only when the fill order runs out).

    Args:
        kept: bool ``[N]`` — the selector's own result.
        reasons: one reason per sample (copied; changed samples get ``dropped_budget`` / ``added_budget``).
        target: the resolved budget (``resolve_budget(N, budget)``).
        drop_order: indices, least wanted first; every kept index must appear.
        fill_order: indices of the samples that may be added, most wanted first (not-kept ones are used).
    """
    kept = as_mask(kept, "kept").copy()
    reasons = list(reasons)
    if len(reasons) != len(kept):
        raise ValueError(f"reasons has length {len(reasons)}, expected {len(kept)}")
    if int(target) < 0:
        raise ValueError(f"target must be >= 0, got {target}")
    excess = int(kept.sum()) - int(target)
    if excess > 0:
        drops = [int(i) for i in drop_order if kept[i]][:excess]
        if len(drops) < excess:
            raise ValueError("drop_order does not cover every kept sample")
        for i in drops:
            kept[i] = False
            reasons[i] = "dropped_budget"
    elif excess < 0:
        for i in [int(i) for i in fill_order if not kept[i]][:-excess]:
            kept[i] = True
            reasons[i] = "added_budget"
    return kept, reasons


def rap_budget_orders(ids, kept, reasons, p_mm, gap, ace_flag, M: int, seed: int = 0):
    """RAP's (drop_order, fill_order) for :func:`fit_to_budget` (see the module docstring).

    ``gap`` may be NaN (CDE off or not scored): such samples come after every scored gap within their
    tier. Samples with NaN ``p_mm`` are never added.
    """
    ids = check_ids(ids)
    n = len(ids)
    kept = as_mask(kept, "kept", n)
    p = as_vector(p_mm, "p_mm", n)
    g = as_vector(gap, "gap", n)
    flags = as_mask(ace_flag, "ace_flag", n)
    ties = tie_ranks(ids, seed)
    diff = np.nan_to_num(1.0 - p, nan=np.inf)
    gap_up = np.nan_to_num(g, nan=-np.inf)  # unscored gaps count as the smallest

    added = np.array([str(r).startswith("added_") for r in reasons], dtype=bool)
    drop = order_by([~added, gap_up, diff], ties)  # added first; then smallest gap, least difficult
    drop = drop[kept[drop]]

    band = in_hard_band(p, M)
    tier = flags | is_easy(p)
    fill = order_by([tier, -gap_up, ~band, -diff], ties)
    fill = fill[~kept[fill] & ~np.isnan(p[fill])]
    return drop, fill


def band_budget_orders(ids, kept, scores, center: float, seed: int = 0):
    """(drop_order, fill_order) for a band selector: farthest from ``center`` dropped first, closest added
    first; NaN scores are never added (:func:`ranked_budget_orders` with priority ``-|score - center|``)."""
    s = as_vector(scores, "scores", len(check_ids(ids)))
    return ranked_budget_orders(ids, kept, -np.abs(s - float(center)), seed)


def ranked_budget_orders(ids, kept, priority, seed: int = 0):
    """(drop_order, fill_order) from one priority score (higher = more wanted; NaN never added)."""
    ids = check_ids(ids)
    n = len(ids)
    kept = as_mask(kept, "kept", n)
    pr = as_vector(priority, "priority", n)
    ties = tie_ranks(ids, seed)
    up = np.nan_to_num(pr, nan=-np.inf)
    drop = order_by([up], ties)
    fill = order_by([-up], ties)
    return drop[kept[drop]], fill[~kept[fill] & ~np.isnan(pr[fill])]
