"""DRM — RAP's Difficulty-aware Replacement Module and the full Algorithm 1 (rap.md §4-§5).

Difficulty is computed from the M multimodal rollouts: D_diff = 1 - p_mm (§4.1, INFERRED).
Easy samples (D_diff = 0, all M rollouts correct) are removed from the CDE+ACE-selected
set and replaced by S_hard, the k hardest samples with D_diff in [1/M, 1) that are not
attention-biased (figure formula, §4.1).

The difficulty band, stated precisely: D_diff in [1/M, 1)  <=>  p_mm in (0, 1 - 1/M].
On the 1/M grid that is 1 <= #correct <= M - 1: at least one correct rollout (all-wrong
samples give GRPO no signal) and at least one wrong one (not easy). With M = 5 the band
is p_mm in {0.2, 0.4, 0.6, 0.8}; with M = 1 it is empty.

Unknowns made into parameters (§4.1, §9 item 6): k (default: the number of easy samples
removed, i.e. a fixed budget), the candidate pool, top-k vs random choice, the ACE filter
on candidates, and easy removal itself.
"""

from __future__ import annotations

import numpy as np

from dualtune.selection.baselines import check_ids, id_ranks, resolve_budget
from dualtune.selection.cde import GRID_EPS, as_mask, as_vector, cde_gap, cde_keep

# Per-sample reasons written by rap_select / drm_replace (decisive stage last wins).
RAP_REASONS = {
    "kept_cde": "passed CDE (gap > lambda_c) and ACE (not flagged); kept",
    "dropped_cde_gap": "CDE gap <= lambda_c: answerable without the image (language prior)",
    "dropped_ace": "passed CDE but ACE-flagged (attention-biased)",
    "dropped_easy_drm": "kept by CDE/ACE but all M multimodal rollouts correct; removed by DRM",
    "added_drm": "added by DRM: difficulty in [1/M, 1), not ACE-flagged, within budget k",
    "not_selected": "eligible DRM candidate, but outside the budget k",
    "kept_input": "kept in the input mask given to drm_replace (no prior reasons given)",
    "dropped_input": "not kept in the input mask given to drm_replace (no prior reasons given)",
}

DRM_POOLS = ("rejected", "all")
DRM_RULES = ("topk", "random")


def difficulty(p_mm) -> np.ndarray:
    """DRM difficulty D_diff = 1 - p_mm (fraction of wrong multimodal rollouts)."""
    return 1.0 - as_vector(p_mm, "p_mm")


def is_easy(p_mm) -> np.ndarray:
    """Mask of trivially easy samples: D_diff = 0, i.e. p_mm == 1 (within ``GRID_EPS``)."""
    return as_vector(p_mm, "p_mm") >= 1.0 - GRID_EPS


def in_hard_band(p_mm, M: int) -> np.ndarray:
    """Mask of D_diff in [1/M, 1), i.e. p_mm in (0, 1 - 1/M] (see module docstring)."""
    if int(M) < 1:
        raise ValueError(f"M must be >= 1, got {M}")
    p = as_vector(p_mm, "p_mm")
    with np.errstate(invalid="ignore"):
        return (p > GRID_EPS) & (p <= 1.0 - 1.0 / int(M) + GRID_EPS)


