"""The GRPO recipe: on-policy RL on the training prompts from a start checkpoint, saved like SFT.

* ``algo=grpo`` reads its hyper-parameters from ``cfg.algo``; ``algo=sft_then_grpo`` from the
  ``cfg.algo.grpo`` block (`grpo_algo_cfg`), after `fit_sft` has written ``<run dir>/sft/model``.
* Rollouts use ``mode=``: cot -> CoT prompts, direct -> DA prompts, dual -> alternating CoT / DA
  groups (`dualtune.training.grpo_module.GRPOModule`), with the mode's ``max_new_tokens`` budget.
  ``generation.backend=vllm`` generates them on a colocated vLLM engine, synced with the policy after every
  step (`dualtune.training.engine_sync`; one process only).
* ``algo.max_steps`` counts rollout batches; with ``mu > 1`` the Trainer takes ``mu`` optimizer steps
  per batch, so its ``max_steps`` is ``mu * algo.max_steps``.
* Checkpoints / resume as in SFT (`dualtune.recipes.sft`): ``<run dir>/checkpoints/last.ckpt`` every
  ``trainer.checkpoint_every_n_steps`` rollout steps, at the end and on SIGTERM (exit 143); resume with
  ``ckpt_path=last`` (for ``sft_then_grpo`` each stage resumes from its own dir). The prompt order (each
  epoch's shuffle and the position in it) and the reward-curve rows are in the checkpoint, so a resumed run
  trains the prompts an uninterrupted run would have, and the curve has every step once.
* The tuned model (LoRA merged) goes to ``<run dir>/model``; ``reward_curve.{csv,png}`` hold the mean
  reward per step.
"""

from __future__ import annotations

import copy
import csv
import logging
from pathlib import Path

from omegaconf import OmegaConf, open_dict

from dualtune.data.datamodule import ResumableDataLoader
from dualtune.data.encoding import OverlongError, encode_generation_batch
from dualtune.generation.base import generation_settings
from dualtune.models.loading import load_model, vision_tower_patterns
from dualtune.recipes.sft import build_trainer, resolve_ckpt_path
from dualtune.schema import row_modes
from dualtune.training.callbacks import RewardCurve, SampleRewardLog
from dualtune.training.checkpointing import fit_resumable
from dualtune.training.engine_sync import EngineSyncCallback, build_engine_rollouts
from dualtune.training.grpo_module import GRPOModule, grpo_collate
from dualtune.training.saving import save_from_trainer
from dualtune.utils.distributed import after_fit
from dualtune.utils.runtime import build_logger

log = logging.getLogger(__name__)
CURVE_FILE = "reward_curve"


def grpo_algo_cfg(algo):
    """The GRPO hyper-parameters: ``algo.grpo`` for ``sft_then_grpo``, else ``algo`` itself."""
    return algo.grpo if "grpo" in algo else algo


def with_algo(cfg, algo):
    """A copy of ``cfg`` whose ``algo`` node is ``algo`` (so `build_trainer` reads the GRPO limits), with
    ``algo.log_every_n_steps`` (if set) replacing the trainer's: a rollout step is expensive, log each."""
    view = copy.deepcopy(cfg)  # never mutate the caller's config
    with open_dict(view):
        view.algo = OmegaConf.create(OmegaConf.to_container(algo, resolve=True))
        if algo.get("log_every_n_steps"):
            view.trainer.log_every_n_steps = int(algo.log_every_n_steps)
    return view


def rollout_mode(mode_cfg) -> str:
    """GRPOModule mode for a ``mode=`` config: "dual" when it trains both answer modes."""
    modes = list(mode_cfg.train_modes)
    return "dual" if len(modes) == 2 else modes[0]


def generation_budget(algo, mode_cfg) -> dict[str, int]:
    """Per-mode ``max_new_tokens``: ``algo.max_new_tokens`` (int or dict) if set, else the mode config's."""
    value = algo.get("max_new_tokens")
    if value is None:
        value = mode_cfg.max_new_tokens
    if isinstance(value, int):
        return {"cot": value, "direct": value}
    value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else dict(value)
    return {str(k): int(v) for k, v in value.items()}


def filter_overlong_prompts(processor, rows, modes, templates, budget, max_length, on_overlong="skip"):
    """Rows whose prompt (+ images) plus the largest generation budget of ``modes`` fits ``max_length``
    tokens; the others are skipped and counted (or raise ``OverlongError`` with ``on_overlong="raise"``).
    Returns ``(kept_rows, n_skipped)``; ``max_length=None`` keeps everything unchecked."""
    if max_length is None:
        return list(rows), 0
    kept, skipped = [], 0
    for row in rows:
        try:
            for mode in row_modes(row, modes):  # a curated row is checked in its own mode only
                encode_generation_batch(processor, [row], mode, templates, max_length=int(max_length) - budget[mode])
        except OverlongError:
            if on_overlong == "raise":
                raise
            skipped += 1
            continue
        kept.append(row)
    if skipped:
        log.warning("GRPO: skipped %d of %d prompts longer than max_length=%s minus the generation budget",
                    skipped, len(rows), max_length)
    return kept, skipped


