"""Turn schema samples into model inputs: chat prompt + images (+ target with prompt-masked labels).

Invariants: image placeholder tokens are never truncated (an over-long example is skipped and counted,
or raises when ``on_overlong="raise"``), and every image's placeholder count is checked against the
processor's grid.
"""

from __future__ import annotations

import logging
from collections import Counter

import torch

from dualtune.data.video import sample_videos, video_processor_kwargs
from dualtune.prompting.templates import prompt_layout, target_text
from dualtune.schema import decode_image

log = logging.getLogger(__name__)
IGNORE_INDEX = -100
# Processor outputs aligned with the token sequence; every other tensor a processor returns is a vision input.
TOKEN_TYPE_KEYS = ("mm_token_type_ids", "token_type_ids")
PER_TOKEN_KEYS = ("input_ids", "attention_mask", *TOKEN_TYPE_KEYS)


class OverlongError(ValueError):
    """An example is longer than the configured limit; truncating it would cut image tokens or the target."""


def prompt_and_images(processor, sample: dict, mode: str, templates=None, text_only: bool = False):
    """``(prompt, images)``: the chat-formatted prompt (ending with the assistant header) for ``sample`` in
    ``mode`` and its images in placeholder order (`<image k>` markers place them inside the text), decoded to
    PIL images here, at use (loaded rows hold lazy references: `dualtune.schema.decode_image`)."""
    messages, images = prompt_layout(sample, mode, templates, num_images=0 if text_only else None)
    images = [decode_image(image) for image in images]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), images


def prompt_string(processor, sample: dict, mode: str, templates=None, text_only: bool = False) -> str:
    """The chat-formatted prompt (ending with the assistant header) for ``sample`` in ``mode``."""
    return prompt_and_images(processor, sample, mode, templates, text_only)[0]


