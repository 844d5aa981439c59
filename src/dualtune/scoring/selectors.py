"""Dispatch ``selection=<name>`` onto the pure selectors of ``dualtune.selection``.

Every method maps (rows, score table, config) to ``(kept, reasons, info)``: a keep mask aligned
with the rows, one reason per row, and a JSON-able dict of method details (budget, thresholds,
per-row training modes for ``boundary``). What each method needs scored is in :func:`scoring_needs`.

Methods: ``full``; ``random`` (``budget`` count or fraction, seeded); ``pass_rate`` (preset or
explicit band over the multimodal pass rate); ``length`` (longest / shortest CoT — the dataset
rationale in words, or the mean generated tokens of the rollouts); ``rap`` (``variant=paper``:
Algorithm 1, CDE -> ACE -> DRM; ``variant=released_code``: the authors' script);
``boundary`` (routes of a Dual Tuning curation manifest).
"""

from __future__ import annotations

import math

import numpy as np

from dualtune.selection import (
    PASS_RATE_PRESETS,
    rap_select,
    released_code_features,
    released_code_select,
    resolve_budget,
    select_length,
    select_pass_rate,
    select_random,
)

SELECTORS = ("full", "random", "pass_rate", "length", "rap", "boundary")
EXTRA_REASONS = {
    "kept_full": "full data: every sample kept",
    "kept_boundary_reasoning": "boundary manifest route 'reasoning' (trained in CoT mode)",
    "kept_boundary_direct": "boundary manifest route 'direct' (trained in direct mode)",
    "dropped_boundary": "boundary manifest route 'drop'",
    "dropped_unrouted": "id absent from the boundary manifest (subtask not in the report)",
}
ROUTE_TO_MODE = {"reasoning": "cot", "direct": "direct"}


def _opt(sel, key, default=None):
    """``sel.key`` for dicts and DictConfigs, ``default`` when missing or None."""
    value = sel.get(key) if hasattr(sel, "get") else None
    return default if value is None else value


def rollouts_for(sel) -> int:
    """M for a selection config: ``rollouts.num_generations``, else (null) the pass-rate preset's hint, else 5."""
    m = _opt(_opt(sel, "rollouts", {}), "num_generations")
    if m is None and sel.name == "pass_rate" and _opt(sel, "preset"):
        m = PASS_RATE_PRESETS[sel.preset].rollouts
    if m is None:
        return 8 if sel.name == "pass_rate" else 5
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"selection.rollouts.num_generations must be an integer >= 1 (or null), got {m!r}")
    return m


def scoring_needs(sel) -> dict | None:
    """``{"conditions": (...), "ace": bool}`` that ``sel`` needs scored, or None (no model needed)."""
    name = sel.name
    if name not in SELECTORS:
        raise ValueError(f"unknown selection {name!r}; expected one of {SELECTORS}")
    if name == "pass_rate" or (name == "length" and _opt(sel, "source", "dataset") == "rollouts"):
        return {"conditions": ("mm",), "ace": False}
    if name == "rap":
        variant = _opt(sel, "variant", "paper")
        if variant == "released_code":
            return {"conditions": ("mm", "txt"), "ace": False}
        if variant != "paper":
            raise ValueError(f"selection.variant must be paper or released_code, got {variant!r}")
        cde = bool(_opt(_opt(sel, "cde", {}), "enabled", True))
        ace = bool(_opt(_opt(sel, "ace", {}), "enabled", True))
        return {"conditions": ("mm", "txt") if cde else ("mm",), "ace": ace}
    return None


