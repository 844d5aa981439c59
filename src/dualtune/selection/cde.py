"""CDE — RAP's Causal Discrepancy Estimator, as pure array math (digest rap.md §2).

A sample is scored with M multimodal rollouts (image + text) and M text-only rollouts
(image removed). Each rollout gets a 0/1 correctness score; the pass rate is its mean,
and the discrepancy D(x) = p_mm(x) - p_txt(x) (signed, as in the released code, §2.1-2.2).
Samples with D(x) <= lambda_c are "language-prior-biased" and dropped (default
lambda_c = 0.5, §5). The paper does not say whether the threshold is strict; we use
strict ``>`` in exact arithmetic (see ``GRID_EPS``).

This module also hosts the small input validators shared by the other selection modules.
"""

from __future__ import annotations

import numpy as np

# Pass rates are rationals k/M, but differences of floats are not exact:
# 0.8 - 0.2 = 0.6000000000000001 and 0.6 - 0.4 = 0.19999999999999996. Thresholds are
# therefore applied with this tolerance so that a value *mathematically* equal to the
# threshold is treated the same way whatever float noise it carries (far below 1/M).
GRID_EPS = 1e-9


def as_vector(values, name: str, n: int | None = None) -> np.ndarray:
    """Return ``values`` as a 1-D float64 array, checking its length against ``n`` if given."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]}, expected {n}")
    return arr


def as_mask(values, name: str, n: int | None = None) -> np.ndarray:
    """Return ``values`` as a 1-D bool array (only 0/1/bool accepted), length-checked."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]}, expected {n}")
    if arr.dtype != np.bool_:
        if arr.size and not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be boolean (or 0/1)")
        arr = arr.astype(bool)
    return arr


def pass_rate(scores) -> np.ndarray:
    """Mean correctness over rollouts.

    Args:
        scores: array ``[N, M]`` of 0/1 (or bool) correctness scores, one row per sample,
            one column per rollout (M >= 1).

    Returns:
        float64 array ``[N]`` with the fraction of correct rollouts per sample.
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"scores must have shape [N, M] with M >= 1, got {arr.shape}")
    if arr.size and not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError("scores must be 0/1 correctness values")
    return arr.mean(axis=1)


def cde_gap(p_mm, p_txt) -> np.ndarray:
    """CDE discrepancy D(x) = p_mm - p_txt (signed; digest §2.1, INFERRED exact form).

    Args:
        p_mm: multimodal pass rates ``[N]``.
        p_txt: text-only pass rates ``[N]`` (same shape).
    """
    mm = np.asarray(p_mm, dtype=np.float64)
    txt = np.asarray(p_txt, dtype=np.float64)
    if mm.shape != txt.shape:
        raise ValueError(f"p_mm shape {mm.shape} != p_txt shape {txt.shape}")
    return mm - txt


def cde_keep(gap, lam_c: float = 0.5, eps: float = GRID_EPS) -> np.ndarray:
    """Keep mask of the CDE stage: ``gap > lam_c`` (strict), NaN gaps are dropped.

    Strictness is decided in exact arithmetic: a gap within ``eps`` of ``lam_c`` counts
    as equal and is dropped, so ``0.8 - 0.2`` (= 0.6000000000000001) is *not* above
    ``lam_c = 0.6``. Pass ``eps=0`` for a raw float comparison.
    """
    g = np.asarray(gap, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return g > lam_c + eps
