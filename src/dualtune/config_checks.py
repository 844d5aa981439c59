"""Fail fast on a bad run config or an empty dataset, with messages that name the key / split.

`check_config` runs first in every task (train / evaluate / score), before any data or model is loaded:
every key of the resolved config that the task reads is checked against a table of rules (type, range,
allowed values), plus a few cross-key rules (``algo.epochs`` vs ``algo.max_steps``, ``score.shard_id`` vs
``score.num_shards``, ...). All problems are reported at once in one `ConfigError`. A key absent from the
config is not checked (the code's default applies); ``null`` is accepted only where a rule allows it.

`require_data` runs right after ``load_domain``: a split with no valid rows raises a ValueError naming the
domain, the split and how many rows were invalid (instead of an IndexError / StopIteration later on).
"""

from __future__ import annotations

import importlib.util
import os

from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from dualtune.aggregates import AGGREGATES
from dualtune.curation import ROUTES
from dualtune.curation_split import PARTS, RULES, SPLITS, refine_problems
from dualtune.data.cot_sources import source_problem
from dualtune.lab.registry import DOMAINS as LAB_DOMAINS
from dualtune.lab.registry import GENERIC, SELECTION_LAB
from dualtune.models.loading import DTYPES
from dualtune.prompting.templates import EVAL_MODES, MODES
from dualtune.scoring.selectors import SELECTORS
from dualtune.selection import PASS_RATE_PRESETS
from dualtune.training.grpo_math import ESTIMATORS, LOSS_TYPES, SCALES
from dualtune.training.rewards import REWARD_FUNCS
from dualtune.utils.config_rules import any_of, boolean, choice, integer, is_int, list_of, mapping, number, text

TASKS = ("train", "evaluate", "score", "cot")
ALGOS = ("sft", "grpo", "sft_then_grpo")  # recipes.train.fit_algo
LOGGERS = ("none", "csv", "wandb")  # utils.runtime.build_logger
NUMERIC_METRICS = ("exact", "mra", "mra_vsibench")  # prompting.answers.NUMERIC_METRICS
_ABSENT = object()


class ConfigError(ValueError):
    """A resolved config that cannot run; the message lists every offending key."""


# ----------------------------------------------------------------------------- tables (key -> rule)
MODE_LIST = list_of(choice(*MODES), what="answer modes")
BUDGETS = mapping(integer(1), keys=MODES)
PROB = number(0, 1)
FRACTION = number(0, 1, lo_open=True)
METRIC_MAP = mapping(choice(*NUMERIC_METRICS))
COMMON = {"seed": integer(0), "strict": boolean(), "cache_dir": text(), "output_dir": text(null=True)}
MODEL = {
    "model.path": text(null=True), "model.dtype": choice(*DTYPES, null=True), "model.freeze_vision": boolean(),
    "model.freeze_projector": boolean(), "model.min_pixels": integer(1, null=True),
    "model.max_pixels": integer(1, null=True), "model.max_length": integer(1, null=True),
    "model.max_patches": integer(1, null=True),
    "model.max_new_tokens": any_of(BUDGETS, choice(None, null=True)),  # mode.max_new_tokens defaults to it
    "model.lora.enabled": boolean(), "model.lora.r": integer(1),
    "model.lora.alpha": number(0, lo_open=True), "model.lora.dropout": number(0, 1, hi_open=True),
    **{f"model.tiny.{k}": integer(1) for k in ("vocab_size", "hidden_size", "layers", "heads",
                                               "intermediate_size", "vision_hidden", "vision_depth")},
    "model.pretrain.n_samples": integer(1), "model.pretrain.epochs": integer(0),
    "model.pretrain.batch_size": integer(1), "model.pretrain.lr": number(0, lo_open=True),
    "model.pretrain.vision_lr_scale": number(0), "model.pretrain.max_length": integer(1),
    "model.pretrain.seed": integer(0),
}
DOMAIN = {"domain.source": choice("lab", "hf", "published"), "domain.numeric_metric": METRIC_MAP,
          "domain.aggregate": choice(*AGGREGATES), "domain.cot_source": text(null=True),
          "domain.cot_source_missing": choice("keep", "drop")}
PUBLISHED = {"domain.path": text(), "domain.adapter": text(), "domain.splits.train": text(null=True),
             "domain.splits.test": text(null=True), "domain.subsets": any_of(list_of(text(), what="HF configs"), text(null=True)),
             "domain.n_train_per_subtask": integer(1, null=True), "domain.n_test_per_subtask": integer(1, null=True)}
