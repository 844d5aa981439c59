"""Attention extraction for ACE: a teacher-forced forward pass over prompt + one rollout.

For each sample: encode the multimodal prompt exactly as generation did, append the token ids
of one multimodal rollout (``AceSettings.rollout``), run the model once with eager attention
(flash / SDPA kernels never materialise the weights) and take the chosen decoder layer's
self-attention (default: the final layer), aggregated over heads. ``selection.ace.ace_score``
then scores the columns of the generated *reasoning* tokens (inside ``<think>...</think>``;
all generated tokens when the rollout has no think block, or with ``span="generated"``).

Two capture paths give identical weights (tested): ``hook`` (default) keeps only the chosen
layer — a forward hook on its attention module, head-aggregated on the spot, so memory is
O(B * L^2) instead of O(layers * heads * B * L^2) — and ``output_attentions`` asks transformers
for every layer and picks one (the textbook path; heavy for 7B models and long rollouts).

Window / minimum rows: see ``selection/ace.py`` and ``scoring/README.md``; the defaults
``window = min_rows = 8`` score every column over exactly 8 later tokens.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import torch

from dualtune.selection.ace import AceResult, ace_score

SPANS = ("reasoning", "generated")
CAPTURES = ("hook", "output_attentions")


@dataclass(frozen=True)
class AceSettings:
    """What an ACE score depends on (lambda_a is a selection threshold and lives elsewhere)."""

    layer: int = -1
    head_agg: str = "mean"
    sigma: float = 2.0
    window: int | None = 8
    min_rows: int = 8
    renormalize: bool = False
    span: str = "reasoning"
    rollout: int | str = 0  # rollout index among the M multimodal ones, or "first_correct"
    capture: str = "hook"
    micro_batch_size: int = 4

    def provenance(self) -> dict:
        """Fields that change a score (the micro-batch size does not)."""
        out = asdict(self)
        out.pop("micro_batch_size")
        return out


def pick_rollout(rollouts: list[dict], which) -> int:
    """Index of the rollout ACE scores: an int index, or ``"first_correct"`` (else index 0)."""
    if which == "first_correct":
        return next((k for k, r in enumerate(rollouts) if r.get("correct")), 0)
    index = int(which)
    if not 0 <= index < len(rollouts):
        raise ValueError(f"ace.rollout={which} but only {len(rollouts)} rollouts")
    return index


def _prefix_chars(tokenizer, ids, k: int) -> int:
    """Length of the text decoded from the first ``k`` tokens."""
    return len(tokenizer.decode(ids[:k], skip_special_tokens=False))


def _first_covering(tokenizer, ids, char_pos: int) -> int:
    """Smallest k such that the first k tokens decode to more than ``char_pos`` characters."""
    lo, hi = 0, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if _prefix_chars(tokenizer, ids, mid) > char_pos:
            hi = mid
        else:
            lo = mid + 1
    return lo


def reasoning_span(tokenizer, completion_ids, span: str = "reasoning", eos_ids=()) -> tuple[int, int]:
    """``[start, end)`` token indices of the scored span inside a completion.

    ``generated``: every token but a trailing EOS. ``reasoning``: the tokens strictly between
    ``<think>`` and ``</think>`` (a token straddling a tag boundary counts as part of the tag);
    an unclosed thought runs to the end; no ``<think>`` at all falls back to ``generated``.
    """
    if span not in SPANS:
        raise ValueError(f"span must be one of {SPANS}, got {span!r}")
    ids = [int(i) for i in completion_ids]
    end = len(ids) - 1 if ids and ids[-1] in set(eos_ids) else len(ids)
    ids = ids[:end]
    if span == "generated":
        return 0, end
    text = tokenizer.decode(ids, skip_special_tokens=False)
    open_at = text.find("<think>")
    if open_at < 0:
        return 0, end
    body = open_at + len("<think>")
    start = _first_covering(tokenizer, ids, body - 1)  # tokens [0, start) cover the opening tag
    close_at = text.find("</think>", body)
    stop = end if close_at < 0 else _first_covering(tokenizer, ids, close_at) - 1
    return start, max(start, stop)


def decoder_layers(model):
    """The language model's decoder layers (a ModuleList), for the common VLM layouts."""
    for path in ("model.language_model.layers", "language_model.model.layers", "language_model.layers",
                 "model.layers"):
        obj = model
        for attr in path.split("."):
            obj = getattr(obj, attr, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise ValueError(f"cannot locate the decoder layers of {type(model).__name__}")


@contextlib.contextmanager
def eager_attention(model):
    """Temporarily switch the model (and its sub-models) to eager attention."""
    config = model.config
    previous = {"": config._attn_implementation}
    for key in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, key, None)
        if sub is not None and getattr(sub, "_attn_implementation", None):
            previous[key] = sub._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def _aggregate(weights: torch.Tensor, head_agg: str) -> torch.Tensor:
    """``[B, H, L, L]`` -> ``[B, L, L]`` float32 on CPU (mean or max over heads)."""
    agg = weights.float().mean(dim=1) if head_agg == "mean" else weights.float().amax(dim=1)
    return agg.cpu()


