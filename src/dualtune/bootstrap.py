"""Paired bootstrap confidence intervals of the Thinking-Boundary quantities (moved out of
`dualtune.boundary`, which re-exports `paired_bootstrap`).

Accuracies of a resample are plain means of the resampled items, or, with per-item ``weights`` (an
aggregate row that is not sample-weighted, `dualtune.aggregates`), the weighted mean of the resampled
items with their fixed weights (a ratio estimator: a group missing from a resample simply drops out).
"""
from __future__ import annotations

import numpy as np

SCORE_KEYS = ("B_S", "B_L", "DT_S", "DT_L")
_BOOT_CELLS_PER_CHUNK = 2_000_000  # bounds the (resamples x items) index matrix held in memory


def as_score_array(name: str, scores) -> np.ndarray:
    """Per-item scores as a float array, checked to lie in [0, 1]."""
    arr = np.asarray(scores, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D list of per-item scores")
    if not np.all((arr >= 0) & (arr <= 1)):
        raise ValueError(f"{name}: per-item scores must lie in [0, 1]")
    return arr


def gain(dt: np.ndarray, b_max: np.ndarray) -> np.ndarray:
    """Vectorised gain: relative % where b_max > 0, absolute points where b_max == 0."""
    safe = np.where(b_max > 0, b_max, 1.0)
    return np.where(b_max > 0, (dt - b_max) / safe * 100.0, dt - b_max)


def paired_bootstrap(base_S, base_L, dt_S, dt_L, n_boot: int = 1000, seed: int = 0,
                     alpha: float = 0.05, weights=None) -> dict[str, tuple[float, float]]:
    """Percentile ``1 - alpha`` CIs of Gain_DA, Gain_CoT and GAP_DT by resampling item indices (paired:
    one index draw is applied to all four score arrays). A resample whose B_max is 0 uses absolute gains,
    the same rule as `dualtune.boundary.boundary_metrics`. ``weights``: per-item weights (> 0) of a
    weighted accuracy (module docstring); None = plain means."""
    arrays = [as_score_array(k, a) for k, a in zip(SCORE_KEYS, (base_S, base_L, dt_S, dt_L))]
    n = arrays[0].size
    if any(a.size != n for a in arrays):
        raise ValueError("paired_bootstrap: the four score arrays must have the same length (same items)")
    if n_boot < 1 or not 0 < alpha < 1:
        raise ValueError("paired_bootstrap: need n_boot >= 1 and 0 < alpha < 1")
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and (w.shape != (n,) or not np.all(w > 0)):
        raise ValueError("paired_bootstrap: weights must be one positive number per item")
    rng = np.random.default_rng(seed)
    # Resample in chunks so that large eval sets do not materialise an n_boot x n matrix at once.
    chunk = max(1, _BOOT_CELLS_PER_CHUNK // n)
    accs = [[] for _ in arrays]
    for start in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        for acc, arr in zip(accs, arrays):
            if w is None:
                acc.append(arr[idx].mean(axis=1) * 100.0)
            else:
                acc.append((w[idx] * arr[idx]).sum(axis=1) / w[idx].sum(axis=1) * 100.0)
    b_s, b_l, d_s, d_l = (np.concatenate(a) for a in accs)
    b_max = np.maximum(b_s, b_l)
    draws = {"Gain_DA": gain(d_s, b_max), "Gain_CoT": gain(d_l, b_max), "GAP_DT": d_l - d_s}
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    return {k: tuple(float(x) for x in np.percentile(v, q)) for k, v in draws.items()}
