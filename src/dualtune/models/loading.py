"""Load a VLM and its processor through the Auto* classes, then apply freezing and LoRA.

The same path serves a hub id (``Qwen/Qwen2.5-VL-3B-Instruct``), a local checkpoint directory and the
embedded tiny model (built and cached by `dualtune.models.base.ensure_tiny_base`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16, "auto": "auto"}


def resolve_dtype(name: str | None):
    """Map a config dtype string to a torch dtype (or "auto")."""
    if name is None:
        return torch.float32
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; expected one of {sorted(DTYPES)}")
    return DTYPES[name]


def load_processor(path: str, max_pixels: int | None = None, min_pixels: int | None = None,
                   max_patches: int | None = None):
    """`AutoProcessor.from_pretrained` with optional image-size bounds (Qwen-VL: pixel counts; InternVL:
    ``max_patches`` tiles per image, the thumbnail not counted), left padding for generation."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    image_processor = getattr(processor, "image_processor", None)
    if max_patches is not None:
        if not hasattr(image_processor, "max_patches"):
            raise ValueError(f"model.max_patches={max_patches}: {type(image_processor).__name__} does not tile "
                             "images (it applies to InternVL); use min_pixels / max_pixels")
        if int(max_patches) < 1:
            raise ValueError(f"model.max_patches must be >= 1, got {max_patches}")
        image_processor.max_patches = int(max_patches)
    size = getattr(image_processor, "size", None)
    # Qwen-VL image processors bound the pixel count by size = {shortest_edge: min, longest_edge: max}; size is a
    # dict or (transformers 5) a SizeDict, which supports `in`, [] and rebuilding from keywords alike.
    if size is not None and "longest_edge" in size and (max_pixels or min_pixels):
        image_processor.size = type(size)(**{**dict(size), "shortest_edge": int(min_pixels or size["shortest_edge"]),
                                             "longest_edge": int(max_pixels or size["longest_edge"])})
    processor.tokenizer.padding_side = "left"
    return processor


def image_bounds(model_cfg) -> dict:
    """A model config's image-size bounds, the one list of them: ``{min_pixels, max_pixels}`` (Qwen-VL; null =
    the checkpoint's) plus ``max_patches`` (InternVL's tiles per image) when set. They change every image's token
    count, so the processors, the vLLM engine and the eval / score / CoT cache keys all take them from here
    (an unset ``max_patches`` is left out, so keys made before it existed still match)."""
    bounds = {"min_pixels": model_cfg.get("min_pixels"), "max_pixels": model_cfg.get("max_pixels")}
    if model_cfg.get("max_patches") is not None:
        bounds["max_patches"] = int(model_cfg.get("max_patches"))
    return bounds


def processor_for(path: str, model_cfg):
    """`load_processor` with a model config's image bounds (`image_bounds`)."""
    return load_processor(path, **image_bounds(model_cfg))


def freeze_modules(model, patterns) -> int:
    """Set requires_grad=False on parameters whose name contains any of ``patterns``; return count frozen."""
    frozen = 0
    for name, param in model.named_parameters():
        if any(p in name for p in patterns):
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def apply_lora(model, lora_cfg):
    """Wrap ``model`` with a peft LoRA adapter (language-model linears only, by ``target_modules``)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=int(lora_cfg.r), lora_alpha=int(lora_cfg.alpha), lora_dropout=float(lora_cfg.dropout),
        target_modules=lora_cfg.target_modules if isinstance(lora_cfg.target_modules, str)
        else list(lora_cfg.target_modules),
        bias="none", task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def vision_tower_patterns(model_cfg) -> tuple[str, ...]:
    """Name patterns of the vision tower and projector parameters (``model.vision_modules`` +
    ``model.projector_modules``), which train at ``lr * vision_lr_scale``; ``("visual.",)`` if unset."""
    patterns = tuple(model_cfg.get("vision_modules") or ()) + tuple(model_cfg.get("projector_modules") or ())
    return patterns or ("visual.",)


def load_model(path: str, model_cfg, for_training: bool = True):
    """Load weights from ``path`` via `AutoModelForImageTextToText`, then freeze / LoRA per ``model_cfg``."""
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(
        path, dtype=resolve_dtype(model_cfg.get("dtype")),
        attn_implementation=model_cfg.get("attn_implementation") or None,
    )
    if not for_training:
        return model.eval()
    patterns = []
    if model_cfg.get("freeze_vision"):
        patterns += list(model_cfg.get("vision_modules") or [])
    if model_cfg.get("freeze_projector"):
        patterns += list(model_cfg.get("projector_modules") or [])
    if patterns:
        n = freeze_modules(model, patterns)
        log.info("froze %.2fM parameters matching %s", n / 1e6, patterns)
    if model_cfg.get("lora") and model_cfg.lora.get("enabled"):
        model = apply_lora(model, model_cfg.lora)
    return model


def hub_snapshot_dir(repo_id: str) -> Path | None:
    """The local snapshot dir of a hub id's current revision in the HF cache (None if not downloaded)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # not a valid repo id (e.g. a local path that does not exist)
        return None
    return Path(config).parent if isinstance(config, str) else None


def model_fingerprint(path: str | Path) -> str:
    """A short hash identifying a checkpoint: file sizes + config for local dirs; for a hub id, its cached
    snapshot (so a new revision of the same id gets a new fingerprint), or the id when not downloaded."""
    path_obj = Path(str(path))
    if not path_obj.is_dir():
        path_obj = hub_snapshot_dir(str(path)) or path_obj
    h = hashlib.sha256()
    if path_obj.is_dir():
        for f in sorted(path_obj.rglob("*")):
            if f.is_file():
                h.update(f.relative_to(path_obj).as_posix().encode())
                h.update(str(f.stat().st_size).encode())
                if f.suffix == ".json" or f.stat().st_size < 1 << 20:
                    h.update(f.read_bytes())
                else:  # weights: hash the head and tail, enough to tell checkpoints apart cheaply
                    with f.open("rb") as fh:
                        h.update(fh.read(1 << 16))
                        fh.seek(-(1 << 16), 2)
                        h.update(fh.read(1 << 16))
    else:
        h.update(str(path).encode())
    return h.hexdigest()[:16]
