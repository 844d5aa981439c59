"""Pure-torch GRPO math: group advantages, clipped policy loss, k3 KL, token log-probs.

Definitions follow TRL's ``GRPOTrainer`` (``_generate_and_score_completions`` / ``_compute_loss``)
and verl's ``core_algos`` so that hyper-parameters and logged metrics transfer:

* advantages: ``A = r - mean_group(r)`` (or the RLOO leave-one-out baseline), optionally divided by
  the group std, the batch std, or nothing (Dr. GRPO's ``scale_rewards="none"``);
* per-token ratio ``rho = exp(logp - old_logp)``; per-token loss
  ``-min(rho * A, clamp(rho, 1 - eps_low, 1 + eps_high) * A)`` (+ ``beta * kl``);
* aggregation by ``loss_type`` in {"grpo", "dapo", "dr_grpo", "bnpo"}.

Everything here is model-free and differentiable, so it is unit-tested on hand-computed numbers.
One deliberate difference from TRL: the std epsilon is 1e-6 (TRL uses 1e-4).
"""

from __future__ import annotations

import torch
from torch import Tensor

SCALES = ("group", "batch", "none")
ESTIMATORS = ("grpo", "rloo")
LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "bnpo")
STD_EPS = 1e-6


def _grouped(rewards: Tensor, group_size: int) -> Tensor:
    """Validate a flat group-contiguous reward vector and reshape it to [num_groups, group_size]."""
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [N], got shape {tuple(rewards.shape)}")
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (std/baseline need two samples), got {group_size}")
    if rewards.numel() == 0 or rewards.numel() % group_size != 0:
        raise ValueError(
            f"number of rewards ({rewards.numel()}) must be a positive multiple of group_size ({group_size})"
        )
    grouped = rewards.reshape(-1, group_size)
    return grouped if grouped.is_floating_point() else grouped.float()


def _zero_std_groups(grouped: Tensor) -> Tensor:
    """Boolean [num_groups]: groups whose rewards have (numerically) zero spread, TRL's ``is_std_zero``."""
    std = grouped.std(dim=1)
    all_equal = grouped.amax(dim=1) == grouped.amin(dim=1)
    return all_equal | torch.isclose(std, torch.zeros_like(std))


def default_scale(estimator: str) -> str:
    """The reward scaling an estimator uses when ``scale_rewards`` is not set: "group" for GRPO (TRL's
    default), "none" for RLOO (verl, EasyR1 and TRL's RLOO use the plain leave-one-out advantage)."""
    return "none" if estimator == "rloo" else "group"


def group_advantages(
    rewards: Tensor, group_size: int, scale: str | None = "group", estimator: str = "grpo"
) -> Tensor:
    """Group-relative advantages for group-contiguous rewards ``[N = num_groups * group_size]``.

    estimator: "grpo" (``r - mean_group``) or "rloo" (``r_i - mean of the other G-1 rewards``,
    i.e. ``G/(G-1) * (r_i - mean_group)``).
    scale: "group" (divide by the unbiased group std + 1e-6), "batch" (by the unbiased std of all N
    rewards + 1e-6), "none", or None = the estimator's default (`default_scale`). Groups whose rewards
    are all equal get exactly zero advantages.
    """
    scale = default_scale(estimator) if scale is None else scale
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    grouped = _grouped(rewards, group_size)

    # Centre each group on its own mean; RLOO rescales the deviation to a leave-one-out baseline.
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if estimator == "rloo":
        centred = centred * (group_size / (group_size - 1))

    # Optional std scaling (torch's default unbiased std, as in TRL).
    if scale == "group":
        centred = centred / (grouped.std(dim=1, keepdim=True) + STD_EPS)
    elif scale == "batch":
        centred = centred / (grouped.reshape(-1).std() + STD_EPS)

    # A group with no reward spread carries no signal: force exact zeros (no float residue of the mean).
    centred = torch.where(_zero_std_groups(grouped).unsqueeze(1), torch.zeros_like(centred), centred)
    return centred.reshape(-1)


def dual_modes(first_index: int, count: int) -> list[str]:
    """Answer modes of ``count`` prompts numbered from ``first_index``: cot for even numbers, direct for odd."""
    return ["cot" if (first_index + k) % 2 == 0 else "direct" for k in range(count)]


