"""Pick the training samples for a run from the configured ``selection`` method.

``run_selection`` is shared by ``score.py`` (score + select, outputs in its run dir) and
``train.py`` (via ``select_training_rows``: reuse a score store whose provenance matches, score
first otherwise, then train on the kept rows). Outputs: see ``dualtune.scoring.outputs``.

Per-row training mode (``selection=boundary``): every returned row of a boundary selection
carries ``row[TRAIN_MODE_KEY]`` = "cot" (manifest route ``reasoning``) or "direct" (route
``direct``); ``drop`` and unrouted ids are excluded. The same map is in ``selection.json`` under
``details.train_modes``. Other selectors set no key (train in the configured ``mode``).

Cross-model selection (``selection.scorer=<conf/model name>``, default null = the model being trained):
rollouts and attention come from the scorer (``conf/model/<scorer>.yaml`` with the non-null entries of
``selection.scorer_overrides`` merged on top, e.g. ``path``); its name / fingerprint are the provenance's
``model``, so its scores live in their own store; ``selection.json`` records it under ``scorer``. Training
(``select_training_rows``' caller) always uses ``cfg.model``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf, open_dict

from dualtune.schema import TRAIN_MODE_KEY
from dualtune.scoring.outputs import (
    base_table, finish_table, scoring_cost, summarize, update_selection_cost, write_outputs)
from dualtune.scoring.runner import load_scores, score_settings, scoring_plan
from dualtune.scoring.selectors import EXTRA_REASONS, apply_selector
from dualtune.selection import ALL_REASONS

log = logging.getLogger(__name__)

__all__ = ["TRAIN_MODE_KEY", "SelectionResult", "run_selection", "select_training_rows", "update_selection_cost"]


@dataclass
class SelectionResult:
    """Kept rows (in input order), the run-dir score table and the selection.json dict."""

    rows: list[dict]
    table: object
    summary: dict
    paths: dict


def selection_seed(cfg) -> int:
    """Seed of the selector's own random draws (``selection.seed``, else the run seed)."""
    seed = cfg.selection.get("seed")
    return int(cfg.get("seed", 0) if seed is None else seed)


def scorer_config(cfg):
    """``cfg`` with ``model`` replaced by the scorer's model config (``cfg`` itself when no scorer is set)."""
    name = cfg.selection.get("scorer")
    if not name:
        return cfg
    from dualtune.data.benchmarks import group_config

    base_model = group_config("model", name, "selection.scorer")
    overrides = cfg.selection.get("scorer_overrides") or {}
    overrides = OmegaConf.to_container(overrides, resolve=True) if OmegaConf.is_config(overrides) else dict(overrides)
    model = OmegaConf.merge(base_model, {k: v for k, v in overrides.items() if v is not None})
    scored = copy.deepcopy(cfg)
    with open_dict(scored):
        scored.model = model
    return scored


def scorer_summary(provenance: dict | None, cfg) -> dict | None:
    """``selection.json``'s ``scorer`` entry: the scoring model's identity and whether it is the trained one."""
    if provenance is None:
        return None
    model = provenance.get("model") or {}
    return {"name": model.get("name"), "fingerprint": model.get("fingerprint"), "path": provenance.get("model_path"),
            "config": cfg.selection.get("scorer") or cfg.model.name, "is_trained_model": not cfg.selection.get("scorer")}


def run_selection(cfg, train_rows: list[dict], out_dir, backend=None, ace_fn=None,
                  on_batch=None) -> SelectionResult | None:
    """Score (as needed) and select; write the outputs into ``out_dir``.

    Returns None when this is one shard of a sharded run and other shards still have ids to
    score (this shard's scores are stored; rerun any shard once all are done to select).
    ``backend`` / ``ace_fn`` / ``on_batch``: see ``scoring.runner.load_scores``.
    """
    sel = cfg.selection
    scored_cfg = scorer_config(cfg)
    plan = scoring_plan(scored_cfg)
    run = None
    if plan is None:
        table = base_table(train_rows)
    else:
        run = load_scores(scored_cfg, plan, train_rows, backend=backend, ace_fn=ace_fn, on_batch=on_batch)
        if run.table is None:
            return None
        table = run.table
    limr = None
    if sel.name == "limr":
        from dualtune.scoring.trajectories import limr_trajectories

        traj, limr = limr_trajectories(cfg, plan, train_rows, run.table if run else None)
        table = table.copy()
        table["limr_trajectory"] = list(traj)
    scores = {col: table[col].to_numpy() for col in table.columns}
    kept, reasons, info = apply_selector(sel, train_rows, scores, seed=selection_seed(cfg))
    df = finish_table(table, kept, reasons, info)
    params = OmegaConf.to_container(sel, resolve=True) if OmegaConf.is_config(sel) else dict(sel)
    cost = scoring_cost(df, run.this_run if run else None)
    if run is not None:
        cost["reused_store"] = run.reused
    summary = summarize(df, sel.name, params, info, cost, {**ALL_REASONS, **EXTRA_REASONS},
                        store=run.store if run else None)
    if run is not None:
        summary["provenance_hash"] = run.provenance["hash"]
    summary["scorer"] = scorer_summary(run.provenance if run else None, cfg)
    if limr is not None:
        summary["limr"] = limr
    paths = write_outputs(out_dir, df, summary, run.provenance if run else None, params,
                          plots=bool(score_settings(cfg)["plots"]))

    modes = info.get("train_modes") or {}
    rows = [dict(r, **{TRAIN_MODE_KEY: modes[r["id"]]}) if r["id"] in modes else r
            for r, keep in zip(train_rows, kept) if keep]
    log.info("selection=%s kept %d/%d samples; reasons %s; outputs in %s", sel.name, len(rows), len(train_rows),
             summary["counts_by_reason"], Path(out_dir))
    return SelectionResult(rows, df, summary, paths)


def select_training_rows(cfg, train_rows: list[dict], out_dir) -> list[dict]:
    """Return the training rows chosen by ``cfg.selection`` (``full`` keeps all, writes nothing).

    Any other selector writes its outputs into ``out_dir`` and reuses a score store with
    matching provenance (``selection.scores_dir``, default ``<cache_dir>/scores``), scoring
    the training split with the base model first when there is none.
    """
    if cfg.selection.name == "full":
        return list(train_rows)
    result = run_selection(cfg, train_rows, out_dir)
    if result is None:
        raise RuntimeError("the training split is only partly scored (a sharded score.py run is unfinished); "
                           "finish every score.shard_id first, or train with score.num_shards=1")
    if not result.rows:
        raise ValueError(f"selection={cfg.selection.name} kept no training sample; see {out_dir}/selection.json")
    return result.rows
