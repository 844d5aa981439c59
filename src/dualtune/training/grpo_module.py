"""GRPO as a LightningModule: rollouts are generated inside ``training_step`` (on-policy).

One training step = one rollout batch: eval-mode generation of G completions per prompt
(`rollout.generate_completions`, or ``rollout_engine``: a colocated vLLM engine, `engine_sync`), rule-based
rewards (`rewards.combine_rewards`), group advantages, then a train-mode re-scoring of prompt + completion (same
images) and the clipped policy loss (`grpo_math.policy_loss`, with truncated importance sampling when the engine
returned its log-probs).

* ``mu == 1``: automatic optimization; old log-probs are the detached current ones (ratio 1).
* ``mu > 1``: manual optimization; old log-probs are cached once per rollout batch and the batch is
  reused for ``mu`` optimizer steps (each followed by an LR-scheduler step). Trainer ``max_steps``
  then counts optimizer steps (``mu`` per batch). Gradients are clipped by ``max_grad_norm`` in both
  modes (a Trainer ``gradient_clip_val`` overrides it, but Lightning rejects that one when mu > 1).
* ``mode="dual"``: prompts alternate between cot and direct groups by a running prompt counter
  (prompt number n, counted across the whole run, uses cot iff n is even), so both modes get half
  the groups whatever the batch size; a group never mixes modes. A row's ``train_mode`` (set by
  ``selection=boundary``) overrides the configured or alternating mode.
* The vision tower (``vision_patterns``) trains at ``lr * vision_lr_scale``, as in SFT.
* ``beta > 0`` needs a reference: ``ref_model`` (frozen) or, for a peft model, the same model with
  its adapters disabled.

The dataloader must yield lists of schema samples: use ``collate_fn=grpo_collate``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import lightning as L
import torch

from dualtune.schema import row_modes
from dualtune.training.engine_sync import engine_logprob_rows
from dualtune.training.grpo_math import (ESTIMATORS, LOSS_TYPES, SCALES, dual_modes, group_advantages,
                                         kept_group_rows, kl_k3, policy_loss, truncated_importance_weights)
from dualtune.training.grpo_metrics import completion_rows, print_completions, rollout_metrics, sample_rewards
from dualtune.training.rewards import build_reward_funcs, combine_rewards, reward_name
from dualtune.training.rollout import build_policy_batch, completion_logprobs, generate_completions
from dualtune.training.schedules import build_optimizer_and_scheduler, param_groups

log = logging.getLogger(__name__)
DEFAULT_MAX_NEW_TOKENS = {"cot": 512, "direct": 32}
_CLIP_KEYS = ("clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean", "kl")


def grpo_collate(samples: list[dict]) -> list[dict]:
    """DataLoader collate_fn for GRPO: the batch is the list of schema samples itself."""
    return list(samples)


class GRPOModule(L.LightningModule):
    """Group Relative Policy Optimization for a VLM (injected ``model`` + ``processor``)."""

    def __init__(self, model, processor, ref_model=None, num_generations: int = 8, mode: str = "cot",
                 max_new_tokens: int | Mapping | None = None, temperature: float = 1.0, top_p: float = 1.0,
                 loss_type: str = "dapo", eps_low: float = 0.2, eps_high: float = 0.28, beta: float = 0.0,
                 scale_rewards: str | None = "group", estimator: str = "grpo", reward_funcs=("accuracy", "format"),
                 reward_weights=None, reward_options: Mapping | None = None, mu: int = 1,
                 dynamic_filter: bool = False, generation_micro_batch_size: int = 16,
                 train_micro_batch_size: int | None = None, lr: float = 1e-6, weight_decay: float = 0.0,
                 warmup_ratio: float = 0.0, scheduler: str = "constant", max_grad_norm: float | None = 1.0,
                 vision_lr_scale: float = 1.0, vision_patterns: tuple = ("visual.",),
                 log_completions_every: int = 0, log_completions_rows: int = 8, templates=None,
                 gradient_checkpointing: bool = False, metric_prefix: str = "", rollout_engine=None,
                 importance_sampling_cap: float = 2.0):
        super().__init__()
        if mode not in ("cot", "direct", "dual"):
            raise ValueError(f"mode must be cot, direct or dual, got {mode!r}")
        if mu < 1 or num_generations < 2:
            raise ValueError(f"need mu >= 1 and num_generations >= 2, got mu={mu}, G={num_generations}")
        for value, allowed in ((loss_type, LOSS_TYPES), (scale_rewards, (*SCALES, None)), (estimator, ESTIMATORS)):
            if value not in allowed:  # fail at construction, not after the first rollout
                raise ValueError(f"{value!r} is not one of {allowed}")
        self.model, self.processor = model, processor
        self.save_hyperparameters(ignore=["model", "processor", "ref_model", "rollout_engine"], logger=False)
        self.rollout_engine = rollout_engine  # None: model.generate; else e.g. engine_sync.EngineRollouts
        if isinstance(max_new_tokens, int):
            max_new_tokens = {"cot": max_new_tokens, "direct": max_new_tokens}
        self.max_new_tokens = {k: int(v) for k, v in (max_new_tokens or DEFAULT_MAX_NEW_TOKENS).items()}
        missing = ({"cot", "direct"} if mode == "dual" else {mode}) - set(self.max_new_tokens)
        if missing:
            raise ValueError(f"max_new_tokens has no budget for mode(s) {sorted(missing)}")
        self.templates = dict(templates) if templates else None
        self.reward_funcs = build_reward_funcs(list(reward_funcs), reward_options)
        self.reward_names = [reward_name(f) for f in self.reward_funcs]
        self.reward_weights = None if reward_weights is None else [float(w) for w in reward_weights]
        # Reference policy: only needed for the KL term.
        self.uses_adapter_reference = beta > 0 and ref_model is None
        if self.uses_adapter_reference and not hasattr(model, "disable_adapter"):
            raise ValueError("beta > 0 needs a ref_model, or a peft (LoRA) model whose adapters can be disabled")
        if ref_model is not None and beta == 0:
            log.warning("ref_model ignored: beta == 0 means no KL term")
        self.ref_model = ref_model if beta > 0 else None
        if self.ref_model is not None:
            self.ref_model.eval().requires_grad_(False)
        self.automatic_optimization = mu == 1
        self.model.train()  # from_pretrained returns eval mode; generation switches to eval by itself
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.prompts_seen = 0  # drives the dual-mode alternation; saved in checkpoints
        self.rollouts_done = 0
        self.last_completions: list[dict] = []
        self.last_modes: tuple[str, ...] = ()  # answer modes of the last rollout batch (per-mode metrics)
        self.last_sample_rewards: list[dict] = []  # per-prompt mean rewards of the last rollout batch

    # ----- rollout: generation, rewards, advantages -------------------------------------------
    def _rollout(self, samples: list[dict]) -> dict:
        """Generate G completions per sample, score them and build the (chunked) training batches."""
        hp = self.hparams
        modes = dual_modes(self.prompts_seen, len(samples)) if hp.mode == "dual" else [hp.mode] * len(samples)
        # A curated row (selection=boundary: route reasoning -> cot, direct -> direct) keeps its route's mode.
        modes = [row_modes(sample, (mode,))[0] for sample, mode in zip(samples, modes)]
        self.prompts_seen += len(samples)
        self.last_modes = tuple(sorted(set(modes)))
        results = (self.rollout_engine or generate_completions)(
            self.model, self.processor, samples, modes, hp.num_generations, self.max_new_tokens, hp.temperature,
            hp.top_p, do_sample=True, micro_batch_size=hp.generation_micro_batch_size, templates=self.templates,
            return_inputs=True)
        # Reward columns: every non-image sample field, plus rollout fields (TRL passes dataset columns).
        sample_keys = dict.fromkeys(k for s in samples for k in s if k not in ("images", "video"))
        columns = {k: [samples[r["sample_index"]].get(k) for r in results] for k in sample_keys}
        columns.update(sample_id=[r["sample_id"] for r in results], mode=[r["mode"] for r in results],
                       completion_lengths=[len(r["completion_ids"]) for r in results],
                       completion_ids=[r["completion_ids"].tolist() for r in results],
                       truncated=[r["truncated"] for r in results])
        texts = [r["completion_text"] for r in results]
        # Tokens this rollout batch processed (prompt + completion of every rollout): the TokenCount callback.
        self.last_step_tokens = int(sum(int(r["prompt_ids"].numel()) + len(r["completion_ids"]) for r in results))
        per_func, total = combine_rewards(self.reward_funcs, self.reward_weights, texts, **columns)
        advantages = group_advantages(total, hp.num_generations, hp.scale_rewards, hp.estimator)
        rows = (kept_group_rows(total, hp.num_generations) if hp.dynamic_filter
                else torch.arange(len(results)))
        rollout = {"results": results, "per_func": per_func, "total": total}
        self.last_sample_rewards = sample_rewards(rollout, self.reward_names, hp.num_generations)  # SampleRewardLog
        return {"results": results, "per_func": per_func, "total": total, "advantages": advantages,
                "rows": rows, "chunks": self._chunks(results, advantages, rows)}

    def _chunks(self, results: list[dict], advantages: torch.Tensor, rows: torch.Tensor) -> list[dict]:
        """Device-ready prompt+completion batches over the kept ``rows``, ``train_micro_batch_size`` rows each."""
        size = self.hparams.train_micro_batch_size or max(1, len(rows))
        pad_id = self.processor.tokenizer.pad_token_id
        chunks = []
        for start in range(0, len(rows), size):
            index = rows[start: start + size].tolist()
            inputs, completions, mask = build_policy_batch(
                [results[i]["prompt_inputs"] for i in index], [results[i]["completion_ids"] for i in index], pad_id)
            chunk = {"inputs": {k: v.to(self.device) for k, v in inputs.items()},
                     "completions": completions.to(self.device), "mask": mask.to(self.device),
                     "advantages": advantages[index].to(self.device), "old_logp": None, "ref_logp": None,
                     "engine_logp": engine_logprob_rows([results[i] for i in index], self.device)}
            if self.hparams.beta > 0:
                chunk["ref_logp"] = self._reference_logprobs(chunk)
            chunks.append(chunk)
        return chunks

    @torch.no_grad()
    def _reference_logprobs(self, chunk: dict) -> torch.Tensor:
        """Completion log-probs under the frozen reference (ref_model, or the model without adapters)."""
        if self.ref_model is not None:
            self.ref_model.eval()
            return completion_logprobs(self.ref_model, chunk["inputs"], chunk["completions"], self.hparams.temperature)
        with self.model.disable_adapter():
            return completion_logprobs(self.model, chunk["inputs"], chunk["completions"], self.hparams.temperature)

    # ----- loss ---------------------------------------------------------------------------------
    def _token_normaliser(self, chunks: list[dict]) -> tuple[torch.Tensor | None, int]:
        """Token count for token-normalised losses over the whole rollout batch (so chunking is exact):
        bnpo uses this process's tokens, dapo the global count over ``world_size`` processes (TRL's
        ``num_items_in_batch``). Called on every rank, even one whose groups were all filtered out."""
        if self.hparams.loss_type not in ("dapo", "bnpo"):
            return None, 1
        tokens = torch.tensor(float(sum(c["mask"].sum().item() for c in chunks)), device=self.device)
        if self.hparams.loss_type == "dapo" and self.trainer.world_size > 1:
            return self.all_gather(tokens).sum(), self.trainer.world_size
        return tokens, 1

    def _policy_loss(self, chunks: list[dict], normaliser, backward=None) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss over all chunks (each weighted so the sum equals the full-batch loss); with ``backward``,
        it is called on every chunk loss (manual optimization) and a detached total is returned."""
        hp = self.hparams
        if not chunks:  # every group filtered out: a zero loss that still reaches every parameter (DDP-safe)
            loss = sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
            if backward is not None:
                backward(loss)
            return loss.detach() if backward is not None else loss, {}
        self.model.train()
        tokens, processes = normaliser
        loss_type = "dapo" if tokens is not None else hp.loss_type  # bnpo == dapo over local tokens
        n_rows = sum(len(c["advantages"]) for c in chunks)
        local_tokens = float(sum(c["mask"].sum().item() for c in chunks))
        total_loss, weighted = 0.0, dict.fromkeys(_CLIP_KEYS, 0.0)
        for chunk in chunks:
            logp = completion_logprobs(self.model, chunk["inputs"], chunk["completions"], hp.temperature)
            old = chunk["old_logp"] if chunk["old_logp"] is not None else logp.detach()
            kl = kl_k3(logp, chunk["ref_logp"]) if chunk["ref_logp"] is not None else None
            tis = None if chunk["engine_logp"] is None else truncated_importance_weights(
                old, chunk["engine_logp"], chunk["mask"], hp.importance_sampling_cap)
            loss, stats = policy_loss(
                logp, old, chunk["advantages"], chunk["mask"], loss_type, hp.eps_low, hp.eps_high,
                max(self.max_new_tokens.values()), kl, hp.beta, tokens, processes, is_weights=tis)
            if tokens is None:  # per-sequence means (grpo, dr_grpo): weight by the chunk's share of rows
                loss = loss * (len(chunk["advantages"]) / n_rows)
            if backward is not None:
                backward(loss)
                loss = loss.detach()
            total_loss = total_loss + loss
            share = chunk["mask"].sum().item() / max(local_tokens, 1.0)
            for key, value in stats.items():
                weighted[key] = weighted.get(key, 0.0) + value.item() * share
        return total_loss, {k: v for k, v in weighted.items() if k != "kl" or hp.beta > 0}

    # ----- Lightning hooks ------------------------------------------------------------------------
    def training_step(self, batch: list[dict], batch_idx: int):
        """One rollout batch: generate, score, then one (mu == 1) or mu (manual) policy updates."""
        rollout = self._rollout(batch)
        chunks, normaliser = rollout["chunks"], self._token_normaliser(rollout["chunks"])
        if self.automatic_optimization:
            loss, stats = self._policy_loss(chunks, normaliser)
        else:
            loss, stats = self._manual_updates(chunks, normaliser)
        self._log_rollout(rollout, loss, stats, len(batch))
        self.rollouts_done += 1
        return loss if self.automatic_optimization else None

    def _manual_updates(self, chunks: list[dict], normaliser) -> tuple[torch.Tensor, dict[str, float]]:
        """mu optimizer steps on one rollout batch, with old log-probs cached before the first one.
        A batch whose groups were all filtered still takes (zero-gradient) steps, keeping ranks in lockstep."""
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        with torch.no_grad():
            self.model.train()
            for chunk in chunks:
                chunk["old_logp"] = completion_logprobs(self.model, chunk["inputs"], chunk["completions"],
                                                        self.hparams.temperature)
        losses, sums = [], {}
        for _ in range(self.hparams.mu):
            optimizer.zero_grad()
            loss, stats = self._policy_loss(chunks, normaliser, backward=self.manual_backward)
            self.configure_gradient_clipping(optimizer)
            optimizer.step()
            scheduler.step()
            losses.append(loss)
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value / self.hparams.mu
        return torch.stack(losses).mean(), sums

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip by the Trainer's ``gradient_clip_val`` when set, else by ``max_grad_norm`` (both modes)."""
        clip = gradient_clip_val if gradient_clip_val is not None else self.hparams.max_grad_norm
        if clip:
            self.clip_gradients(optimizer, gradient_clip_val=clip,
                                gradient_clip_algorithm=gradient_clip_algorithm or "norm")

    def configure_optimizers(self):
        """AdamW over the policy's trainable parameters (vision tower at ``lr * vision_lr_scale``) with
        warmup + cosine/constant schedule."""
        total = self.trainer.estimated_stepping_batches
        if not self.automatic_optimization and self.trainer.max_steps == -1:
            total = total * self.hparams.mu  # epoch-based runs: mu optimizer steps per batch
        hp = self.hparams
        return build_optimizer_and_scheduler(
            param_groups(self.model, hp.lr, hp.vision_lr_scale, tuple(hp.vision_patterns)), lr=hp.lr,
            weight_decay=hp.weight_decay, warmup_ratio=hp.warmup_ratio, total_steps=total, scheduler=hp.scheduler)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the dual-mode counter; drop the frozen reference weights (rebuilt from its source)."""
        checkpoint["grpo_prompts_seen"] = self.prompts_seen
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith("ref_model.")]:
            del state[key]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the dual-mode counter and re-insert the current reference weights for strict loading."""
        self.prompts_seen = checkpoint.get("grpo_prompts_seen", 0)
        if self.ref_model is not None:
            checkpoint.setdefault("state_dict", {}).update(
                {f"ref_model.{k}": v for k, v in self.ref_model.state_dict().items()})

    # ----- logging ----------------------------------------------------------------------------------
    @property
    def per_mode_metrics(self) -> bool:
        """Log ``modes/<mode>/*`` for the last batch: dual mode, or curated rows that mixed modes."""
        return self.hparams.mode == "dual" or len(self.last_modes) > 1

    def _log_rollout(self, rollout: dict, loss: torch.Tensor, stats: dict, batch_size: int) -> None:
        """Log TRL-named metrics and, every ``log_completions_every`` rollouts, a completions table."""
        hp = self.hparams
        metrics = rollout_metrics(rollout, self.reward_names, hp.num_generations, hp.dynamic_filter,
                                  dual=self.per_mode_metrics)
        metrics.update({"loss": loss.detach().item(), **stats})
        reward = metrics.pop("reward")
        prefixed = {f"{hp.metric_prefix}{k}": float(v) for k, v in metrics.items()}
        self.log_dict(prefixed, on_step=True, on_epoch=False, batch_size=batch_size)
        self.log(f"{hp.metric_prefix}reward", reward, prog_bar=True, on_step=True, on_epoch=False,
                 batch_size=batch_size)
        if hp.log_completions_every and self.rollouts_done % hp.log_completions_every == 0:
            self._log_completions(rollout)

    def _log_completions(self, rollout: dict) -> None:
        """Keep, print (rich) and send to table-capable loggers a few completions with their rewards."""
        columns, rows = completion_rows(rollout, self.reward_names, self.global_step,
                                        self.hparams.log_completions_rows)
        self.last_completions = [dict(zip(columns, row)) for row in rows]
        if not self.trainer.is_global_zero:
            return
        print_completions(columns, rows, title=f"GRPO completions (step {self.global_step})")
        for logger in self.loggers:
            method = getattr(logger, "log_table", None) or getattr(logger, "log_text", None)
            if method is not None:
                method(key="completions", columns=columns, data=[[str(v) for v in row] for row in rows])