def ace_flags(log_psi, lam_a: float) -> np.ndarray:
    """ACE flag psi > lambda_a from stored log psi (NaN = not scored = not flagged)."""
    values = np.asarray(log_psi, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(values, nan=-np.inf) > math.log(float(lam_a))


def _select_rap(sel, ids, scores, seed) -> tuple[np.ndarray, list[str], dict]:
    """RAP, paper variant (Algorithm 1) or the released script."""
    if _opt(sel, "variant", "paper") == "released_code":
        rel = _opt(sel, "released", {})
        records = [{"id": i, "img_rewards": list(a), "txt_rewards": list(b)}
                   for i, a, b in zip(ids, scores["mm_rewards"], scores["txt_rewards"])]
        kept, reasons = released_code_select(
            records, seed=int(_opt(rel, "seed", 42)), gap_threshold=float(_opt(rel, "gap_threshold", 0.2)),
            sim_threshold=float(_opt(rel, "sim_threshold", 0.6)),
            readd_fraction=float(_opt(rel, "readd_fraction", 0.1)),
            pool_sim_threshold=float(_opt(rel, "pool_sim_threshold", 0.85)),
            gap_eps=float(_opt(rel, "gap_eps", 1e-9)))
        feats = released_code_features(records)
        columns = {"rel_p_img": feats.p_img, "rel_p_txt": feats.p_txt, "rel_similarity": feats.similarity}
        return kept, reasons, {"variant": "released_code", "mean_img": feats.mean_img, "mean_txt": feats.mean_txt,
                               "columns": columns}
    cde, ace, drm = _opt(sel, "cde", {}), _opt(sel, "ace", {}), _opt(sel, "drm", {})
    m = rollouts_for(sel)
    use_cde = bool(_opt(cde, "enabled", True))
    use_ace = bool(_opt(ace, "enabled", True))
    flags = ace_flags(scores["ace_log_psi"], float(_opt(ace, "lam_a", 0.1))) if use_ace else None
    kwargs = {}
    if bool(_opt(drm, "enabled", True)):
        k = _opt(drm, "k")
        kwargs = dict(k=k, pool=str(_opt(drm, "pool", "rejected")), rule=str(_opt(drm, "rule", "topk")), seed=seed,
                      remove_easy=bool(_opt(drm, "remove_easy", True)), ace_filter=bool(_opt(drm, "ace_filter", True)))
    kept, reasons = rap_select(ids, scores["p_mm"], scores["p_txt"] if use_cde else None, flags, m,
                               lam_c=float(_opt(cde, "lam_c", 0.5)), drm=bool(_opt(drm, "enabled", True)),
                               cde=use_cde, **kwargs)
    columns = {"ace_flag": flags if flags is not None else np.zeros(len(ids), dtype=bool)}
    return kept, reasons, {"variant": "paper", "M": m, "columns": columns}


def _select_boundary(sel, rows) -> tuple[np.ndarray, list[str], dict]:
    """Keep ``reasoning`` / ``direct`` routed ids of the manifest, with their training mode."""
    from dualtune.curation import read_manifest

    if not _opt(sel, "manifest"):
        raise ValueError("selection=boundary needs selection.manifest=<run dir>/curation")
    manifest = read_manifest(sel.manifest)
    route = {i: r for r, route_ids in manifest["routes"].items() for i in route_ids}
    kept, reasons, modes = [], [], {}
    for row in rows:
        r = route.get(row["id"])
        kept.append(r in ROUTE_TO_MODE)
        reasons.append("dropped_unrouted" if r is None else (f"kept_boundary_{r}" if r in ROUTE_TO_MODE
                                                             else "dropped_boundary"))
        if r in ROUTE_TO_MODE:
            modes[row["id"]] = ROUTE_TO_MODE[r]
    return np.array(kept, dtype=bool), reasons, {"manifest": str(sel.manifest), "train_modes": modes}


def apply_selector(sel, rows: list[dict], scores, seed: int = 0) -> tuple[np.ndarray, list[str], dict]:
    """Run ``sel`` on ``rows``; ``scores`` is a DataFrame aligned with ``rows`` (None if not needed).

    ``info["columns"]`` (when present) holds extra per-row arrays for the score table.
    """
    name = sel.name
    ids = [r["id"] for r in rows]
    if name == "full":
        return np.ones(len(ids), dtype=bool), ["kept_full"] * len(ids), {}
    if name == "random":
        budget = _opt(sel, "budget", 1.0)
        kept, reasons = select_random(ids, budget, seed=seed)
        return kept, reasons, {"budget": budget, "resolved_budget": resolve_budget(len(ids), budget)}
    if name == "pass_rate":
        preset = _opt(sel, "preset")
        band = {} if preset else {k: _opt(sel, k) for k in ("low", "high")}
        if not preset:
            band.update(low_strict=bool(_opt(sel, "low_strict", False)),
                        high_strict=bool(_opt(sel, "high_strict", False)))
        kept, reasons = select_pass_rate(ids, scores["p_mm"], preset, **band)
        return kept, reasons, {"preset": preset, "M": rollouts_for(sel), **band}
    if name == "length":
        budget = _opt(sel, "budget", 1.0)
        source = _opt(sel, "source", "dataset")
        lengths = scores["mm_tokens"] if source == "rollouts" else [len((r.get("cot") or "").split()) for r in rows]
        kept, reasons = select_length(ids, lengths, budget, longest=bool(_opt(sel, "longest", True)))
        return kept, reasons, {"budget": budget, "resolved_budget": resolve_budget(len(ids), budget),
                               "source": source, "longest": bool(_opt(sel, "longest", True))}
    if name == "rap":
        return _select_rap(sel, ids, scores, seed)
    if name == "boundary":
        return _select_boundary(sel, rows)
    raise ValueError(f"unknown selection {name!r}; expected one of {SELECTORS}")
