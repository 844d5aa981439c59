"""Score samples batch by batch: rollouts per condition -> pass rates -> ACE -> one store part.

One batch = ``batch_size`` samples; its rollouts go through the shared rollout cache, its ACE
scores through one teacher-forced pass per micro-batch, and its rows into one atomically
written part of the score store. Each row carries the batch's cost (wall time, generated
tokens) split evenly over its samples, so the total cost of any score file is a column sum,
whatever resumes and shards produced it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

import numpy as np

from dualtune.data.sources import sample_meta
from dualtune.scoring.provenance import ScoringPlan
from dualtune.scoring.rollouts import RolloutCache, collect_rollouts, rollout_summary
from dualtune.utils.hashing import sample_digest
from dualtune.scoring.store import ScoreStore
from dualtune.selection.ace import AceResult
from dualtune.selection.drm import ace_needed

log = logging.getLogger(__name__)

COST_KEYS = ("generated_tokens", "cached_tokens", "rollouts_generated", "rollouts_cached", "generate_s",
             "ace_forward_passes", "ace_s")


def base_row(sample: dict) -> dict:
    """Identity fields of a score row (id, digest, domain, subtask, planted language prior)."""
    meta = sample_meta(sample)
    return {"id": sample["id"], "digest": sample_digest(sample), "domain": sample.get("domain"),
            "subtask": sample.get("subtask"), "language_prior": bool(meta.get("language_prior", False)),
            "cot_words": len((sample.get("cot") or "").split())}


def _ace_fields(result: AceResult | None, rollout_index: int | None) -> dict:
    """Score columns of one ACE result (NaN / -1 when ACE did not run for the sample)."""
    if result is None:
        return {"ace_log_psi": math.nan, "ace_psi": math.nan, "ace_argmax_col": -1, "ace_n_columns": -1,
                "ace_rollout": -1}
    return {"ace_log_psi": float(result.log_psi), "ace_psi": float(result.psi),
            "ace_argmax_col": -1 if result.argmax_col is None else int(result.argmax_col),
            "ace_n_columns": int(result.n_columns), "ace_rollout": int(rollout_index)}


def score_batch(samples: list[dict], plan: ScoringPlan, backend, cache: RolloutCache, ace_fn,
                stats: dict) -> list[dict]:
    """Score rows of one batch (see :func:`score_samples` for ``ace_fn``)."""
    from dualtune.scoring.attention import pick_rollout

    m = int(plan.rollouts.num_generations)
    per_cond = {c: collect_rollouts(backend, cache, samples, c, plan.rollouts, stats) for c in plan.conditions}
    rows = []
    for i, s in enumerate(samples):
        row = base_row(s)
        row["M"] = m
        for cond in ("mm", "txt"):
            summary = rollout_summary(per_cond[cond][i]) if cond in per_cond else None
            row[f"{cond}_correct"] = summary["correct"] if summary else []
            row[f"{cond}_rewards"] = summary["rewards"] if summary else []
            row[f"p_{cond}"] = summary["pass_rate"] if summary else math.nan
            row[f"{cond}_tokens"] = summary["tokens"] if summary else math.nan
        row["cde_gap"] = row["p_mm"] - row["p_txt"]
        row["difficulty"] = 1.0 - row["p_mm"]
        rows.append(row)

    # ACE on the chosen multimodal rollout of every sample that needs it.
    wanted = [False] * len(samples)
    if plan.ace is not None:
        if plan.ace_scope == "needed":
            wanted = list(ace_needed([r["p_mm"] for r in rows], [r["p_txt"] for r in rows], m, plan.ace_scope_lam_c))
        else:
            wanted = [True] * len(samples)
    picks = {i: pick_rollout(per_cond["mm"][i], plan.ace.rollout) for i in range(len(samples)) if wanted[i]}
    results = {}
    if picks:
        begin = time.perf_counter()
        order = sorted(picks)
        outs = ace_fn([(samples[i], per_cond["mm"][i][picks[i]]["token_ids"]) for i in order])
        results = dict(zip(order, outs))
        stats["ace_s"] = stats.get("ace_s", 0.0) + time.perf_counter() - begin
        stats["ace_forward_passes"] = stats.get("ace_forward_passes", 0) + len(order)
    for i, row in enumerate(rows):
        row.update(_ace_fields(results.get(i), picks.get(i)))
    return rows


def score_samples(samples: list[dict], plan: ScoringPlan, backend, cache: RolloutCache, store: ScoreStore,
                  ace_fn: Callable | None = None, batch_size: int = 16, shard_id: int = 0,
                  on_batch: Callable[[int, list[dict]], None] | None = None) -> dict:
    """Score every sample of ``samples`` (already filtered to the unscored ones of this shard).

    Args:
        plan: conditions, rollout settings, ACE settings.
        backend: rollout generator with ``generate(samples, condition, settings, n, seed)``.
        cache: the shared rollout cache (loaded for these samples).
        store: the score store; one part file per batch.
        ace_fn: ``items -> [AceResult]`` with items ``(sample, completion_ids)``; required iff
            ``plan.ace`` is set.
        on_batch: called as ``on_batch(k, rows)`` after batch ``k`` is persisted (tests use it to
            simulate a crash).

    Returns:
        cost totals of this call: wall_s, batches and the ``COST_KEYS`` counters.
    """
    if plan.ace is not None and ace_fn is None:
        raise ValueError("plan.ace is set but no ace_fn was given")
    from dualtune.prompting.mathcheck import math_checks_since, math_verify_stats

    math_before = math_verify_stats()
    totals = {k: 0 for k in COST_KEYS}
    totals.update(wall_s=0.0, batches=0, samples=0)
    for k, begin in enumerate(range(0, len(samples), max(1, int(batch_size)))):
        batch = samples[begin: begin + max(1, int(batch_size))]
        start = time.perf_counter()
        stats: dict = {}
        rows = score_batch(batch, plan, backend, cache, ace_fn, stats)
        wall = time.perf_counter() - start
        share = 1.0 / len(rows)
        for row in rows:
            row["shard"] = int(shard_id)
            row["cost_wall_s"] = wall * share
            row["cost_generated_tokens"] = stats.get("generated_tokens", 0) * share
        store.write_part(rows, shard_id)
        for key in COST_KEYS:
            totals[key] += stats.get(key, 0)
        totals["wall_s"] += wall
        totals["batches"] += 1
        totals["samples"] += len(rows)
        log.info("scored batch %d (%d samples, %.1fs, %d generated tokens)", k, len(rows), wall,
                 stats.get("generated_tokens", 0))
        if on_batch is not None:
            on_batch(k, rows)
    totals["generate_s"] = float(np.round(totals["generate_s"], 3))
    cut = math_checks_since(math_before)  # logs a warning when answer checks were cut off
    totals["math_checks_cut_off"] = sum(cut.get(k, 0) for k in ("timeouts", "too_large", "crashed"))
    return totals
