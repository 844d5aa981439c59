"""The selection rules of RAP's released ``select/selection.py`` (digest rap.md §8.3, §4.2).

This is the "code-faithful" mode, distinct from the paper's Algorithm 1 (see §8.6):

* per-sample pass rates p_img, p_txt = fraction of rollouts with overall reward == 1.0
  (answer *and* format correct; reward = 0.9 * acc + 0.1 * fmt, see :func:`released_reward`);
* "easy" = all rollouts have reward >= 0.9 (answer correct, format ignored);
  "right1" = exactly one multimodal rollout with reward >= 0.9;
* LIMR similarity s = 1 - (p_img - mean_img)^2 / (1 - mean_img)^2, with mean_img the mean
  of p_img over all scored samples (a single-"epoch" LIMR learning-impact score);
* main subset: s >= 0.6 and gap = p_img - p_txt > 0.2, minus easy samples;
* re-add pool: right1 samples with [s >= 0.85 and (gap > mean_img - mean_txt or gap >= 0.2)]
  or gap >= 0.6 (the last clause is unreachable for right1 but kept for fidelity);
* add ``int(len(pool) * 0.1)`` of the pool drawn with ``random.seed(42); random.sample``
  over the pool in dataset order — :class:`random.Random` gives the identical draw.

Float edges at 0.2 (§2.2): the script compares raw floats, so 0.8 - 0.6 =
0.20000000000000007 passes ``> 0.2`` while 0.6 - 0.4 and 1.0 - 0.8 (0.19999999999999996)
and 0.2 - 0.0 (exactly 0.2) fail. Our default follows the script's *semantics* —
strictly greater in exact arithmetic — using ``gap_eps = 1e-9``: a gap that is
mathematically 0.2 always fails ``> 0.2`` and always passes ``>= 0.2``. This differs from
the script only on the (0.8, 0.6) pair; ``gap_eps=0.0`` reproduces the raw float
comparisons (and so the released subset) bit for bit. Similarity thresholds use raw
comparisons: s can only equal 0.6 or 0.85 exactly when mean_img = 1 (irrational ratio
otherwise), so no tolerance is needed there.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dualtune.selection.baselines import check_ids

RELEASED_REASONS = {
    "kept_released_main": "s >= 0.6, gap > 0.2 and not easy (the script's main '_9' subset)",
    "added_released_readd": "right1 re-add pool member drawn by the seeded 10 % sample",
    "dropped_easy": "passed similarity and gap, but all rollouts have reward >= 0.9",
    "dropped_similarity": "LIMR similarity s < 0.6 (pass rate far from the dataset mean)",
    "dropped_gap": "similarity ok, but gap p_img - p_txt <= 0.2",
    "not_selected": "in the right1 re-add pool but not drawn",
}

RELEASED_EPS = 1e-9


def released_reward(answer_correct: bool, format_ok: bool) -> float:
    """Overall reward of the released code: 0.9 * accuracy + 0.1 * format (§6.2)."""
    return 0.9 * float(answer_correct) + 0.1 * float(format_ok)


@dataclass(frozen=True)
class ReleasedFeatures:
    """Per-sample quantities the script computes (arrays aligned with the records)."""

    ids: list
    p_img: np.ndarray
    p_txt: np.ndarray
    gap: np.ndarray
    similarity: np.ndarray
    easy: np.ndarray
    right1: np.ndarray
    mean_img: float
    mean_txt: float


def _rewards(record: Mapping, key: str) -> np.ndarray:
    """Validated float array of one record's per-rollout rewards."""
    values = np.asarray(record[key], dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"record {record.get('id')!r}: {key} must be a non-empty list of rewards")
    return values


