"""The evaluate recipe: a base model (cached by model hash) or a tuned checkpoint, in both answer modes."""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from dualtune.config_checks import check_config, require_data
from dualtune.data.sources import limit_samples, load_domain
from dualtune.evaluation.cache import cached_evaluate, eval_key_fields
from dualtune.evaluation.runner import OVERALL, evaluate_model, write_eval
from dualtune.generation.base import build_generator, generation_settings
from dualtune.models.base import resolve_model_path
from dualtune.models.loading import image_bounds, load_model, processor_for
from dualtune.prompting.templates import eval_templates
from dualtune.utils.runtime import run_dir, seed_everything, stage, task_wrapper

log = logging.getLogger(__name__)


def eval_settings(cfg) -> dict:
    """Decoding and scoring settings shared by base and tuned evaluation (so both are comparable)."""
    return {
        "modes": list(cfg.eval.modes),
        "templates": eval_templates(OmegaConf.to_container(cfg.mode.templates), cfg.eval.modes),  # + auto
        "max_new_tokens": OmegaConf.to_container(cfg.mode.max_new_tokens, resolve=True),  # model defaults
        "numeric_metric": OmegaConf.to_container(cfg.domain.numeric_metric),
    }


def step_evaluator(cfg, processor, samples: list[dict]):
    """``model -> [{"mode", "accuracy", "n"}]``: the test split in every eval mode with the run's settings
    (greedy, HF generation on the live policy; overall pooled accuracy), for `PeriodicEval` (``algo.eval_steps``)."""
    settings = eval_settings(cfg)

    def evaluate(model) -> list[dict]:
        result = evaluate_model(model, processor, samples, batch_size=int(cfg.eval.batch_size), progress=False,
                                **settings)
        return [{"mode": a["mode"], "accuracy": a["weighted"], "n": a["n"]} for a in result.aggregates()
                if a["domain"] == OVERALL]

    return evaluate


def run_eval(cfg, model_path: str, samples: list[dict], use_cache: bool, out_dir=None, prefix: str = "",
             input_skips=None):
    """Evaluate ``model_path`` on ``samples`` in every eval mode; cached by model hash when ``use_cache``.
    ``input_skips`` ({"id", "reason"} of input rows never evaluated) are listed in the written outputs."""
    settings = eval_settings(cfg)
    backend = generation_settings(cfg)["backend"]

    def compute():
        processor = processor_for(model_path, cfg.model)
        if backend != "hf":  # generation.backend=vllm: an engine on the checkpoint, no HF model loaded
            with build_generator(cfg, model_path, processor, templates=settings["templates"],
                                 seed=int(cfg.seed)) as generator:
                return evaluate_model(None, processor, samples, batch_size=int(cfg.eval.batch_size),
                                      generator=generator, **settings)
        model = load_model(model_path, cfg.model, for_training=False)
        return evaluate_model(model, processor, samples, batch_size=int(cfg.eval.batch_size), **settings)

    if use_cache:
        fields = eval_key_fields(samples, settings["modes"], settings["templates"], settings["max_new_tokens"],
                                 settings["numeric_metric"],
                                 decoding=None if backend == "hf" else {"do_sample": False, "backend": backend})
        # The pixel limits change every image's token count, so they are part of the key.
        bounds = image_bounds(cfg.model)  # the pixel limits under the key's original names, then any other bound
        fields["pixels"] = {"min": bounds.pop("min_pixels"), "max": bounds.pop("max_pixels"), **bounds}
        result = cached_evaluate(cfg.cache_dir, model_path, fields, compute)
    else:
        result = compute()
    result.input_skips = list(input_skips or [])
    if out_dir is not None:
        write_eval(result, out_dir, prefix=prefix)
    return result


@task_wrapper
def evaluate(cfg):
    """Evaluate ``cfg.checkpoint`` (or the model config's base model) on the domain's test split."""
    check_config(cfg, "evaluate")
    seed_everything(cfg.seed)
    out = run_dir(cfg)
    with stage("load data"):
        skipped: dict = {}
        data = load_domain(cfg.domain, cfg.cache_dir, seed=cfg.seed, strict=cfg.strict, skipped=skipped)
        test = limit_samples(require_data(cfg, data, "evaluate", skipped)["test"], cfg.get("limit"))
    is_base = not cfg.get("checkpoint")
    path = resolve_model_path(cfg.model, cfg.cache_dir) if is_base else str(cfg.checkpoint)
    with stage(f"evaluate {'base' if is_base else 'checkpoint'} {path}"):
        result = run_eval(cfg, path, test, use_cache=is_base, out_dir=out, input_skips=skipped.get("test"))
    for row in result.aggregates():
        log.info("%s", row)
    return result
