"""Dispatch ``selection=<name>`` onto the pure selectors of ``dualtune.selection``.

Every method maps (rows, score table, config) to ``(kept, reasons, info)``: a keep mask aligned
with the rows, one reason per row, and a JSON-able dict of method details (budget, thresholds,
per-row training modes for ``boundary``). What each method needs scored is in :func:`scoring_needs`.

Methods: ``full``; ``random`` (``budget`` count or fraction, seeded); ``pass_rate`` (preset or
explicit band over the multimodal pass rate); ``length`` (longest / shortest CoT — the dataset
rationale in words, or the mean generated tokens of the rollouts); ``rap`` (``variant=paper``:
Algorithm 1, CDE -> ACE -> DRM; ``variant=released_code``: the authors' script);
``boundary`` (routes of a Dual Tuning curation manifest); ``refine`` (one part of a Dual Tuning
report's split, Figs. 5-7: `dualtune.curation_split`); the papers' baselines ``thinklite_mcts``
(iterations to the first correct of N rollouts), ``limr`` (learning-impact score of reward trajectories,
collected by ``recipes.select``) and ``s1`` (quality -> difficulty -> domain-diverse long-trace draw).

Budgets (``selection.budget``: null | int count | float fraction; ``selection.match_budget_of``: a
``selection.json`` or run dir whose ``n_kept`` is copied, overriding ``budget``): ``random`` / ``length`` /
``thinklite_mcts`` / ``limr`` / ``s1`` rank by their own score; ``rap`` and ``pass_rate`` run their rule and
are then trimmed / filled to the budget (``dualtune.selection.budget``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from dualtune.curation_split import REASONS as REFINE_REASONS
from dualtune.curation_split import select_part
from dualtune.selection import (
    PASS_RATE_PRESETS,
    band_budget_orders,
    cde_gap,
    fit_to_budget,
    iterations_to_solve,
    rap_budget_orders,
    rap_select,
    select_limr,
    select_s1,
    select_thinklite,
    released_code_features,
    released_code_select,
    resolve_budget,
    select_length,
    select_pass_rate,
    select_random,
)

SELECTORS = ("full", "random", "pass_rate", "length", "rap", "boundary", "thinklite_mcts", "limr", "s1", "refine")
MM_ONLY = ("pass_rate", "thinklite_mcts", "s1")  # selectors scored on multimodal rollouts only
EXTRA_REASONS = {
    "kept_full": "full data: every sample kept",
    "kept_boundary_reasoning": "boundary manifest route 'reasoning' (trained in CoT mode)",
    "kept_boundary_direct": "boundary manifest route 'direct' (trained in direct mode)",
    "dropped_boundary": "boundary manifest route 'drop'",
    "dropped_unrouted": "id absent from the boundary manifest (subtask not in the report)",
    **REFINE_REASONS,
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
    if m is None and sel.name == "thinklite_mcts":
        m = _opt(sel, "max_iters", 50)
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
    if name == "limr":  # the base model's pass rate is the trajectory's first point, unless a reward log is given
        return None if _opt(sel, "rewards_file") else {"conditions": ("mm",), "ace": False}
    if name in MM_ONLY or (name == "length" and _opt(sel, "source", "dataset") == "rollouts"):
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


def read_budget_source(path) -> tuple[int, int]:
    """``(n_kept, n_total)`` of a ``selection.json`` (or a run dir holding one)."""
    file = Path(path)
    if file.is_dir():
        file = file / "selection.json"
    if not file.is_file():
        raise FileNotFoundError(f"selection.match_budget_of={path}: no selection.json there")
    summary = json.loads(file.read_text())
    return int(summary["n_kept"]), int(summary["n_total"])


def budget_target(sel, n: int) -> dict | None:
    """``{"budget", "resolved_budget", "budget_source"}`` for ``sel`` over ``n`` samples; None without a budget.

    ``match_budget_of`` (a RAP run's selection.json / run dir) overrides ``budget`` with that run's
    ``n_kept``; it must have been selected from the same number of samples.
    """
    source = _opt(sel, "match_budget_of")
    if source:
        count, n_ref = read_budget_source(source)
        if n_ref != n:
            raise ValueError(f"selection.match_budget_of={source} selected from {n_ref} samples, this run has {n}: "
                             "budgets are only matched on the same training split")
        return {"budget": count, "resolved_budget": count, "budget_source": str(source)}
    budget = _opt(sel, "budget")
    if budget is None:
        return None
    return {"budget": budget, "resolved_budget": resolve_budget(n, budget), "budget_source": None}


def _fit(kept, reasons, info: dict, target: dict | None, orders) -> tuple[np.ndarray, list[str], dict]:
    """Fit a rule-based selector's result to the budget (if any) with ``orders() -> (drop, fill)``."""
    if target is None:
        return kept, reasons, info
    info = {**info, **target, "n_before_budget": int(np.sum(kept))}
    kept, reasons = fit_to_budget(kept, reasons, target["resolved_budget"], *orders())
    return kept, reasons, info


def _select_rap(sel, ids, scores, seed, target) -> tuple[np.ndarray, list[str], dict]:
    """RAP, paper variant (Algorithm 1) or the released script (fitted to ``target``, see :func:`budget_target`)."""
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
        info = {"variant": "released_code", "mean_img": feats.mean_img, "mean_txt": feats.mean_txt, "columns": columns}
        m = max(len(r) for r in scores["mm_rewards"])
        return _fit(kept, reasons, info, target, lambda: rap_budget_orders(
            ids, kept, reasons, feats.p_img, feats.gap, np.zeros(len(ids), dtype=bool), m, seed))
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
    flags = flags if flags is not None else np.zeros(len(ids), dtype=bool)
    gap = cde_gap(scores["p_mm"], scores["p_txt"]) if use_cde else np.full(len(ids), np.nan)
    info = {"variant": "paper", "M": m, "columns": {"ace_flag": flags}}
    return _fit(kept, reasons, info, target,
                lambda: rap_budget_orders(ids, kept, reasons, scores["p_mm"], gap, flags, m, seed))


def quality_ok(row: dict) -> bool:
    """s1's quality filter on a row: a question and a gold answer, and for a multiple-choice row an answer
    among its option letters."""
    answer = str(row.get("answer") or "").strip()
    if not str(row.get("question") or "").strip() or not answer:
        return False
    options = row.get("options") or []
    letters = {chr(ord("A") + k) for k in range(len(options))}
    return not options or answer.upper() in letters


def trace_lengths(rows: list[dict], scores, source: str = "dataset"):
    """Per-row reasoning-trace length: the mean generated tokens of the rollouts (``source="rollouts"``) or
    the words of the dataset rationale (``cot``)."""
    return scores["mm_tokens"] if source == "rollouts" else [len((r.get("cot") or "").split()) for r in rows]


def _select_baseline(sel, rows, ids, scores, seed, target) -> tuple[np.ndarray, list[str], dict]:
    """ThinkLite MCTS-lite, LIMR and s1 (their budgets: ``target``, see :func:`budget_target`)."""
    budget = None if target is None else target["resolved_budget"]
    info = dict(target or {"budget": None, "budget_source": None})
    if sel.name == "thinklite_mcts":
        n_iter = rollouts_for(sel)
        k = iterations_to_solve([list(c)[:n_iter] for c in scores["mm_correct"]])
        kept, reasons = select_thinklite(ids, k, n_iter, int(_opt(sel, "min_iters", 5)),
                                         bool(_opt(sel, "keep_unsolved", True)), budget, seed)
        return kept, reasons, {**info, "max_iters": n_iter, "columns": {"mcts_iterations": k}}
    if sel.name == "limr":
        traj = np.array([list(t) for t in scores["limr_trajectory"]], dtype=float)
        kept, reasons = select_limr(ids, traj, float(_opt(sel, "threshold", 0.2)), budget, seed)
        from dualtune.selection import limr_scores

        return kept, reasons, {**info, "epochs": int(traj.shape[1]), "columns": {"limr_score": limr_scores(traj)}}
    lengths = trace_lengths(rows, scores, _opt(sel, "length_source", "dataset"))
    kept, reasons = select_s1(ids, [r.get("subtask") for r in rows], scores["p_mm"], lengths,
                              [quality_ok(r) for r in rows], budget, float(_opt(sel, "max_pass_rate", 0.0)), seed)
    return kept, reasons, {**info, "M": rollouts_for(sel), "columns": {"trace_length": np.asarray(lengths, float)}}


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
    target = budget_target(sel, len(ids))
    if name == "random":
        target = target or {"budget": 1.0, "resolved_budget": len(ids), "budget_source": None}
        kept, reasons = select_random(ids, target["resolved_budget"], seed=seed)
        return kept, reasons, target
    if name == "pass_rate":
        preset = _opt(sel, "preset")
        band = {} if preset else {k: _opt(sel, k) for k in ("low", "high")}
        if not preset:
            band.update(low_strict=bool(_opt(sel, "low_strict", False)),
                        high_strict=bool(_opt(sel, "high_strict", False)))
        kept, reasons = select_pass_rate(ids, scores["p_mm"], preset, **band)
        bounds = PASS_RATE_PRESETS[preset] if preset else None
        low = bounds.low if bounds else band["low"]
        high = bounds.high if bounds else band["high"]
        center = ((0.0 if low is None else low) + (1.0 if high is None else high)) / 2
        return _fit(kept, reasons, {"preset": preset, "M": rollouts_for(sel), **band}, target,
                    lambda: band_budget_orders(ids, kept, scores["p_mm"], center, seed))
    if name == "length":
        target = target or {"budget": 1.0, "resolved_budget": len(ids), "budget_source": None}
        source = _opt(sel, "source", "dataset")
        lengths = trace_lengths(rows, scores, source)
        kept, reasons = select_length(ids, lengths, target["resolved_budget"], longest=bool(_opt(sel, "longest", True)))
        return kept, reasons, {**target, "source": source, "longest": bool(_opt(sel, "longest", True))}
    if name == "rap":
        return _select_rap(sel, ids, scores, seed, target)
    if name in ("thinklite_mcts", "limr", "s1"):
        return _select_baseline(sel, rows, ids, scores, seed, target)
    if name == "boundary":
        return _select_boundary(sel, rows)
    if name == "refine":
        return select_part(sel, rows)
    raise ValueError(f"unknown selection {name!r}; expected one of {SELECTORS}")