def default_window(n_steps: int) -> int:
    """Steps averaged for a curve's trend: a tenth of the run, at least 5."""
    return max(5, n_steps // 10)


def curve_summary(rows: list[dict], window: int | None = None, key: str = "reward") -> dict:
    """Mean of ``key`` over the first and the last ``window`` steps (default: a tenth of the run, at
    least 5), and their difference."""
    values = [r[key] for r in rows if r.get(key) is not None]
    if not values:
        return {"first": None, "last": None, "delta": None, "steps": 0}
    window = max(1, min(window or default_window(len(values)), len(values)))
    first, last = sum(values[:window]) / window, sum(values[-window:]) / window
    return {"first": first, "last": last, "delta": last - first, "steps": len(values), "window": window}


def merge_curve(previous: list[dict], new: list[dict]) -> list[dict]:
    """Rows of an interrupted run (before the first resumed step) followed by the new rows (for checkpoints
    written before the curve was part of the checkpoint)."""
    if not new:
        return list(previous)
    start = new[0]["step"]
    return [r for r in previous if int(r["step"]) < start] + list(new)


def read_curve(path: Path) -> list[dict]:
    """Rows of a ``reward_curve.csv`` (numbers as floats, ``step`` as int; empty cells dropped)."""
    if not path.exists():
        return []
    with path.open() as fh:
        return [{k: (int(float(v)) if k in ("step", "global_step") else float(v)) for k, v in r.items() if v != ""}
                for r in csv.DictReader(fh)]


def write_reward_curve(rows: list[dict], out_dir: Path, window: int | None = None) -> dict[str, Path]:
    """``reward_curve.csv`` (one row per step) and ``reward_curve.png`` (reward, its trailing moving average
    over ``window`` steps (default: a tenth of the run, at least 5), and per-mode rewards)."""
    window = window or default_window(len(rows))
    from dualtune.utils.plotting import new_figure, save_figure

    out_dir = Path(out_dir)
    paths = {"csv": out_dir / f"{CURVE_FILE}.csv", "png": out_dir / f"{CURVE_FILE}.png"}
    columns = list(dict.fromkeys(["step", "global_step", "reward", *(k for r in rows for k in r)]))
    with paths["csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = new_figure(6, 3.5)
    steps = [r["step"] for r in rows if "reward" in r]
    rewards = [r["reward"] for r in rows if "reward" in r]
    ax.plot(steps, rewards, color="0.7", lw=1, label="mean reward")
    if rewards:  # trailing moving average, so the trend is readable despite rollout noise
        smooth = [sum(rewards[max(0, i - window + 1): i + 1]) / len(rewards[max(0, i - window + 1): i + 1])
                  for i in range(len(rewards))]
        ax.plot(steps, smooth, color="C0", lw=2, label=f"moving avg ({window})")
    for mode, color in (("cot", "C2"), ("direct", "C3")):
        picked = [(r["step"], r[f"modes/{mode}/reward"]) for r in rows if f"modes/{mode}/reward" in r]
        if picked:
            ax.plot(*zip(*picked), color=color, lw=1, ls="--", label=f"{mode} prompts")
    ax.set_xlabel("rollout step")
    ax.set_ylabel("reward")
    ax.set_title("GRPO reward")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, paths["png"])
    return paths


def build_grpo_module(cfg, algo, model, processor, ref_model=None, rollout_engine=None) -> GRPOModule:
    """A `GRPOModule` configured from the GRPO ``algo`` node and ``cfg.mode`` (``rollout_engine``: a colocated
    vLLM engine's `EngineRollouts`, None for ``model.generate``)."""
    return GRPOModule(
        model, processor, ref_model=ref_model, rollout_engine=rollout_engine,
        importance_sampling_cap=float(algo.get("vllm_importance_sampling_cap", 2.0)),
        num_generations=int(algo.num_generations),
        mode=rollout_mode(cfg.mode), max_new_tokens=generation_budget(algo, cfg.mode),
        temperature=float(algo.temperature), top_p=float(algo.top_p), loss_type=algo.loss_type,
        eps_low=float(algo.eps_low), eps_high=float(algo.eps_high), beta=float(algo.beta),
        scale_rewards=algo.scale_rewards, estimator=algo.estimator, reward_funcs=list(algo.reward_funcs),
        reward_weights=None if algo.reward_weights is None else list(algo.reward_weights),
        reward_options=OmegaConf.to_container(algo.reward_options, resolve=True) if algo.reward_options else None,
        mu=int(algo.mu), dynamic_filter=bool(algo.dynamic_filter),
        generation_micro_batch_size=int(algo.generation_micro_batch_size),
        train_micro_batch_size=algo.train_micro_batch_size, lr=float(algo.lr),
        weight_decay=float(algo.weight_decay), warmup_ratio=float(algo.warmup_ratio), scheduler=algo.scheduler,
        vision_lr_scale=float(algo.get("vision_lr_scale", 1.0)), vision_patterns=vision_tower_patterns(cfg.model),
        max_grad_norm=algo.max_grad_norm,
        log_completions_every=int(algo.log_completions_every),
        log_completions_rows=int(algo.log_completions_rows),
        templates=OmegaConf.to_container(cfg.mode.templates, resolve=True),
        gradient_checkpointing=bool(algo.gradient_checkpointing))


def fit_grpo(cfg, model_path: str, processor, train_rows, out_dir: Path, callbacks=()) -> Path:
    """GRPO from ``model_path`` on the prompts of ``train_rows``; return the saved model dir
    (``out_dir/model``) after writing ``reward_curve.{csv,png}`` into ``out_dir`` (``callbacks``: extra
    Lightning callbacks, e.g. `PeriodicEval`)."""
    out_dir = Path(out_dir)
    algo = grpo_algo_cfg(cfg.algo)
    mode = rollout_mode(cfg.mode)
    budget = generation_budget(algo, cfg.mode)
    templates = OmegaConf.to_container(cfg.mode.templates, resolve=True)
    rows, _ = filter_overlong_prompts(processor, train_rows, ["cot", "direct"] if mode == "dual" else [mode],
                                      templates, budget, algo.get("max_length"),
                                      "raise" if cfg.get("strict") else algo.get("on_overlong", "skip"))
    if not rows:
        raise ValueError("GRPO: no training prompts (all filtered out or none selected)")
    # generation.backend=vllm: rollouts on a colocated engine built from the start weights, synced after each step.
    engine = None
    if generation_settings(cfg)["backend"] == "vllm":
        engine = build_engine_rollouts(cfg, algo, model_path, processor, templates)
    model = load_model(model_path, cfg.model)
    # A KL term needs a frozen reference: a LoRA model disables its adapters instead of a second copy.
    ref_model = None
    if float(algo.beta) > 0 and not hasattr(model, "disable_adapter"):
        ref_model = load_model(model_path, cfg.model, for_training=False)
    module = build_grpo_module(cfg, algo, model, processor, ref_model, rollout_engine=engine)
    # Seeded order per epoch, resumable mid-epoch (its position is saved in the checkpoint).
    loader = ResumableDataLoader(rows, batch_size=int(algo.batch_size), shuffle=bool(algo.get("shuffle", True)),
                                 seed=int(cfg.seed), collate_fn=grpo_collate)
    max_steps = int(algo.max_steps)
    curve = RewardCurve()  # its rows are saved in the checkpoint
    trainer = build_trainer(with_algo(cfg, algo), out_dir, logger=build_logger(cfg, out_dir),
                            max_epochs=-1 if max_steps > 0 else int(algo.epochs),
                            max_steps=max_steps * int(algo.mu) if max_steps > 0 else -1,
                            callbacks=[curve, SampleRewardLog(out_dir), *callbacks,  # LIMR's reward trajectories
                                       *([EngineSyncCallback(engine)] if engine else [])],
                            steps_per_unit=int(algo.mu))  # checkpoint_every_n_steps counts rollout steps
    resume = resolve_ckpt_path(cfg.get("ckpt_path"), out_dir)
    try:
        if engine is not None and trainer.world_size > 1:
            raise ValueError(f"GRPO with generation.backend=vllm runs one process (a colocated engine), got "
                             f"{trainer.world_size}; use trainer.devices=1 trainer.num_nodes=1 or backend=hf")
        fit_resumable(trainer, module, loader, resume)  # SIGTERM: checkpoint, exit 143
    finally:
        if engine is not None:
            engine.close()
    save_dir = save_from_trainer(trainer, module, processor, out_dir / "model",  # every rank (FSDP gathers)
                                 rebuild=lambda: load_model(model_path, cfg.model))
    if trainer.is_global_zero:
        # A checkpoint from before the curve was saved in it: keep the earlier rows from the CSV.
        previous = read_curve(out_dir / f"{CURVE_FILE}.csv") if resume and not curve.restored else []
        rows_out = merge_curve(previous, curve.rows)
        write_reward_curve(rows_out, out_dir)
        summary = curve_summary(rows_out)
        log.info("GRPO done: %d rollout steps (%s mode); mean reward first %s steps %.3f -> last %.3f; model in %s",
                 summary["steps"], mode, summary.get("window"), summary["first"] or 0.0, summary["last"] or 0.0,
                 save_dir)
        for rollout_mode_name in ("cot", "direct"):  # groups of each answer mode, when a run mixed them
            part = curve_summary(rows_out, key=f"modes/{rollout_mode_name}/reward")
            if part["steps"]:
                log.info("  %s groups: mean reward first %s steps %.3f -> last %.3f", rollout_mode_name,
                         part["window"], part["first"], part["last"])
    after_fit(trainer, "grpo model saved")  # every rank waits until rank 0 has written the model
    return save_dir
