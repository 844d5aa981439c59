"""The train recipe. With the defaults this is the main job (Dual Tuning + Thinking-Boundary report):

1. load the domain (validated), 2. select training samples (``selection=``), 3. evaluate the base
model in both modes (cached by model hash), 4. fine-tune (``algo=``, ``mode=``), 5. evaluate the tuned
model in both modes, 6. write the Thinking-Boundary report, plots and the curation manifest.
"""

from __future__ import annotations

import json
import logging

from omegaconf import OmegaConf

from dualtune.boundary import boundary_report, pair_items, write_report
from dualtune.boundary_plots import plot_boundary_scatter, plot_gap_b
from dualtune.config_checks import check_config, require_data
from dualtune.curation import build_manifest, write_manifest
from dualtune.data.benchmarks import load_eval_rows
from dualtune.data.sources import limit_samples, load_domain
from dualtune.models.base import resolve_model_path
from dualtune.models.loading import processor_for
from dualtune.recipes.evaluate import run_eval, step_evaluator
from dualtune.recipes.select import select_training_rows, update_selection_cost
from dualtune.recipes.sft import fit_sft
from dualtune.rl_report import write_rl_report_for_run
from dualtune.training.callbacks import PeriodicEval, read_train_tokens
from dualtune.tracking import log_run_results
from dualtune.utils.distributed import check_launched_ranks, is_global_zero
from dualtune.utils.runtime import run_dir, seed_everything, stage, task_wrapper

log = logging.getLogger(__name__)


def aggregate_kinds(cfg) -> dict:
    """Domain -> how its ALL row averages (``domain.aggregate``; an ``eval.domains`` benchmark uses its own
    config's; `dualtune.aggregates`). Lab sub-domains are not named: they stay sample-weighted."""
    from dualtune.aggregates import DEFAULT_AGGREGATE
    from dualtune.data.benchmarks import domain_config

    kinds = {str(cfg.domain.name): str(cfg.domain.get("aggregate") or DEFAULT_AGGREGATE)}
    for name in cfg.eval.get("domains") or []:
        kinds[str(name)] = str(domain_config(str(name)).get("aggregate") or DEFAULT_AGGREGATE)
    return kinds


def planted_regions(cfg) -> dict | None:
    """The lab's planted region per subtask (None for real data)."""
    if cfg.domain.source != "lab":
        return None
    from dualtune.lab import planted_regions as lab_planted

    return lab_planted()


def write_boundary(cfg, base, tuned, train_rows, out) -> dict:
    """Thinking-Boundary report (json/csv/md), plots and curation manifest into ``out``."""
    report = boundary_report(pair_items(base, tuned), tol=float(cfg.eval.tol), n_boot=int(cfg.eval.n_boot),
                             seed=int(cfg.seed), planted=planted_regions(cfg), aggregate=aggregate_kinds(cfg))
    write_report(report, out, config=OmegaConf.to_container(cfg, resolve=True))
    plot_boundary_scatter(report["subtasks"], out / "boundary_scatter.png", title=f"Thinking Boundary ({cfg.domain.name})")
    plot_gap_b(report["subtasks"], out / "gap_b.png")
    write_manifest(build_manifest(report["subtasks"], train_rows, cfg.curation_tie_route),
                   out / "curation")
    return report


def eval_callbacks(cfg, algo, processor, test_rows, out) -> list:
    """`PeriodicEval` when the stage's ``algo.eval_steps`` is set and the run has test rows, else none."""
    every = algo.get("eval_steps")
    if not every or not test_rows:
        return []
    return [PeriodicEval(int(every), step_evaluator(cfg, processor, test_rows), out)]


def fit_algo(cfg, start_path: str, processor, train_rows, out, test_rows=()):
    """Dispatch on ``algo``: sft, grpo, or sft_then_grpo (cold start); returns the tuned model dir.
    ``test_rows``: what ``algo.eval_steps`` evaluates during training (none: no periodic evaluation)."""
    name = cfg.algo.name
    if name == "sft":
        return fit_sft(cfg, start_path, processor, train_rows, out,
                       callbacks=eval_callbacks(cfg, cfg.algo, processor, test_rows, out))
    from dualtune.recipes.grpo import fit_grpo, grpo_algo_cfg

    grpo_callbacks = eval_callbacks(cfg, grpo_algo_cfg(cfg.algo), processor, test_rows, out)
    if name == "grpo":
        return fit_grpo(cfg, start_path, processor, train_rows, out, callbacks=grpo_callbacks)
    if name == "sft_then_grpo":
        sft_path = fit_sft(cfg, start_path, processor, train_rows, out / "sft",
                           callbacks=eval_callbacks(cfg, cfg.algo, processor, test_rows, out / "sft"))
        return fit_grpo(cfg, str(sft_path), processor, train_rows, out, callbacks=grpo_callbacks)
    raise ValueError(f"unknown algo {name!r}")


@task_wrapper
def train(cfg):
    """Run the configured training job; with ``eval.enabled`` also the base/tuned evals and the report."""
    check_config(cfg, "train")
    timings: dict = {}
    seed_everything(cfg.seed)
    out = run_dir(cfg)
    with stage("load data", timings):
        skipped: dict = {}
        data = load_domain(cfg.domain, cfg.cache_dir, seed=cfg.seed, strict=cfg.strict, skipped=skipped)
        test_rows, test_skips = load_eval_rows(cfg, data, skipped) if cfg.eval.enabled else ([], [])
        require_data(cfg, {"train": data["train"], "test": test_rows}, "train", skipped)
        test_rows = limit_samples(test_rows, cfg.eval.get("limit"))
    with stage("resolve base model", timings):
        base_path = resolve_model_path(cfg.model, cfg.cache_dir)
        processor = processor_for(base_path, cfg.model)
    with stage("select training samples", timings):
        train_rows = select_training_rows(cfg, data["train"], out)
    base = None
    if cfg.eval.enabled and is_global_zero():  # run-level work on rank 0 only (DDP re-runs this script per rank)
        with stage("evaluate base model (both modes)", timings):
            base = run_eval(cfg, base_path, test_rows, use_cache=True, out_dir=out / "eval_base", input_skips=test_skips)
    train_stage = f"{cfg.algo.name} ({cfg.mode.name})"
    with stage(train_stage, timings):
        tuned_path = fit_algo(cfg, cfg.get("init_from") or base_path, processor, train_rows, out, test_rows)
    if not is_global_zero():  # the other ranks are done once the model is saved; rank 0 checks their exit
        return None
    if (out / "selection.json").exists():  # scoring vs training cost, side by side (RAP's efficiency claim)
        update_selection_cost(out, timings[train_stage], read_train_tokens(out, out / "sft"))
    report = None
    if cfg.eval.enabled:
        with stage("evaluate tuned model (both modes)", timings):
            tuned = run_eval(cfg, str(tuned_path), test_rows, use_cache=False, out_dir=out / "eval_tuned",
                             input_skips=test_skips)
        with stage("thinking-boundary report", timings):
            report = write_boundary(cfg, base, tuned, train_rows, out)
            write_rl_report_for_run(cfg, report, out)  # init_from + RL algo: rl_boundary.{json,csv,md}
            log_run_results(cfg, out, report, base, tuned)  # logger=wandb: boundary/eval tables, plots, regions
    check_launched_ranks()  # a rank that failed fails the run (never exit 0 behind a crashed rank)
    (out / "timings.json").write_text(json.dumps(timings, indent=2))
    log.info("done; outputs in %s; stage times %s", out, timings)
    return report