@torch.no_grad()
def layer_attention(model, inputs: dict, layer: int = -1, head_agg: str = "mean", capture: str = "hook"):
    """Head-aggregated self-attention ``[B, L, L]`` of decoder layer ``layer`` for ``inputs``."""
    if capture not in CAPTURES:
        raise ValueError(f"capture must be one of {CAPTURES}, got {capture!r}")
    layers = decoder_layers(model)
    index = layer if layer >= 0 else len(layers) + layer
    grabbed = {}

    def hook(_module, _args, output):
        """Keep the head-aggregated weights (output[1]) of the chosen layer."""
        grabbed["attn"] = _aggregate(output[1], head_agg)

    with eager_attention(model):
        if capture == "output_attentions":
            out = model(**inputs, use_cache=False, output_attentions=True, logits_to_keep=1)
            return _aggregate(out.attentions[index], head_agg)
        handle = layers[index].self_attn.register_forward_hook(hook)
        try:
            model(**inputs, use_cache=False, logits_to_keep=1)
        finally:
            handle.remove()
    if grabbed.get("attn") is None:
        raise RuntimeError("the attention hook captured no weights (is the implementation eager?)")
    return grabbed["attn"]


def ace_for_rollouts(model, processor, items: list[tuple[dict, list]], mode: str, settings: AceSettings,
                     templates=None, lam_a: float = 0.1) -> list[AceResult]:
    """ACE result per ``(sample, completion_ids)`` item (multimodal prompt + that completion).

    Items are run ``settings.micro_batch_size`` at a time (left-padded prompts, right-padded
    completions). A span shorter than ``min_rows`` yields psi = 0 (no scored column).
    """
    from dualtune.training.rollout import build_policy_batch, encode_prompt, eos_token_ids

    eos = eos_token_ids(model, processor)
    pad = processor.tokenizer.pad_token_id
    was_training = model.training
    model.eval()
    results: list[AceResult] = []
    try:
        for begin in range(0, len(items), max(1, settings.micro_batch_size)):
            chunk = items[begin: begin + max(1, settings.micro_batch_size)]
            prompts = [encode_prompt(processor, s, mode, templates) for s, _ in chunk]
            completions = [torch.as_tensor([int(t) for t in c] or [pad], dtype=torch.long) for _, c in chunk]
            inputs, _, _ = build_policy_batch(prompts, completions, pad)
            inputs = {k: v.to(model.device) for k, v in inputs.items()}
            attn = layer_attention(model, inputs, settings.layer, settings.head_agg, settings.capture)
            width = max(len(p["input_ids"]) for p in prompts)
            for row, (_, completion) in enumerate(chunk):
                start, stop = reasoning_span(processor.tokenizer, completion, settings.span, eos)
                if stop - start < 1:
                    results.append(AceResult(-math.inf, 0.0, None, 0, 0, False))
                    continue
                results.append(ace_score(attn[row], width + start, width + stop, sigma=settings.sigma, lam_a=lam_a,
                                         head_agg="mean", min_rows=settings.min_rows, window=settings.window,
                                         renormalize=settings.renormalize))
    finally:
        model.train(was_training)
    return results
