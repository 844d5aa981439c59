"""Batched generation of completions and log-probabilities of prompt + completion sequences.

Shared by GRPO rollouts, evaluation and RAP scoring. Conventions:

* prompts are encoded one sample at a time (`encode_prompt`, never truncated) and left-padded per
  micro-batch, so every completion starts at the same column;
* generation runs in eval mode under ``torch.no_grad`` with ``use_cache=True`` (gradient
  checkpointing is inactive in eval mode) and restores the previous train/eval mode afterwards;
* a completion keeps its tokens up to and including the first EOS; one without EOS within
  ``max_new_tokens`` is ``truncated``; vision placeholder tokens are suppressed during generation
  (an emitted ``<|image_pad|>`` would break the image-feature count when the sequence is re-scored);
* text is decoded with ``skip_special_tokens=False`` from the tokens before EOS, because some
  tokenizers (the tiny one included) register ``<think>``/``<answer>`` as special tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Sequence

import torch
from torch import Tensor

from dualtune.data.encoding import encode_generation_batch
from dualtune.training.grpo_math import token_logprobs

# Processor outputs aligned with the token sequence; everything else (pixel_values, image_grid_thw,
# video tensors, ...) is per image and concatenated in row order.
PER_TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")
_VISION_TOKEN_ATTRS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")


def encode_prompt(processor, sample: dict, mode: str, templates=None) -> dict[str, Tensor]:
    """Encode one sample's chat prompt (+ images): per-token tensors are 1-D, image tensors as returned."""
    enc = encode_generation_batch(processor, [sample], mode, templates)
    return {k: (v[0] if k in PER_TOKEN_KEYS else v) for k, v in enc.items() if isinstance(v, Tensor)}


def _pad_rows(rows: Sequence[Tensor], value: int, side: str) -> Tensor:
    """Stack 1-D tensors, padding them to a common length on ``side`` ("left" or "right")."""
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), value, dtype=rows[0].dtype if rows else torch.long)
    for i, row in enumerate(rows):
        if len(row) == 0:
            continue
        if side == "left":
            out[i, width - len(row):] = row
        else:
            out[i, : len(row)] = row
    return out


def collate_prompts(prompts: Sequence[dict], pad_token_id: int) -> dict[str, Tensor]:
    """Left-pad encoded prompts into one batch; image tensors are concatenated in row order."""
    batch = {}
    for key in dict.fromkeys(k for p in prompts for k in p):
        if key in PER_TOKEN_KEYS:
            # A text-only prompt may lack e.g. token types: those are all zero for it.
            values = [p.get(key, torch.zeros_like(p["input_ids"])) for p in prompts]
            batch[key] = _pad_rows(values, pad_token_id if key == "input_ids" else 0, "left")
        else:  # image tensors exist only for prompts with images
            batch[key] = torch.cat([p[key] for p in prompts if key in p])
    return batch


def eos_token_ids(model, processor) -> list[int]:
    """All ids that end a completion: the generation config's EOS id(s) and the tokenizer's EOS."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = configured if isinstance(configured, (list, tuple)) else [configured]
    ids = [*ids, processor.tokenizer.eos_token_id]
    return sorted({int(i) for i in ids if i is not None})


def suppressed_token_ids(model) -> list[int]:
    """Vision placeholder ids (image/video pad, vision start/end) that generation must never emit."""
    config = model.config
    return sorted({int(getattr(config, attr)) for attr in _VISION_TOKEN_ATTRS
                   if getattr(config, attr, None) is not None})


def completion_mask(new_tokens: Tensor, eos_ids: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Mask [B, C] that is 1 up to and including the first EOS, and ``truncated`` [B] (no EOS at all)."""
    is_eos = torch.isin(new_tokens, torch.tensor(list(eos_ids), device=new_tokens.device))
    has_eos = is_eos.any(dim=1)
    first_eos = torch.where(has_eos, is_eos.int().argmax(dim=1), new_tokens.shape[1])
    positions = torch.arange(new_tokens.shape[1], device=new_tokens.device).unsqueeze(0)
    mask = positions <= first_eos.unsqueeze(1)
    return mask.long(), ~has_eos


def _generation_kwargs(model, processor, max_new_tokens, do_sample, temperature, top_p) -> dict:
    """Explicit sampling settings, overriding checkpoint defaults (e.g. Qwen's top_k=1, repetition_penalty)."""
    kwargs = dict(max_new_tokens=int(max_new_tokens), do_sample=do_sample, use_cache=True,
                  pad_token_id=processor.tokenizer.pad_token_id, eos_token_id=eos_token_ids(model, processor),
                  suppress_tokens=suppressed_token_ids(model) or None, repetition_penalty=1.0)
    if do_sample:
        kwargs.update(temperature=float(temperature), top_p=float(top_p), top_k=0)
    return kwargs


