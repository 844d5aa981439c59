"""Get the score table for a config: reuse a matching store, else score (this shard, resuming).

Flow of :func:`load_scores`: provenance -> store (``selection.scores_dir`` or
``<cache_dir>/scores``, reused when its provenance matches) -> the ids of this shard that are not
scored yet -> load the model once, score them batch by batch -> if every id of the dataset is now
scored (all shards done), merge the store and return the table aligned with the rows.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from dualtune.schema import duplicate_ids
from dualtune.generation.base import build_generator, generation_settings
from dualtune.scoring.attention import AceSettings
from dualtune.scoring.pipeline import score_samples
from dualtune.scoring.provenance import ScoringPlan, build_provenance, resolve_store
from dualtune.scoring.rollouts import (
    GeneratorRolloutBackend, HFRolloutBackend, RolloutCache, RolloutSettings, rollout_cache_key)
from dualtune.scoring.selectors import rollouts_for, scoring_needs
from dualtune.scoring.store import ScoreStore, shard_of
from dualtune.utils.hashing import sample_digest

log = logging.getLogger(__name__)

SCORE_DEFAULTS = {"num_shards": 1, "shard_id": 0, "batch_size": 16, "micro_batch_size": 32, "device": "auto",
                  "limit": None, "rollout_cache_dir": None, "plots": True}


def score_settings(cfg) -> dict:
    """The ``score`` block of ``cfg`` over ``SCORE_DEFAULTS`` (train configs have none)."""
    block = cfg.get("score") or {}
    block = OmegaConf.to_container(block, resolve=True) if OmegaConf.is_config(block) else dict(block)
    out = {**SCORE_DEFAULTS, **{k: v for k, v in block.items() if v is not None or k == "limit"}}
    if not 0 <= int(out["shard_id"]) < int(out["num_shards"]):
        raise ValueError(f"score.shard_id={out['shard_id']} outside 0..{int(out['num_shards']) - 1}")
    return out


def scoring_plan(cfg) -> ScoringPlan | None:
    """The scoring plan of ``cfg.selection`` (None when the selector needs no model)."""
    sel = cfg.selection
    needs = scoring_needs(sel)
    if needs is None:
        return None
    roll = sel.get("rollouts") or {}
    mode = str(roll.get("mode") or "cot")
    max_new = roll.get("max_new_tokens") or (cfg.mode.get("max_new_tokens") or {}).get(mode) or 256
    settings = RolloutSettings(mode=mode, num_generations=rollouts_for(sel),
                               temperature=float(roll.get("temperature", 1.0)),
                               top_p=float(roll.get("top_p", 1.0)), max_new_tokens=int(max_new),
                               do_sample=bool(roll.get("do_sample", True)), seed=int(roll.get("seed") or 0))
    ace = None
    scope, lam_c = "all", None
    if needs["ace"]:
        a = sel.ace
        window = a.get("window")
        ace = AceSettings(layer=int(a.get("layer", -1)), head_agg=str(a.get("head_agg", "mean")),
                          sigma=float(a.get("sigma", 2.0)), window=None if window is None else int(window),
                          min_rows=int(a.get("min_rows", 8)), renormalize=bool(a.get("renormalize", False)),
                          span=str(a.get("span", "reasoning")), rollout=a.get("rollout", 0),
                          capture=str(a.get("capture", "hook")), micro_batch_size=int(a.get("micro_batch_size", 4)))
        scope = str(a.get("scope", "all"))
        if scope not in ("all", "needed"):
            raise ValueError(f"selection.ace.scope must be all or needed, got {scope!r}")
        if "txt" not in needs["conditions"]:  # without CDE every sample is in S_CDE: ACE is needed everywhere
            scope = "all"
        lam_c = float(sel.cde.get("lam_c", 0.5)) if scope == "needed" else None
    return ScoringPlan(settings, tuple(needs["conditions"]), ace, scope, lam_c)


@dataclass
class ScoreRun:
    """Outcome of :func:`load_scores`."""

    store: ScoreStore
    provenance: dict
    table: object = None            # DataFrame aligned with the rows, or None while shards are missing
    reused: bool = False            # the store existed with matching provenance before this run
    missing: int = 0                # ids of the dataset not scored yet (by any shard)
    this_run: dict = field(default_factory=dict)


def _load_model(cfg, path: str, device: str):
    """Processor + eval-mode model on ``device`` ("auto" = CUDA when available)."""
    import torch

    from dualtune.models.loading import load_model, processor_for

    processor = processor_for(path, cfg.model)
    model = load_model(path, cfg.model, for_training=False)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(device), processor


def load_scores(cfg, plan: ScoringPlan, rows: list[dict], backend=None, ace_fn=None, on_batch=None) -> ScoreRun:
    """Scores of ``rows`` under ``plan``: reuse, resume, score this shard, merge when complete.

    ``backend`` / ``ace_fn`` override the Hugging Face model (tests use scripted generators);
    by default the model of ``cfg.model`` is loaded only if something is left to score.
    """
    from dualtune.models.base import resolve_model_path
    from dualtune.models.loading import image_bounds, model_fingerprint

    opts = score_settings(cfg)
    path = resolve_model_path(cfg.model, cfg.cache_dir)
    engine = generation_settings(cfg)["backend"]
    model_info = {"name": cfg.model.name, "path": path, "fingerprint": model_fingerprint(path),
                  "dtype": cfg.model.get("dtype"), **image_bounds(cfg.model)}
    if engine != "hf":  # scores of another engine's rollouts are other scores (hf provenance is unchanged)
        model_info["generation_backend"] = engine
    template = str(cfg.mode.templates[plan.rollouts.mode])
    digests = {r["id"]: sample_digest(r) for r in rows}
    if len(digests) != len(rows):
        dups = duplicate_ids(rows)
        raise ValueError(f"training rows have {len(dups)} duplicate ids: {dups[:20]}")
    prov = build_provenance(plan, model_info, template, config=cfg, dataset_ids=digests)
    root = cfg.selection.get("scores_dir") or Path(cfg.cache_dir) / "scores"
    store, reused = resolve_store(root, prov)

    # This shard's ids that no run has scored yet (resume skips the rest).
    done = store.scored_ids(digests)
    shard, n_shards = int(opts["shard_id"]), int(opts["num_shards"])
    todo = [r for r in rows if r["id"] not in done and shard_of(r["id"], n_shards) == shard]
    log.info("score store %s: %d/%d scored; shard %d/%d has %d to score", store.path, len(done), len(rows),
             shard, n_shards, len(todo))
    this_run = {"wall_s": 0.0, "generated_tokens": 0, "samples": 0}
    if todo:
        start = time.perf_counter()
        model = generator = None
        if backend is None and engine != "hf":  # generation.backend=vllm: an engine for the rollouts
            from dualtune.models.loading import processor_for

            generator = build_generator(cfg, path, processor_for(path, cfg.model),
                                        templates=dict(cfg.mode.templates), seed=int(cfg.seed))
            backend = GeneratorRolloutBackend(generator)
            if plan.ace is not None and ace_fn is None:  # ACE reads attention maps: the HF model is loaded too
                model, processor = _load_model(cfg, path, str(opts["device"]))
        elif backend is None:
            model, processor = _load_model(cfg, path, str(opts["device"]))
            backend = HFRolloutBackend(model, processor, dict(cfg.mode.templates), opts["micro_batch_size"])
        if model is not None and plan.ace is not None and ace_fn is None:
            from dualtune.scoring.attention import ace_for_rollouts

            def ace_fn(items):
                """ACE results of (sample, completion ids) items with the loaded model."""
                return ace_for_rollouts(model, processor, items, plan.rollouts.mode, plan.ace,
                                        dict(cfg.mode.templates))
        cache = RolloutCache(opts["rollout_cache_dir"] or Path(cfg.cache_dir) / "rollouts",
                             rollout_cache_key(model_info["fingerprint"], template, plan.rollouts, engine))
        cache.load({r["id"]: digests[r["id"]] for r in todo})
        try:
            this_run = score_samples(todo, plan, backend, cache, store, ace_fn=ace_fn,
                                     batch_size=int(opts["batch_size"]), shard_id=shard, on_batch=on_batch)
        finally:
            if generator is not None:
                generator.close()
        this_run["wall_s_incl_load"] = time.perf_counter() - start
        if model is not None:
            del model, backend
            gc.collect()
            _empty_cuda_cache()
    done = store.scored_ids(digests)
    missing = len(rows) - len(done)
    run = ScoreRun(store, prov, reused=reused and not todo, missing=missing, this_run=this_run)
    if missing:
        log.warning("%d samples are not scored yet (other shards); selection waits for them", missing)
        return run
    store.merge()
    df = store.read()
    df = df[[digests.get(i) == d for i, d in zip(df["id"], df["digest"])]]
    run.table = df.set_index("id").loc[[r["id"] for r in rows]].reset_index()
    return run


def _empty_cuda_cache() -> None:
    """Release cached GPU memory after scoring (the training model is loaded next)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