def kept_group_rows(rewards: Tensor, group_size: int) -> Tensor:
    """Indices of rows whose group has reward spread (DAPO dynamic filter drops all-equal groups)."""
    grouped = rewards.reshape(-1, group_size)
    informative = grouped.amax(dim=1) > grouped.amin(dim=1)
    return torch.nonzero(informative.repeat_interleave(group_size)).flatten()


def reward_stats(rewards: Tensor, group_size: int) -> dict[str, float]:
    """TRL-named reward metrics: "reward" (mean), "reward_std" (mean of per-group unbiased std),
    "frac_reward_zero_std" (fraction of groups whose rewards are all equal)."""
    grouped = _grouped(rewards, group_size)
    return {
        "reward": grouped.mean().item(),
        "reward_std": grouped.std(dim=1).mean().item(),
        "frac_reward_zero_std": _zero_std_groups(grouped).float().mean().item(),
    }


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 estimator of KL(pi || ref): ``exp(ref - logp) - (ref - logp) - 1`` (always >= 0)."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def token_logprobs(logits: Tensor, labels: Tensor) -> Tensor:
    """Log-probability of each label under ``logits``: [B, T, V], [B, T] -> [B, T] (float32).

    The caller aligns positions (logits at t predict labels at t, i.e. already shifted); labels must
    be valid vocabulary ids (mask padding afterwards, do not pass -100).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} disagree")
    index = labels.long().unsqueeze(-1)
    if logits.dtype in (torch.float32, torch.float64):
        # logsumexp avoids materialising a full [B, T, V] log-softmax tensor.
        picked = logits.gather(-1, index).squeeze(-1)
        return (picked - torch.logsumexp(logits, dim=-1)).float()
    # Low precision (bf16/fp16): upcast one sequence at a time to bound peak memory.
    rows = [
        torch.log_softmax(row.float(), dim=-1).gather(-1, row_index).squeeze(-1)
        for row, row_index in zip(logits, index)
    ]
    return torch.stack(rows)


def truncated_importance_weights(old_logp: Tensor, engine_logp: Tensor, mask: Tensor, cap: float = 2.0) -> Tensor:
    """Truncated importance-sampling weights [B, T] for completions sampled by an inference engine (vLLM) whose
    log-probs differ from the trainer's: ``min(exp(old_logp - engine_logp), cap)`` on completion tokens (``mask``),
    1 on padding. TRL's ``vllm_importance_sampling_correction`` / ``vllm_importance_sampling_cap`` (truncated IS,
    Yao et al. 2025): the trainer's old policy over the policy that actually sampled. Detached (a constant)."""
    if cap <= 0:
        raise ValueError(f"cap must be > 0, got {cap}")
    if old_logp.shape != engine_logp.shape or mask.shape != old_logp.shape:
        raise ValueError(f"old_logp, engine_logp, mask must share a [B, T] shape, got {tuple(old_logp.shape)}, "
                         f"{tuple(engine_logp.shape)}, {tuple(mask.shape)}")
    active = mask.bool()
    log_ratio = torch.where(active, old_logp.detach() - engine_logp.detach().to(old_logp.dtype),
                            torch.zeros_like(old_logp))
    return torch.clamp(torch.exp(log_ratio), max=float(cap))


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over positions where ``mask`` is true (0 when the mask is empty)."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    loss_type: str = "grpo",
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    max_completion_length: int | None = None,
    kl: Tensor | None = None,
    beta: float = 0.0,
    global_active_tokens: float | Tensor | None = None,
    num_processes: int = 1,
    is_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped GRPO surrogate loss, aggregated per ``loss_type``; returns ``(loss, stats)``.

    logp / old_logp / mask: [B, T] (mask is 1 on completion tokens); advantages: [B]. ``old_logp``
    is treated as a constant (detached). If ``beta > 0`` and ``kl`` ([B, T]) is given, ``beta * kl``
    is added per token before aggregation; ``is_weights`` ([B, T], `truncated_importance_weights`) multiply the
    clipped policy-gradient term (not the KL term) per token, as TRL's vLLM correction does. Aggregations:

    * "grpo": masked token mean per sequence, then mean over the B sequences (length-biased);
    * "bnpo": sum over masked tokens / masked tokens in this (local) batch;
    * "dapo": sum over masked tokens / (``global_active_tokens`` / ``num_processes``), i.e. TRL's
      ``num_items_in_batch`` normaliser; without ``global_active_tokens`` it equals "bnpo";
    * "dr_grpo": sum over masked tokens / (B * max_completion_length), default ``T``.

    stats (detached scalars): "clip_ratio/low_mean" (rho < 1-eps_low with A < 0),
    "clip_ratio/high_mean" (rho > 1+eps_high with A > 0), "clip_ratio/region_mean" (either), each a
    masked token mean as in TRL, "kl" (masked token mean) whenever ``kl`` is given, and
    "sampling/importance_sampling_ratio/mean" (masked token mean) whenever ``is_weights`` is given.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    if logp.dim() != 2 or old_logp.shape != logp.shape or mask.shape != logp.shape:
        raise ValueError(
            f"logp, old_logp, mask must share a [B, T] shape, got {tuple(logp.shape)}, "
            f"{tuple(old_logp.shape)}, {tuple(mask.shape)}"
        )
    if advantages.shape != logp.shape[:1]:
        raise ValueError(f"advantages must be [B]={logp.shape[0]}, got {tuple(advantages.shape)}")
    for extra, label in ((kl, "kl"), (is_weights, "is_weights")):
        if extra is not None and extra.shape != logp.shape:
            raise ValueError(f"{label} must be [B, T] like logp, got {tuple(extra.shape)}")
    batch_size, seq_len = logp.shape
    active = mask.bool()
    weights = active.to(logp.dtype)
    adv = advantages.detach().to(logp.dtype).unsqueeze(1)

    # Importance ratio per token; padding positions are pinned to log-ratio 0 so that -inf/garbage
    # log-probs there can never leak NaN into the loss or its gradient.
    log_ratio = torch.where(active, logp - old_logp.detach(), torch.zeros_like(logp))
    ratio = torch.exp(log_ratio)
    clipped_ratio = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    per_token = -torch.min(ratio * adv, clipped_ratio * adv)
    if is_weights is not None:
        per_token = per_token * is_weights.detach().to(per_token.dtype)
    if kl is not None and beta > 0:
        per_token = per_token + beta * torch.where(active, kl, torch.zeros_like(kl))

    # Aggregate the masked per-token losses.
    # bnpo vs dapo: in TRL "bnpo" divides by the active tokens of the *local* micro-batch, while
    # "dapo" divides by the *global* active-token count across processes (num_items_in_batch) divided
    # by the number of processes, so DDP gradient averaging yields a true global token mean. With one
    # process and no global count they coincide.
    masked_sum = (per_token * weights).sum()
    if loss_type == "grpo":
        per_seq = (per_token * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        loss = per_seq.mean()
    elif loss_type == "bnpo" or (loss_type == "dapo" and global_active_tokens is None):
        loss = masked_sum / weights.sum().clamp(min=1.0)
    elif loss_type == "dapo":
        normaliser = torch.as_tensor(global_active_tokens, dtype=logp.dtype, device=logp.device)
        loss = masked_sum / (normaliser / num_processes).clamp(min=1.0)
    else:  # dr_grpo: constant normaliser removes the length bias
        length = seq_len if max_completion_length is None else max_completion_length
        loss = masked_sum / (batch_size * length)

    # TRL-style clipping diagnostics: only tokens where the clip actually changed the objective.
    with torch.no_grad():
        low = (ratio < 1.0 - eps_low) & (adv < 0)
        high = (ratio > 1.0 + eps_high) & (adv > 0)
        stats = {
            "clip_ratio/low_mean": _masked_mean(low.float(), weights.float()),
            "clip_ratio/high_mean": _masked_mean(high.float(), weights.float()),
            "clip_ratio/region_mean": _masked_mean((low | high).float(), weights.float()),
        }
        if kl is not None:
            stats["kl"] = _masked_mean(torch.where(active, kl, torch.zeros_like(kl)).float(), weights.float())
        if is_weights is not None:
            stats["sampling/importance_sampling_ratio/mean"] = _masked_mean(is_weights.float(), weights.float())
    return loss, stats