def released_code_features(records: Sequence[Mapping]) -> ReleasedFeatures:
    """Pass rates, gap, similarity and easy/right1 groups for per-sample records.

    Each record is a mapping with ``id`` (unique), ``img_rewards`` and ``txt_rewards``:
    the overall rewards (0.9 * acc + 0.1 * fmt) of the multimodal and text-only rollouts
    (5 each in the released setup). Samples the script never scored (its validation
    loader drops the last N mod 512 rows, §8.4) should simply not be passed.
    """
    if len(records) == 0:
        raise ValueError("records is empty")
    ids = check_ids(r["id"] for r in records)
    img = [_rewards(r, "img_rewards") for r in records]
    txt = [_rewards(r, "txt_rewards") for r in records]

    # Pass rate = share of rollouts with reward exactly 1.0, as count / total (script form).
    p_img = np.array([float((r == 1).sum()) / r.size for r in img])
    p_txt = np.array([float((r == 1).sum()) / r.size for r in txt])
    answer_correct = np.array([int((r >= 0.9).sum()) for r in img])
    easy = np.array([c == r.size for c, r in zip(answer_correct, img)])
    right1 = answer_correct == 1

    mean_img, mean_txt = float(np.mean(p_img)), float(np.mean(p_txt))
    # LIMR similarity; mean_img = 1 means every sample is perfect (0/0): call it s = 1.
    if mean_img < 1.0:
        similarity = 1.0 - (p_img - mean_img) ** 2 / (1.0 - mean_img) ** 2
    else:
        similarity = np.ones_like(p_img)
    return ReleasedFeatures(ids, p_img, p_txt, p_img - p_txt, similarity, easy, right1, mean_img, mean_txt)


def released_code_select(
    records: Sequence[Mapping],
    seed: int = 42,
    gap_threshold: float = 0.2,
    sim_threshold: float = 0.6,
    readd_fraction: float = 0.10,
    *,
    pool_sim_threshold: float = 0.85,
    pool_gap_threshold: float = 0.2,
    pool_high_gap: float = 0.6,
    gap_eps: float = RELEASED_EPS,
) -> tuple[np.ndarray, list[str]]:
    """Reproduce the released script's subset as a keep mask over ``records``.

    Args:
        records: per-sample mappings in dataset order (see :func:`released_code_features`).
        seed: seed of the random re-add (script: 42).
        gap_threshold: main-subset gap rule ``gap > 0.2``.
        sim_threshold: main-subset similarity gate ``s >= 0.6``.
        readd_fraction: share of the right1 pool re-added, ``int(len(pool) * 0.1)``.
        pool_sim_threshold: the script's ``--similarity_threshold`` (0.85) for the pool.
        pool_gap_threshold: right1 pool rule ``gap >= 0.2``.
        pool_high_gap: the (unreachable for right1) ``gap >= 0.6`` clause.
        gap_eps: tolerance for gap comparisons (see module docstring); 0 = raw floats.

    Returns:
        ``(kept, reasons)`` with reasons from ``RELEASED_REASONS``.
    """
    f = released_code_features(records)
    n = len(f.ids)
    mean_gap = f.mean_img - f.mean_txt

    # Main ("_9") subset: similarity gate and strict gap, then drop easy samples.
    sim_ok = f.similarity >= sim_threshold
    gap_ok = f.gap > gap_threshold + gap_eps
    main = sim_ok & gap_ok & ~f.easy

    # Right1 re-add pool (the script's `selected_ids` ∩ right1).
    pool_sim = f.similarity >= pool_sim_threshold
    pool_gap = (f.gap > mean_gap + gap_eps) | (f.right1 & (f.gap >= pool_gap_threshold - gap_eps))
    selected = (pool_sim & pool_gap) | (f.right1 & (f.gap >= pool_high_gap - gap_eps))
    pool_idx = [i for i in range(n) if selected[i] and f.right1[i]]  # dataset order
    in_pool = set(pool_idx)

    # Seeded draw exactly as `random.seed(seed); random.sample(pool, int(len(pool) * frac))`.
    n_draw = int(len(pool_idx) * readd_fraction)
    drawn = set(random.Random(seed).sample(pool_idx, n_draw))
    readd = np.array([i in drawn for i in range(n)], dtype=bool)

    kept = main | readd
    reasons = []
    for i in range(n):
        if main[i]:
            reasons.append("kept_released_main")
        elif readd[i]:
            reasons.append("added_released_readd")
        elif sim_ok[i] and gap_ok[i]:
            reasons.append("dropped_easy")
        elif i in in_pool:
            reasons.append("not_selected")
        elif not sim_ok[i]:
            reasons.append("dropped_similarity")
        else:
            reasons.append("dropped_gap")
    return kept, reasons