LAB = {"domain.domains": list_of(choice(*LAB_DOMAINS, GENERIC, SELECTION_LAB), what="lab domains"),
       "domain.n_train_per_subtask": integer(1), "domain.n_test_per_subtask": integer(1)}
HF = {"domain.hf.path": text(), "domain.hf.train_split": text(), "domain.hf.test_split": text(),
      "domain.n_train_per_subtask": integer(1, null=True), "domain.n_test_per_subtask": integer(1, null=True)}
MODE = {"mode.train_modes": MODE_LIST, "mode.templates": mapping(text(), keys=EVAL_MODES),  # + auto's prompt
        "mode.max_new_tokens": BUDGETS}
EVAL = {"eval.modes": list_of(choice(*EVAL_MODES), what="answer modes"),  # auto: evaluation only
        "eval.batch_size": integer(1), "eval.limit": integer(1, null=True),
        "eval.domains": any_of(list_of(text(), what="domain config names"), choice(None)),
        "eval.enabled": boolean(), "eval.n_boot": integer(1), "eval.tol": number(0)}
EVALUATE = {"checkpoint": text(null=True), "limit": integer(1, null=True)}
TRAIN = {"init_from": text(null=True), "ckpt_path": text(null=True), "curation_tie_route": choice(*ROUTES),
         "logger.name": choice(*LOGGERS), "trainer.log_every_n_steps": integer(1),
         "trainer.accelerator": choice("cpu", "gpu", "cuda", "mps", "tpu", "auto"), "algo.name": choice(*ALGOS),
         "trainer.checkpoint_every_n_steps": integer(0), "trainer.num_nodes": integer(1), "trainer.log_batch_ids": boolean()}
OPTIM = {  # relative to the algo node (cfg.algo, or cfg.algo.grpo for sft_then_grpo)
    "lr": number(0, lo_open=True), "weight_decay": number(0), "vision_lr_scale": number(0),
    "warmup_ratio": number(0, 1), "scheduler": choice("constant", "cosine"), "epochs": integer(0),
    "max_steps": integer(), "batch_size": integer(1), "accumulate_grad_batches": integer(1),
    "max_length": integer(1, null=True), "on_overlong": choice("skip", "raise"),
    "gradient_checkpointing": boolean(), "val_fraction": number(0, 1, hi_open=True),
}
SFT = {"max_length": integer(1),  # SFT never runs without a length budget (GRPO may: null = no check)
       "encoded_cache_mb": number(0)}