@torch.no_grad()
def generate_completions(model, processor, samples: Sequence[dict], mode: str | Sequence[str],
                         num_generations: int = 1, max_new_tokens: int | dict = 256, temperature: float = 1.0,
                         top_p: float = 1.0, do_sample: bool = True, micro_batch_size: int = 8, templates=None,
                         return_inputs: bool = False) -> list[dict]:
    """Generate ``num_generations`` completions per sample, ``micro_batch_size`` sequences at a time.

    ``mode`` is one answer mode or one per sample; ``max_new_tokens`` an int or a per-mode dict.
    ``do_sample=False`` decodes greedily. Returns one dict per completion, sample-major (the G
    completions of sample i are contiguous): ``sample_id``, ``sample_index``, ``mode``, ``prompt_ids``
    (1-D, unpadded), ``completion_ids`` (1-D, up to and including EOS), ``completion_text`` (before
    EOS), ``truncated``; with ``return_inputs=True`` also ``prompt_inputs`` (the encoded prompt with
    its image tensors, shared by the G completions of a sample) for re-scoring.
    """
    modes = [mode] * len(samples) if isinstance(mode, str) else list(mode)
    if len(modes) != len(samples):
        raise ValueError(f"{len(modes)} modes for {len(samples)} samples")
    prompts = [encode_prompt(processor, s, m, templates) for s, m in zip(samples, modes)]
    eos_ids = eos_token_ids(model, processor)
    rows = [(i, g) for i in range(len(samples)) for g in range(num_generations)]
    results: dict[tuple[int, int], dict] = {}

    was_training = model.training
    model.eval()
    try:
        # One mode at a time, because each mode has its own generation budget.
        for current in dict.fromkeys(modes):
            budget = max_new_tokens[current] if isinstance(max_new_tokens, Mapping) else max_new_tokens
            kwargs = _generation_kwargs(model, processor, budget, do_sample, temperature, top_p)
            mode_rows = [r for r in rows if modes[r[0]] == current]
            for start in range(0, len(mode_rows), max(1, micro_batch_size)):
                chunk = mode_rows[start: start + max(1, micro_batch_size)]
                batch = collate_prompts([prompts[i] for i, _ in chunk], processor.tokenizer.pad_token_id)
                batch = {k: v.to(model.device) for k, v in batch.items()}
                new_tokens = model.generate(**batch, **kwargs)[:, batch["input_ids"].shape[1]:].cpu()
                mask, truncated = completion_mask(new_tokens, eos_ids)
                for row, (i, g) in enumerate(chunk):
                    ids = new_tokens[row][mask[row].bool()]
                    text_ids = ids if truncated[row] else ids[:-1]
                    results[(i, g)] = {
                        "sample_id": samples[i].get("id"), "sample_index": i, "mode": current,
                        "prompt_ids": prompts[i]["input_ids"], "completion_ids": ids,
                        "completion_text": processor.tokenizer.decode(text_ids, skip_special_tokens=False),
                        "truncated": bool(truncated[row]),
                    }
                    if return_inputs:
                        results[(i, g)]["prompt_inputs"] = prompts[i]
    finally:
        model.train(was_training)
    return [results[r] for r in rows]


def build_policy_batch(prompt_inputs: Sequence[dict], completion_ids: Sequence[Tensor],
                       pad_token_id: int) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """Model inputs for left-padded prompts followed by right-padded completions.

    Returns ``(inputs, completions [B, C], mask [B, C])``: per-token keys are the prompt part
    left-padded and extended over the completion (attention 1 on real completion tokens, token
    types 0), image tensors are concatenated row by row (repeat a sample's prompt dict for each of its
    completions), and ``completions`` is padded with ``pad_token_id`` where ``mask`` is 0.
    """
    prompts = collate_prompts(prompt_inputs, pad_token_id)
    completions = _pad_rows([c.long() for c in completion_ids], pad_token_id, "right")
    mask = _pad_rows([torch.ones_like(c, dtype=torch.long) for c in completion_ids], 0, "right")
    inputs = {}
    for key, value in prompts.items():
        if key == "input_ids":
            inputs[key] = torch.cat([value, completions], dim=1)
        elif key == "attention_mask":
            inputs[key] = torch.cat([value, mask.to(value.dtype)], dim=1)
        elif key in PER_TOKEN_KEYS:
            inputs[key] = torch.cat([value, torch.zeros_like(completions, dtype=value.dtype)], dim=1)
        else:
            inputs[key] = value
    return inputs, completions, mask


def completion_logprobs(model, inputs: dict[str, Tensor], completions: Tensor, temperature: float = 1.0) -> Tensor:
    """Per-token log-probs [B, C] of ``completions`` (the last C columns of ``inputs["input_ids"]``).

    Logits are divided by ``temperature`` so that they describe the sampling distribution; only the
    last C + 1 positions are materialised (``logits_to_keep``). Padding positions hold garbage: mask them.
    """
    width = completions.shape[1]
    logits = model(**inputs, use_cache=False, logits_to_keep=width + 1).logits[:, :-1]
    return token_logprobs(logits / temperature, completions)
