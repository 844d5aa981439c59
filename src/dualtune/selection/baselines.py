"""Baseline selectors: random, pass-rate band, CoT length (digest related.md §2.1, rap.md §9).

Every selector returns ``(kept, reasons)``: a bool array aligned with ``ids`` and one
reason string per sample from ``BASELINE_REASONS``. All of them are deterministic:
ties and random draws are resolved on the samples sorted by id, so the result depends on
the set of (id, score) pairs and the seed, not on the order the rows arrive in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from dualtune.selection.cde import GRID_EPS, as_vector

BASELINE_REASONS = {
    "kept_random": "drawn by the seeded random selector",
    "kept_pass_rate": "pass rate inside the selector's band",
    "dropped_pass_rate_low": "pass rate below the band (too hard)",
    "dropped_pass_rate_high": "pass rate above the band (too easy)",
    "dropped_missing_score": "no score (NaN) for this sample",
    "kept_length": "among the `budget` longest (or shortest) CoTs",
    "not_selected": "eligible but outside the budget",
}


@dataclass(frozen=True)
class PassRateBand:
    """Keep rule ``low (<|<=) p (<|<=) high``; ``None`` bounds are open; ``rollouts`` is a hint."""

    low: float | None
    high: float | None
    low_strict: bool = False
    high_strict: bool = False
    rollouts: int | None = None


# Presets from related.md §2.1 (pass-rate self-consistency filters).
PASS_RATE_PRESETS = {
    # ThinkLite-VL's self-consistency baseline: 50 rollouts, keep accuracy < 0.2.
    "thinklite_sc": PassRateBand(low=None, high=0.2, high_strict=True, rollouts=50),
    # Mixed-outcome prompts only (non-zero GRPO advantage): 0 < p < 1.
    "informative": PassRateBand(low=0.0, high=1.0, low_strict=True, high_strict=True, rollouts=8),
    # Medium band: 0.1 <= p <= 0.9.
    "balanced": PassRateBand(low=0.1, high=0.9, rollouts=8),
}


def check_ids(ids) -> list:
    """Return ``ids`` as a list, raising if any id is repeated."""
    out = list(ids)
    if len(set(out)) != len(out):
        raise ValueError("ids must be unique")
    return out


def id_ranks(ids) -> np.ndarray:
    """Rank of each id in ascending id order (native ordering, ``str`` if types are mixed).

    String ids sort lexicographically ("10" < "9"); this only has to be deterministic.
    """
    ids = check_ids(ids)
    try:
        order = sorted(range(len(ids)), key=lambda k: ids[k])
    except TypeError:
        order = sorted(range(len(ids)), key=lambda k: str(ids[k]))
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[order] = np.arange(len(ids))
    return ranks


def resolve_budget(n: int, budget) -> int:
    """Number of samples a budget allows out of ``n``.

    A float in (0, 1] is a fraction: ``round(n * budget)`` with halves rounded up. An
    integer is a count, capped at ``n``. ``1`` means one sample; ``1.0`` means all of them.
    """
    if isinstance(budget, bool):
        raise TypeError("budget must be an int count or a float fraction, not bool")
    if isinstance(budget, Integral):
        if budget < 0:
            raise ValueError(f"budget count must be >= 0, got {budget}")
        return min(int(n), int(budget))
    if isinstance(budget, Real):
        if not 0.0 < float(budget) <= 1.0:
            raise ValueError(f"budget fraction must be in (0, 1], got {budget}")
        return min(int(n), int(math.floor(n * float(budget) + 0.5)))
    raise TypeError(f"budget must be an int or float, got {type(budget).__name__}")


def _top_by_score(ids, scores: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` highest scores, ties broken by ascending id."""
    order = np.lexsort((id_ranks(ids), -scores))  # last key is primary
    kept = np.zeros(len(scores), dtype=bool)
    kept[order[:k]] = True
    return kept


def select_random(ids, budget, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Seeded uniform random subset of size ``resolve_budget(len(ids), budget)``.

    The draw is a permutation of the id-sorted samples, so it is independent of the input
    order, and for a fixed seed smaller budgets are nested in larger ones (5k ⊂ 10k ⊂ ...).
    """
    ids = check_ids(ids)
    n = len(ids)
    k = resolve_budget(n, budget)
    by_id = np.argsort(id_ranks(ids), kind="stable")
    chosen = by_id[np.random.default_rng(seed).permutation(n)[:k]]
    kept = np.zeros(n, dtype=bool)
    kept[chosen] = True
    return kept, ["kept_random" if keep else "not_selected" for keep in kept]


def select_pass_rate(
    ids,
    p,
    preset: str | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
    low_strict: bool = False,
    high_strict: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """Keep samples whose pass rate lies in a band (a preset name, or explicit bounds).

    Presets (``PASS_RATE_PRESETS``): ``thinklite_sc`` p < 0.2 (meant for 50 rollouts),
    ``informative`` 0 < p < 1, ``balanced`` 0.1 <= p <= 0.9. Without a preset, ``low``
    / ``high`` (``None`` = unbounded) with ``*_strict`` choosing < over <=. Bounds are
    compared with ``GRID_EPS`` so that p = 10/50 counts as exactly 0.2. NaN is dropped.
    """
    ids = check_ids(ids)
    rates = as_vector(p, "p", len(ids))
    if preset is not None:
        if low is not None or high is not None:
            raise ValueError("give either a preset or explicit low/high, not both")
        if preset not in PASS_RATE_PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PASS_RATE_PRESETS)}")
        band = PASS_RATE_PRESETS[preset]
    else:
        band = PassRateBand(low, high, low_strict, high_strict)

    # Compare in exact arithmetic: values within GRID_EPS of a bound equal the bound.
    with np.errstate(invalid="ignore"):
        if band.low is None:
            too_low = np.zeros(len(ids), dtype=bool)
        else:
            too_low = rates <= band.low + GRID_EPS if band.low_strict else rates < band.low - GRID_EPS
        if band.high is None:
            too_high = np.zeros(len(ids), dtype=bool)
        else:
            too_high = rates >= band.high - GRID_EPS if band.high_strict else rates > band.high + GRID_EPS
    missing = np.isnan(rates)
    kept = ~(too_low | too_high | missing)
    reasons = []
    for k in range(len(ids)):
        if missing[k]:
            reasons.append("dropped_missing_score")
        elif too_low[k]:
            reasons.append("dropped_pass_rate_low")
        elif too_high[k]:
            reasons.append("dropped_pass_rate_high")
        else:
            reasons.append("kept_pass_rate")
    return kept, reasons


def select_length(ids, cot_lengths, budget, longest: bool = True) -> tuple[np.ndarray, list[str]]:
    """Keep the ``budget`` longest (or shortest) CoTs; equal lengths go to the smaller id.

    ``budget`` is resolved against all samples (``resolve_budget``); samples with NaN
    length are never kept (reason ``dropped_missing_score``).
    """
    ids = check_ids(ids)
    lengths = as_vector(cot_lengths, "cot_lengths", len(ids))
    missing = np.isnan(lengths)
    # The budget is relative to the whole dataset (comparable with select_random).
    k = min(resolve_budget(len(ids), budget), int((~missing).sum()))
    # Missing lengths sort last whichever direction is requested.
    scores = np.where(missing, -np.inf, lengths if longest else -lengths)
    kept = _top_by_score(ids, scores, k)
    reasons = [
        "dropped_missing_score" if missing[i] else ("kept_length" if kept[i] else "not_selected")
        for i in range(len(ids))
    ]
    return kept, reasons