GRPO = {
    "max_grad_norm": number(0, lo_open=True, null=True), "shuffle": boolean(),
    "num_generations": integer(2), "temperature": number(0, lo_open=True), "top_p": FRACTION,
    "max_new_tokens": any_of(integer(1, null=True), BUDGETS), "generation_micro_batch_size": integer(1),
    "train_micro_batch_size": integer(1, null=True), "loss_type": choice(*LOSS_TYPES), "eps_low": number(0),
    "eps_high": number(0), "beta": number(0), "scale_rewards": choice(*SCALES, null=True), "estimator": choice(*ESTIMATORS),
    "mu": integer(1), "dynamic_filter": boolean(), "reward_funcs": list_of(choice(*REWARD_FUNCS), what="rewards"),
    "reward_weights": any_of(choice(None), list_of(number(), unique=False, what="numbers")),
    "reward_options.accuracy.numeric_metric": METRIC_MAP, "log_every_n_steps": integer(1, null=True),
    "log_completions_every": integer(0), "log_completions_rows": integer(0),
    "vllm_enable_sleep_mode": boolean(), "vllm_importance_sampling_correction": boolean(),
    "vllm_importance_sampling_cap": number(0, lo_open=True),
}
SELECTION = {
    "selection.name": choice(*SELECTORS), "selection.seed": integer(0), "selection.scores_dir": text(null=True),
    "selection.budget": any_of(integer(0, null=True), number(0, 1, lo_open=True)), "selection.longest": boolean(),
    "selection.match_budget_of": text(null=True), "selection.scorer": text(null=True),
    "selection.scorer_overrides.path": text(null=True), "selection.scorer_overrides.dtype": choice(*DTYPES, null=True),
    "selection.max_iters": integer(1), "selection.min_iters": integer(0), "selection.keep_unsolved": boolean(),
    "selection.threshold": number(), "selection.rewards_file": text(null=True), "selection.epoch_key": text(),
    "selection.checkpoints": any_of(list_of(text(), min_len=0, what="model dirs"), choice(None)),
    "selection.include_base": boolean(), "selection.max_pass_rate": PROB,
    "selection.length_source": choice("dataset", "rollouts"),
    "selection.source": choice("dataset", "rollouts"), "selection.preset": choice(*PASS_RATE_PRESETS, null=True),
    "selection.low": number(0, 1, null=True), "selection.high": number(0, 1, null=True),
    "selection.low_strict": boolean(), "selection.high_strict": boolean(),
    "selection.variant": choice("paper", "released_code"), "selection.manifest": text(null=True),
    "selection.rollouts.mode": choice(*MODES), "selection.rollouts.num_generations": integer(1, null=True),
    "selection.rollouts.temperature": number(0, lo_open=True), "selection.rollouts.top_p": FRACTION,
    "selection.rollouts.max_new_tokens": integer(1, null=True), "selection.rollouts.seed": integer(0),
    "selection.rollouts.do_sample": boolean(), "selection.cde.enabled": boolean(), "selection.cde.lam_c": number(),
    "selection.ace.enabled": boolean(), "selection.ace.lam_a": number(0, lo_open=True),
    "selection.ace.sigma": number(0, lo_open=True), "selection.ace.layer": integer(),
    "selection.ace.head_agg": choice("mean", "max"), "selection.ace.window": integer(1, null=True),
    "selection.ace.min_rows": integer(1), "selection.ace.renormalize": boolean(),
    "selection.ace.span": choice("reasoning", "generated"),
    "selection.ace.rollout": any_of(integer(0), choice("first_correct")),
    "selection.ace.scope": choice("all", "needed"), "selection.ace.capture": choice("hook", "output_attentions"),
    "selection.ace.micro_batch_size": integer(1), "selection.drm.enabled": boolean(),
    "selection.drm.k": any_of(integer(0, null=True), FRACTION), "selection.drm.pool": choice("rejected", "all"),
    "selection.drm.rule": choice("topk", "random"), "selection.drm.remove_easy": boolean(),
    "selection.drm.ace_filter": boolean(), "selection.released.seed": integer(0),
    "selection.released.gap_threshold": number(), "selection.released.sim_threshold": PROB,
    "selection.released.readd_fraction": PROB, "selection.released.pool_sim_threshold": PROB,
    "selection.released.gap_eps": number(0),
    "selection.report": text(null=True), "selection.split": choice(*SPLITS),  # selection=refine (curation_split)
    "selection.part": choice(*PARTS), "selection.rule": choice(*RULES),
    "selection.report_domains": any_of(list_of(text(), what="domain names"), choice(None)),
    "selection.tagger": text(),
}
SCORE = {"score.num_shards": integer(1), "score.shard_id": integer(0), "score.batch_size": integer(1),
         "score.micro_batch_size": integer(1), "score.device": choice("auto", "cpu", "cuda"),
         "score.limit": integer(1, null=True), "score.rollout_cache_dir": text(null=True), "score.plots": boolean()}
GENERATION = {  # conf/generation/ (dualtune.generation)
    "generation.backend": choice("hf", "vllm"), "generation.vllm.gpu_memory_utilization": FRACTION,
    "generation.vllm.enforce_eager": boolean(), "generation.vllm.max_model_len": integer(1, null=True),
    "generation.vllm.max_num_seqs": integer(1, null=True), "generation.vllm.dtype": choice(*DTYPES, null=True),
    "generation.vllm.enable_chunked_prefill": boolean(null=True),
    "generation.vllm.kv_cache_space_gb": number(0, lo_open=True, null=True), "generation.vllm.in_process": boolean(),
    "generation.vllm.max_images_per_prompt": integer(1),
}
COT = {"cot.source_name": text(null=True), "cot.tries": integer(1), "cot.temperature": number(0, lo_open=True),
       "cot.top_p": FRACTION, "cot.max_new_tokens": integer(1, null=True), "cot.batch_size": integer(1),
       "cot.micro_batch_size": integer(1), "cot.device": choice("auto", "cpu", "cuda"), "cot.limit": integer(1, null=True),
       "cot.on_reject": choice("drop", "keep_original"), "cot.require_format": boolean(),
       "cot.variant": choice("full", "condensed"), "cot.condensed_sentences": integer(1), "cot.overwrite": boolean(),
       "cot.from_dataset": boolean()}