def drm_replace(
    ids,
    p_mm,
    kept,
    ace_flag,
    M: int,
    k=None,
    pool: str = "rejected",
    rule: str = "topk",
    seed: int = 0,
    *,
    prior_reasons=None,
    remove_easy: bool = True,
    ace_filter: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Remove easy samples from ``kept`` and add up to k hard, ACE-clean replacements.

    Args:
        ids: unique sample ids (used for deterministic tie-breaking: ascending id).
        p_mm: multimodal pass rates ``[N]`` over M rollouts.
        kept: bool ``[N]`` — the set selected by the earlier stages (CDE + ACE).
        ace_flag: bool ``[N]`` — ACE attention-bias flags; must be computed for every
            in-band candidate (see :func:`ace_needed`).
        M: rollouts per sample (defines the band [1/M, 1)).
        k: replacement budget: ``None`` = number of easy samples removed (fixed budget);
            an int is a count, a float in (0, 1] a fraction of the eligible candidates
            (``resolve_budget``). Capped at the number of candidates.
        pool: "rejected" — candidates are samples not in ``kept`` (rejected by CDE/ACE;
            Algorithm 1 with Pool = D minus S_CDE, §5). "all" — the literal Algorithm 1
            with Pool = D: S_hard is the top-k of the *whole* dataset and is unioned with
            the kept set, so picks that are already kept add nothing and the subset can
            shrink. (Reading "all" as "every sample not currently kept" would be identical
            to "rejected", because removed easy samples are never in the band.)
        rule: "topk" — largest D_diff first, ties by ascending id; "random" — k drawn
            uniformly from the candidates with ``numpy.random.default_rng(seed)``.
        prior_reasons: reasons from earlier stages to refine (default: "kept_input" /
            "dropped_input").
        remove_easy: drop easy samples from ``kept`` (ablation switch).
        ace_filter: require ``not ace_flag`` for candidates (ablation switch).

    Returns:
        ``(new_kept, reasons)`` with reasons from ``RAP_REASONS``.
    """
    if pool not in DRM_POOLS:
        raise ValueError(f"pool must be one of {DRM_POOLS}, got {pool!r}")
    if rule not in DRM_RULES:
        raise ValueError(f"rule must be one of {DRM_RULES}, got {rule!r}")
    ids = check_ids(ids)
    n = len(ids)
    p = as_vector(p_mm, "p_mm", n)
    kept_in = as_mask(kept, "kept", n)
    flags = as_mask(ace_flag, "ace_flag", n)
    if prior_reasons is None:
        reasons = ["kept_input" if keep else "dropped_input" for keep in kept_in]
    else:
        reasons = list(prior_reasons)
        if len(reasons) != n:
            raise ValueError(f"prior_reasons has length {len(reasons)}, expected {n}")

    # 1. Remove trivially easy samples from the selected set.
    easy = kept_in & is_easy(p) if remove_easy else np.zeros(n, dtype=bool)
    base = kept_in & ~easy

    # 2. Eligible candidates: in the hard band, ACE-clean, from the requested pool.
    candidates = in_hard_band(p, M)
    if ace_filter:
        candidates &= ~flags
    if pool == "rejected":
        candidates &= ~kept_in
    cand_idx = np.flatnonzero(candidates)
    n_take = int(easy.sum()) if k is None else resolve_budget(len(cand_idx), k)
    n_take = min(n_take, len(cand_idx))

    # 3. Choose S_hard: hardest first (ties by id) or a seeded uniform draw.
    cand_idx = cand_idx[np.argsort(id_ranks(ids)[cand_idx], kind="stable")]  # id order
    if rule == "topk":
        hardness = np.round(1.0 - p[cand_idx], 9)  # grid values: rounding merges float noise
        picked = cand_idx[np.argsort(-hardness, kind="stable")[:n_take]]
    else:
        picked = np.random.default_rng(seed).choice(cand_idx, size=n_take, replace=False)
    chosen = np.zeros(n, dtype=bool)
    chosen[picked] = True

    # 4. New set and reasons (already-kept picks under pool="all" keep their reason).
    new_kept = base | chosen
    for i in range(n):
        if easy[i]:
            reasons[i] = "dropped_easy_drm"
        elif chosen[i] and not base[i]:
            reasons[i] = "added_drm"
        elif candidates[i] and not new_kept[i]:
            reasons[i] = "not_selected"
    return new_kept, reasons


def ace_needed(p_mm, p_txt, M: int, lam_c: float = 0.5) -> np.ndarray:
    """Samples whose ACE flag Algorithm 1 reads: S_CDE plus every in-band DRM candidate.

    Scoring attention only for these (line 3 of §5: ``x in S_CDE ∪ Pool``) saves the
    attention pass on out-of-band CDE-rejected samples.
    """
    return cde_keep(cde_gap(p_mm, p_txt), lam_c) | in_hard_band(p_mm, M)


def rap_select(
    ids,
    p_mm,
    p_txt,
    ace_flag,
    M: int,
    lam_c: float = 0.5,
    drm: bool = True,
    *,
    cde: bool = True,
    **drm_kw,
) -> tuple[np.ndarray, list[str]]:
    """RAP Algorithm 1 (digest §5): CDE -> ACE filter -> DRM.

    1. S_CDE = {x : p_mm - p_txt > lam_c} (strict, see ``cde_keep``).
    2. S_ACE = {x in S_CDE : not ace_flag}.
    3. If ``drm``: ``drm_replace(ids, p_mm, S_ACE, ace_flag, M, **drm_kw)`` — remove easy
       samples of S_ACE, add the k hardest ACE-clean samples with D_diff in [1/M, 1).

    Ablation switches: ``cde=False`` skips stage 1 (``p_txt`` may then be None);
    ``ace_flag=None`` disables ACE (no sample is flagged, also not DRM candidates);
    ``drm=False`` stops after stage 2.

    Returns:
        ``(kept, reasons)`` with reasons from ``RAP_REASONS``.
    """
    ids = check_ids(ids)
    n = len(ids)
    p = as_vector(p_mm, "p_mm", n)
    flags = np.zeros(n, dtype=bool) if ace_flag is None else as_mask(ace_flag, "ace_flag", n)

    if cde:
        if p_txt is None:
            raise ValueError("p_txt is required when cde=True")
        cde_pass = cde_keep(cde_gap(p, as_vector(p_txt, "p_txt", n)), lam_c)
    else:
        cde_pass = np.ones(n, dtype=bool)
    kept = cde_pass & ~flags
    reasons = [
        "kept_cde" if kept[i] else ("dropped_cde_gap" if not cde_pass[i] else "dropped_ace") for i in range(n)
    ]
    if not drm:
        if drm_kw:
            raise TypeError(f"DRM options given with drm=False: {sorted(drm_kw)}")
        return kept, reasons
    return drm_replace(ids, p, kept, flags, M, prior_reasons=reasons, **drm_kw)
