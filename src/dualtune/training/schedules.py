"""Optimiser + learning-rate schedule shared by the SFT and GRPO modules."""

from __future__ import annotations

import math

import torch


def warmup_cosine_lambda(warmup_steps: int, total_steps: int, kind: str = "cosine"):
    """LR multiplier: linear warmup to 1, then cosine decay to 0 (``kind="cosine"``) or constant."""

    def fn(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return fn


def param_groups(model, lr: float, vision_lr_scale: float = 1.0, vision_patterns=("visual.",)) -> list[dict]:
    """Trainable parameters split into LM and vision-tower groups; the vision group gets ``lr * vision_lr_scale``.

    A full learning rate on a randomly initialised ViT collapses its features (every cell maps to nearly
    the same token), so the tiny model's vision tower trains 10x slower by default.
    """
    vision, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (vision if any(p in name for p in vision_patterns) else rest).append(param)
    groups = [{"params": rest, "lr": lr}]
    if vision:
        groups.append({"params": vision, "lr": lr * vision_lr_scale})
    return groups


def build_optimizer_and_scheduler(params, lr, weight_decay, warmup_ratio, total_steps, scheduler="cosine"):
    """AdamW + a per-step LambdaLR, in Lightning's ``configure_optimizers`` return format.

    ``params`` is an iterable of tensors or of param-group dicts (each may carry its own ``lr``)."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = max(1, int(total_steps if math.isfinite(total_steps) else 1))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine_lambda(int(warmup_ratio * total), total, scheduler))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