TEACHER = {"teacher." + key.split(".", 1)[1]: rule for key, rule in MODEL.items()}  # conf/cot.yaml: model@teacher
TASK_TABLES = {"train": (COMMON, MODEL, DOMAIN, MODE, EVAL, TRAIN, SELECTION, SCORE, GENERATION),
               "cot": (COMMON, TEACHER, DOMAIN, MODE, COT, GENERATION),
               "evaluate": (COMMON, MODEL, DOMAIN, MODE, EVAL, EVALUATE, GENERATION),
               "score": (COMMON, MODEL, DOMAIN, MODE, SELECTION, SCORE, GENERATION)}


# ----------------------------------------------------------------------------- engine
def _get(cfg, key):
    """The resolved plain value at ``key``; ``_ABSENT`` if absent; raises for ``???`` / bad interpolations."""
    value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=True)
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _safe_get(cfg, key):
    """`_get`, with ``_ABSENT`` for anything unreadable (already reported by the tables)."""
    try:
        return _get(cfg, key)
    except Exception:  # noqa: BLE001
        return _ABSENT


def _check_table(cfg, table: dict, errors: list[str], prefix: str = "") -> None:
    """Append ``key=value: expected ...`` for every present key of ``table`` that breaks its rule."""
    for rel, rule in table.items():
        key = f"{prefix}{rel}"
        try:
            value = _get(cfg, key)
        except MissingMandatoryValue:
            errors.append(f"{key}: is required (still ???); set {key}=...")
            continue
        except Exception as err:  # noqa: BLE001 - interpolation errors: report them against the key
            errors.append(f"{key}: cannot be resolved: {str(err).splitlines()[0]}")
            continue
        if value is not _ABSENT and (want := rule(value)):
            errors.append(f"{key}={value!r}: expected {want.replace('{key}', key)}")


def _cross_checks(cfg, task: str, errors: list[str]) -> None:
    """Rules that involve several keys."""
    nodes = [("algo.", _safe_get(cfg, "algo"))] if task == "train" else []
    if task == "train" and _safe_get(cfg, "algo.name") == "sft_then_grpo":
        nodes.append(("algo.grpo.", _safe_get(cfg, "algo.grpo")))
    for prefix, node in (n for n in nodes if isinstance(n[1], dict)):
        epochs, steps = node.get("epochs", 1), node.get("max_steps", -1)
        if is_int(epochs) and is_int(steps) and epochs <= 0 and steps <= 0:
            errors.append(f"{prefix}epochs={epochs} with {prefix}max_steps={steps}: nothing would be trained; set "
                          f"{prefix}epochs >= 1 or {prefix}max_steps >= 1")
        weights, funcs = node.get("reward_weights"), node.get("reward_funcs")
        if isinstance(weights, list) and isinstance(funcs, list) and len(weights) != len(funcs):
            errors.append(f"{prefix}reward_weights: {len(weights)} weights for {len(funcs)} reward_funcs")
    shards, shard = _safe_get(cfg, "score.num_shards"), _safe_get(cfg, "score.shard_id")
    if is_int(shards) and is_int(shard) and shards >= 1 and not shard < shards:
        errors.append(f"score.shard_id={shard}: expected 0 .. score.num_shards - 1 = {shards - 1}")
    if _safe_get(cfg, "generation.backend") == "vllm" and importlib.util.find_spec("vllm") is None:
        errors.append("generation.backend=vllm: vllm is not installed in this environment; build the vLLM "
                      "environment with `make vllm-env` and run with .venv-vllm/bin/python")
    if (task == "train" and _safe_get(cfg, "algo.name") in ("grpo", "sft_then_grpo")
            and _safe_get(cfg, "generation.backend") == "vllm"):  # one colocated in-process engine (engine_sync)
        shape = {k: _safe_get(cfg, k) for k in ("generation.vllm.in_process", "trainer.devices", "trainer.num_nodes")}
        if shape != {"generation.vllm.in_process": True, "trainer.devices": 1, "trainer.num_nodes": 1}:
            errors.append(f"GRPO with generation.backend=vllm needs one process and an in-process engine, got "
                          f"{shape}; set generation.vllm.in_process=true trainer.devices=1 trainer.num_nodes=1")
    if _safe_get(cfg, "selection.name") == "refine":
        errors += refine_problems(_safe_get(cfg, "selection"))
    for key in ("init_from", "checkpoint"):  # a local model dir that is not there (a hub id starts with neither)
        value = _safe_get(cfg, key)
        if isinstance(value, str) and value.startswith(("/", "./", "../", "~")) and not os.path.exists(
                os.path.expanduser(value)):
            errors.append(f"{key}={value}: no such directory")
    source = _safe_get(cfg, "domain.cot_source")
    if isinstance(source, str) and source and (problem := source_problem(source, _safe_get(cfg, "cache_dir"))):
        errors.append(f"domain.cot_source={source!r}: {problem}")
    templates = _safe_get(cfg, "mode.templates")
    if task == "cot" and isinstance(templates, dict) and "cot" not in templates:
        errors.append("mode.templates: has no cot prompt; CoT synthesis asks the teacher with mode.templates.cot")
    for key in ("mode.train_modes", "eval.modes"):
        modes = _safe_get(cfg, key)
        if isinstance(templates, dict) and isinstance(modes, list):
            errors += [f"{key}: mode {m!r} has no prompt in mode.templates" for m in modes
                       if m in MODES and m not in templates]


