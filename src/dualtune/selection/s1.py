"""s1-style selection (arXiv 2501.19393; related.md §1, rap.md §9 item 14): quality -> difficulty -> diversity.

s1 picked 1,000 of 59k questions in three stages. Ours, on a training split scored by the base model:

1. **Quality**: drop samples without a usable question / gold answer (``quality_ok``; the score recipe
   derives it from the row: non-empty question and answer, and for a multiple-choice sample an answer
   among the option letters). These are never kept (reason ``dropped_quality``).
2. **Difficulty**: s1 drops questions that its reference models answer correctly; here a sample is
   *difficult* iff the base model's multimodal pass rate p <= ``max_pass_rate`` (default 0: none of the M
   rollouts correct). NaN p counts as not difficult.
3. **Diversity**: repeat until the budget is met: draw a domain (subtask) uniformly among those with
   candidates left, then one of its samples with probability proportional to 2^-rank, rank 0 being the
   longest reasoning trace (s1 favours long traces); remove it from the pool.

If the difficult pool runs out before the budget, the draw continues over the remaining quality samples
(not difficult, hardest first: the pool is ordered by p ascending, then trace length) — reason
``added_budget`` — so that ``n_kept = min(budget, #quality)``. Draws use ``numpy.random.default_rng(seed)``
on the samples in id order, so the result depends on the data and the seed only.
"""

from __future__ import annotations

import numpy as np

from dualtune.selection.baselines import check_ids, id_ranks, resolve_budget
from dualtune.selection.cde import GRID_EPS, as_mask, as_vector

S1_REASONS = {
    "kept_s1": "quality ok, difficult (p <= max_pass_rate), drawn by the domain-uniform / long-trace sampler",
    "dropped_s1_easy": "quality ok but solved by the base model (p > max_pass_rate)",
    "dropped_quality": "no usable question / gold answer (or answer not among the options)",
    "not_selected": "eligible but outside the budget",
}


def s1_draw(pools: dict, lengths: np.ndarray, n: int, rng) -> list[int]:
    """Draw ``n`` indices: a domain uniformly, then within it 2^-rank by trace length (longest rank 0)."""
    pools = {d: sorted(idx, key=lambda i: (-lengths[i],)) for d, idx in pools.items() if idx}
    picked = []
    while len(picked) < n and pools:
        domain = sorted(pools)[rng.integers(len(pools))]
        members = pools[domain]
        weights = 0.5 ** np.arange(len(members))
        j = int(rng.choice(len(members), p=weights / weights.sum()))
        picked.append(members.pop(j))
        if not members:
            del pools[domain]
    return picked


def select_s1(ids, subtasks, p, trace_lengths, quality_ok, budget=1000, max_pass_rate: float = 0.0,
              seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """s1-style selection of ``resolve_budget(N, budget)`` samples (see the module docstring);
    ``budget=None`` keeps every difficult quality sample."""
    ids = check_ids(ids)
    n = len(ids)
    rates = as_vector(p, "p", n)
    lengths = np.nan_to_num(as_vector(trace_lengths, "trace_lengths", n), nan=0.0)
    quality = as_mask(quality_ok, "quality_ok", n)
    subtasks = list(subtasks)
    if len(subtasks) != n:
        raise ValueError(f"subtasks has length {len(subtasks)}, expected {n}")
    with np.errstate(invalid="ignore"):
        difficult = quality & (rates <= float(max_pass_rate) + GRID_EPS)
    target = int(difficult.sum()) if budget is None else resolve_budget(n, budget)
    order = np.argsort(id_ranks(ids), kind="stable")  # id order: input-order independent
    rng = np.random.default_rng(seed)

    pools: dict = {}
    for i in order:
        if difficult[i]:
            pools.setdefault(str(subtasks[i]), []).append(int(i))
    first = s1_draw(pools, lengths, target, rng)
    rest = [int(i) for i in order if quality[i] and not difficult[i]]
    rest.sort(key=lambda i: (np.nan_to_num(rates[i], nan=np.inf), -lengths[i]))
    extra = rest[: target - len(first)]

    kept = np.zeros(n, dtype=bool)
    kept[first] = True
    kept[extra] = True
    reasons = []
    chosen_first = set(first)
    for i in range(n):
        if not quality[i]:
            reasons.append("dropped_quality")
        elif i in chosen_first:
            reasons.append("kept_s1")
        elif kept[i]:
            reasons.append("added_budget")
        elif difficult[i]:
            reasons.append("not_selected")
        else:
            reasons.append("dropped_s1_easy")
    return kept, reasons
