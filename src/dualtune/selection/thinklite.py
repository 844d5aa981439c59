"""ThinkLite-VL's MCTS difficulty filter, "lite" form (related.md §1.1, §2.1 item 3; arXiv 2504.07934).

ThinkLite runs MCTS over reasoning steps and records K, the iteration at which the model first reaches
the correct answer (at most 50); it keeps ``K > 5`` plus the samples still unsolved after 50 iterations.
The lite form (our simplification, labelled as such in conf/selection/thinklite_mcts.yaml): one iteration
is one sampled CoT rollout, so K = the 1-based index of the first correct rollout among up to N
independent rollouts (E[K] ~ 1/p). Unsolved samples get ``K = N + 1``.
"""

from __future__ import annotations

import numpy as np

from dualtune.selection.baselines import check_ids, resolve_budget
from dualtune.selection.budget import fit_to_budget, ranked_budget_orders

THINKLITE_REASONS = {
    "kept_mcts_hard": "solved, but only after more than min_iters iterations (K > min_iters)",
    "kept_mcts_unsolved": "not solved within the iteration budget (K = N + 1)",
    "dropped_mcts_easy": "solved within min_iters iterations (K <= min_iters)",
    "dropped_mcts_unsolved": "not solved within the iteration budget, and keep_unsolved is false",
    "dropped_missing_score": "no rollouts scored for this sample",
}


def iterations_to_solve(correct) -> np.ndarray:
    """K per sample: 1-based index of the first correct rollout in each row of ``correct [N, iters]``;
    ``iters + 1`` for a row with none. Rows may be ragged (a list of lists); an empty row gives NaN."""
    out = []
    for row in correct:
        values = np.asarray(row, dtype=np.float64).ravel()
        if values.size == 0:
            out.append(np.nan)
            continue
        if not np.isin(values, (0.0, 1.0)).all():
            raise ValueError("correct must hold 0/1 values")
        hits = np.flatnonzero(values == 1.0)
        out.append(float(hits[0] + 1) if hits.size else float(values.size + 1))
    return np.asarray(out, dtype=np.float64)


def select_thinklite(ids, k_iters, max_iters: int, min_iters: int = 5, keep_unsolved: bool = True,
                     budget=None, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Keep ``K > min_iters`` (solved late) and, if ``keep_unsolved``, ``K = max_iters + 1`` (unsolved).

    With ``budget`` (``resolve_budget``), the kept set is fitted to exactly that many samples, ranking by
    K descending (unsolved first, then the latest solved; seeded random ties, see ``selection.budget``).
    """
    ids = check_ids(ids)
    k = np.asarray(k_iters, dtype=np.float64)
    if k.shape != (len(ids),):
        raise ValueError(f"k_iters has shape {k.shape}, expected ({len(ids)},)")
    if int(max_iters) < 1 or int(min_iters) < 0:
        raise ValueError("max_iters must be >= 1 and min_iters >= 0")
    missing = np.isnan(k)
    unsolved = ~missing & (k > max_iters)
    hard = ~missing & ~unsolved & (k > min_iters)
    kept = hard | (unsolved & bool(keep_unsolved))
    reasons = ["dropped_missing_score" if missing[i] else
               ("kept_mcts_unsolved" if kept[i] else "dropped_mcts_unsolved") if unsolved[i] else
               "kept_mcts_hard" if hard[i] else "dropped_mcts_easy" for i in range(len(ids))]
    if budget is None:
        return kept, reasons
    priority = np.where(unsolved & ~bool(keep_unsolved), -1.0, k)  # excluded unsolved: added last
    drop, fill = ranked_budget_orders(ids, kept, priority, seed)
    return fit_to_budget(kept, reasons, resolve_budget(len(ids), budget), drop, fill)