def expected_image_tokens(processor, enc) -> int | None:
    """Image placeholder tokens the vision inputs of ``enc`` need: Qwen-VL's grids (t·h·w / merge² per
    image), or InternVL's tiles (``image_seq_length`` tokens per tile of ``pixel_values``, video frames
    included: they are tiles too); None when the processor follows neither rule or there is no image."""
    grid_thw = enc.get("image_grid_thw")
    if grid_thw is not None:
        merge = getattr(processor.image_processor, "merge_size", 2)
        return int((grid_thw.prod(-1) // (merge**2)).sum())
    from transformers import InternVLProcessor

    if isinstance(processor, InternVLProcessor) and enc.get("pixel_values") is not None:
        return int(enc["pixel_values"].shape[0]) * int(processor.image_seq_length)
    return None


def _check_image_tokens(processor, input_ids: torch.Tensor, enc) -> None:
    """Raise if the number of image placeholder tokens differs from what the vision inputs need (a prompt cut
    inside its image tokens, or a processor whose expansion disagrees with the model's features)."""
    expected = expected_image_tokens(processor, enc)
    if expected is None:
        return
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    found = int((input_ids == image_id).sum())
    if found != expected:
        raise ValueError(f"image token mismatch: {found} placeholders for {expected} image features")


def _check_video_tokens(processor, input_ids: torch.Tensor, grid_thw) -> None:
    """Raise if the number of video placeholder tokens differs from what the video grids need."""
    if grid_thw is None:
        return
    merge = getattr(processor.video_processor, "merge_size", 2)
    expected = int((grid_thw.prod(-1) // (merge**2)).sum())
    found = int((input_ids == processor.tokenizer.convert_tokens_to_ids(processor.video_token)).sum())
    if found != expected:
        raise ValueError(f"video token mismatch: {found} placeholders for {expected} video features")


def encode_train_example(processor, sample: dict, mode: str, templates=None, max_length: int = 1024) -> dict:
    """Encode prompt + target; labels are -100 on the prompt so the loss covers target tokens only."""
    prompt, images = prompt_and_images(processor, sample, mode, templates)
    enc = processor(text=[prompt], images=images or None, return_tensors="pt",
                    **video_processor_kwargs(sample_videos(sample)))
    prompt_ids = enc["input_ids"][0]
    _check_image_tokens(processor, prompt_ids, enc)
    _check_video_tokens(processor, prompt_ids, enc.get("video_grid_thw"))
    eos = processor.tokenizer.eos_token
    target_ids = processor.tokenizer(target_text(sample, mode) + eos, add_special_tokens=False,
                                     return_tensors="pt")["input_ids"][0]
    total = len(prompt_ids) + len(target_ids)
    if total > max_length:
        raise OverlongError(f"sample {sample.get('id')!r} ({mode}) has {total} tokens > max_length {max_length}")
    input_ids = torch.cat([prompt_ids, target_ids])
    labels = torch.cat([torch.full_like(prompt_ids, IGNORE_INDEX), target_ids])
    out = {"input_ids": input_ids, "labels": labels, "attention_mask": torch.ones_like(input_ids)}
    for key in TOKEN_TYPE_KEYS:  # per-token types: the target tokens are text (0)
        if key in enc:
            out[key] = torch.cat([enc[key][0], torch.zeros_like(target_ids)])
    # Vision inputs pass through as the processor returned them, whatever the family: pixel_values +
    # image_grid_thw (Qwen-VL), pixel_values alone (InternVL), image_sizes, video tensors, ...
    out.update({k: v for k, v in enc.items() if k not in PER_TOKEN_KEYS and isinstance(v, torch.Tensor)})
    return out


def encode_many(processor, samples, modes, templates=None, max_length=1024, on_overlong="skip"):
    """Encode (sample, mode) pairs; over-long ones are skipped and counted (or raise). Returns (examples, skips)."""
    examples, skipped = [], Counter()
    for sample, mode in zip(samples, modes):
        try:
            ex = encode_train_example(processor, sample, mode, templates, max_length)
        except OverlongError as err:
            if on_overlong == "raise":
                raise
            skipped["overlong"] += 1
            log.debug("skip: %s", err)
            continue
        ex["id"], ex["mode"] = sample["id"], mode
        examples.append(ex)
    if skipped:
        log.warning("skipped %d over-long examples (max_length=%d); raise the limit or filter the data",
                    skipped["overlong"], max_length)
    return examples, skipped


def _pad(seqs, value, side="right"):
    """Pad 1-D tensors to a common length on ``side``."""
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        if side == "right":
            out[i, : len(s)] = s
        else:
            out[i, width - len(s):] = s
    return out


def collate_train(examples: list[dict], pad_token_id: int) -> dict:
    """Right-pad a list of encoded examples into a batch; vision tensors (whatever keys the processor
    returned) concatenated in example order."""
    batch = {
        "input_ids": _pad([e["input_ids"] for e in examples], pad_token_id),
        "labels": _pad([e["labels"] for e in examples], IGNORE_INDEX),
        "attention_mask": _pad([e["attention_mask"] for e in examples], 0),
    }
    for key in TOKEN_TYPE_KEYS:
        if any(key in e for e in examples):  # a text-only example may lack them: all zero for it
            batch[key] = _pad([e.get(key, torch.zeros_like(e["input_ids"])) for e in examples], 0)
    # Vision tensors (every other tensor key) exist only for examples with images / video.
    vision_keys = dict.fromkeys(k for e in examples for k, v in e.items()
                                if k not in PER_TOKEN_KEYS and k != "labels" and isinstance(v, torch.Tensor))
    for key in vision_keys:
        batch[key] = torch.cat([e[key] for e in examples if key in e])
    return batch


def encode_generation_batch(processor, samples, mode, templates=None, text_only=False, max_length=None):
    """Left-padded prompts (+ images) for batched generation; raises OverlongError rather than truncating."""
    encoded = [prompt_and_images(processor, s, mode, templates, text_only=text_only) for s in samples]
    prompts, images = [p for p, _ in encoded], [img for _, imgs in encoded for img in imgs]
    videos = [] if text_only else [v for s in samples for v in sample_videos(s)]  # video files (data/video.py)
    processor.tokenizer.padding_side = "left"
    enc = processor(text=prompts, images=images or None, padding=True, return_tensors="pt",
                    **video_processor_kwargs(videos))
    _check_image_tokens(processor, enc["input_ids"], enc)
    _check_video_tokens(processor, enc["input_ids"], enc.get("video_grid_thw"))
    if max_length is not None and enc["attention_mask"].sum(-1).max() > max_length:
        raise OverlongError(f"a prompt exceeds max_length {max_length}")
    return enc