def check_config(cfg, task: str) -> None:
    """Validate the resolved ``cfg`` of ``task`` (train | evaluate | score | cot); raise `ConfigError` naming
    every bad key. Call it before loading any data or model."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    errors: list[str] = []
    for table in TASK_TABLES[task]:
        _check_table(cfg, table, errors)
    source = _safe_get(cfg, "domain.source")
    _check_table(cfg, {"lab": LAB, "hf": HF, "published": PUBLISHED}.get(source, {}), errors)
    if task == "train":
        algo = _safe_get(cfg, "algo.name")
        _check_table(cfg, OPTIM, errors, "algo.")
        if algo in ("sft", "sft_then_grpo"):
            _check_table(cfg, SFT, errors, "algo.")
        if algo == "grpo":
            _check_table(cfg, GRPO, errors, "algo.")
        elif algo == "sft_then_grpo":
            _check_table(cfg, {**OPTIM, **GRPO}, errors, "algo.grpo.")
    _cross_checks(cfg, task, errors)
    if errors:
        raise ConfigError(f"invalid {task} config ({len(errors)} problem{'s' * (len(errors) > 1)}):\n  "
                          + "\n  ".join(errors))


# ----------------------------------------------------------------------------- data
def _invalid_rows(domain_cfg, split: str, skipped: list | None = None) -> str:
    """Why a split came out empty: the lab settings, or how many rows ``load_domain`` skipped (its ``skipped``)."""
    if domain_cfg.source == "published":
        split_name = (domain_cfg.get("splits") or {}).get(split)
        if split_name is None and split == "test":
            return (f"domain.splits.test is null: {domain_cfg.name} is a training set and publishes no test split; "
                    f"train without evaluation (eval.enabled=false) and evaluate the tuned model on a benchmark "
                    f"afterwards (python evaluate.py domain=mathvista checkpoint=<run dir>/model), or evaluate on "
                    f"benchmarks during training (eval.domains=[mathvista])")
        if split_name is None:
            return (f"domain.splits.{split} is null: {domain_cfg.name} publishes no {split} split (an evaluation "
                    f"benchmark): train on a training set (e.g. domain=mm_eureka) and evaluate on this one "
                    f"(python evaluate.py domain={domain_cfg.name}, or eval.domains=[{domain_cfg.name}])")
        return f"every row of {domain_cfg.path}[{split_name}] was skipped or invalid; reasons in the warnings above"
    if domain_cfg.source == "lab":
        return (f"the lab generated no rows: domain.domains={list(domain_cfg.domains)}, "
                f"domain.n_{split}_per_subtask={domain_cfg.get(f'n_{split}_per_subtask')}")
    if skipped is None:
        return "every row was invalid; the reasons are in the validation warning above"
    where = f"{domain_cfg.hf.path}[{domain_cfg.hf.get(f'{split}_split')}]"
    n = len(skipped)
    return f"all {n} rows of {where} are invalid; reasons in the warning above" if n else f"{where} is empty"


def require_data(cfg, data: dict[str, list[dict]], task: str,
                 skipped: dict[str, list] | None = None) -> dict[str, list[dict]]:
    """Return ``data`` (``load_domain``'s splits); raise ValueError naming the domain, the split and the
    invalid-row count (from ``skipped``, the dict ``load_domain`` filled) if a split ``task`` needs (train:
    train, and test with eval.enabled; evaluate: test; score: train) has no valid row."""
    needed = {"evaluate": ("test",), "score": ("train",), "cot": ("train",)}.get(task) or (
        ("train", "test") if cfg.eval.enabled else ("train",))
    for split in needed:
        if not data.get(split):
            why = _invalid_rows(cfg.domain, split, None if skipped is None else skipped.get(split, []))
            raise ValueError(f"domain {cfg.domain.name!r}: the {split} split has no valid rows ({why}); "
                             f"nothing to {task}")
    return data
