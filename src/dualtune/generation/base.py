"""The generation interface shared by evaluation and scoring, and the factory that picks its backend.

A `Generator` turns samples into completions: ``generate(samples, mode, n, max_new_tokens, temperature, top_p,
do_sample, seed, text_only)`` returns one dict per completion, sample-major (the ``n`` completions of sample i are
contiguous), with the fields of ``training.rollout.generate_completions`` (the reference): ``sample_id``,
``sample_index``, ``mode``, ``prompt_ids`` (1-D), ``completion_ids`` (1-D, up to and including EOS),
``completion_text`` (decoded before EOS, special tokens kept) and ``truncated`` (no EOS within the budget).

Both backends build the prompt with ``data.encoding.prompt_and_images`` (the processor's chat template over
``prompting.templates``) from the same images, with the pixel limits of the model config. ``text_only=True``
generates from image-free copies of the samples (no image, no placeholder tokens: RAP's text-only condition).
The backend is ``generation.backend: hf | vllm`` (conf/generation/); a config without that group uses hf.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

BACKENDS = ("hf", "vllm")
COMPLETION_KEYS = ("sample_id", "sample_index", "mode", "prompt_ids", "completion_ids", "completion_text",
                   "truncated")
# vLLM engine settings (conf/generation/hf.yaml, block ``vllm``) and their defaults.
VLLM_DEFAULTS = {"gpu_memory_utilization": 0.5, "enforce_eager": True, "max_model_len": None, "max_num_seqs": None,
                 "dtype": None, "kv_cache_space_gb": 1, "in_process": True, "max_images_per_prompt": 8,
                 "enable_chunked_prefill": None}


class Generator(abc.ABC):
    """Completions for samples in an answer mode; see the module docstring for the returned fields."""

    name = "base"

    @abc.abstractmethod
    def generate(self, samples: Sequence[dict], mode: str | Sequence[str], n: int = 1,
                 max_new_tokens: int | Mapping = 256, temperature: float = 1.0, top_p: float = 1.0,
                 do_sample: bool = True, seed: int | None = None, text_only: bool = False) -> list[dict]:
        """``n`` completions per sample (sample-major). ``mode``: one answer mode or one per sample;
        ``max_new_tokens``: an int or a per-mode dict; ``do_sample=False`` decodes greedily; ``seed``: the
        sampling seed (None: the backend's current random state); ``text_only``: drop every image first."""

    def close(self) -> None:
        """Release what the backend holds (an engine, its memory); the generator is unusable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def generation_inputs(samples: Sequence[dict], text_only: bool) -> list[dict]:
    """The samples as given, or image-free copies of them (``text_only``: no images, frames, video file)."""
    from dualtune.prompting.templates import without_visuals

    return [without_visuals(s) for s in samples] if text_only else list(samples)


def per_sample_modes(samples: Sequence[dict], mode: str | Sequence[str]) -> list[str]:
    """One answer mode per sample (``mode`` is one mode for all, or a list as long as ``samples``)."""
    from dualtune.prompting.templates import check_mode

    modes = [mode] * len(samples) if isinstance(mode, str) else list(mode)
    if len(modes) != len(samples):
        raise ValueError(f"{len(modes)} modes for {len(samples)} samples")
    return [check_mode(m) for m in modes]


def budget(max_new_tokens: int | Mapping, mode: str) -> int:
    """The generation budget of ``mode`` (``max_new_tokens`` is an int or a per-mode dict)."""
    return int(max_new_tokens[mode] if isinstance(max_new_tokens, Mapping) else max_new_tokens)


def generation_settings(cfg) -> dict:
    """``{"backend", "vllm": {...}}`` from ``cfg.generation`` over the defaults (hf when the group is absent)."""
    from omegaconf import OmegaConf

    node = cfg.get("generation") if hasattr(cfg, "get") else None
    node = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node or {})
    backend = node.get("backend") or "hf"
    if backend not in BACKENDS:
        raise ValueError(f"generation.backend must be one of {list(BACKENDS)}, got {backend!r}")
    return {"backend": backend, "vllm": {**VLLM_DEFAULTS, **(node.get("vllm") or {})}}


def build_generator(cfg, model_path: str, processor, model=None, templates=None, micro_batch_size: int = 8,
                    seed: int = 0) -> Generator:
    """The generator of ``cfg.generation.backend``: `HFGenerator` around the loaded ``model`` (hf), or a
    `VLLMGenerator` engine on ``model_path`` (vllm; ``model`` unused), with ``cfg.model``'s dtype and pixel limits."""
    settings = generation_settings(cfg)
    if settings["backend"] == "hf":
        from dualtune.generation.hf import HFGenerator

        if model is None:
            raise ValueError("generation.backend=hf needs the loaded model")
        return HFGenerator(model, processor, templates, micro_batch_size=micro_batch_size)
    return vllm_generator(cfg, model_path, processor, templates, seed=seed)


def vllm_generator(cfg, model_path: str, processor, templates=None, seed: int = 0, **engine_options) -> Generator:
    """A `VLLMGenerator` on ``model_path`` with ``cfg.generation.vllm``'s settings, ``cfg.model``'s dtype (when the
    settings give none; float32 without either) and pixel limits; ``engine_options``: further `VLLMGenerator`
    keywords (e.g. GRPO's sleep mode and log-prob mode)."""
    from dualtune.generation.vllm import VLLMGenerator

    knobs = dict(generation_settings(cfg)["vllm"])
    knobs["dtype"] = knobs["dtype"] or cfg.model.get("dtype") or "float32"
    from dualtune.models.loading import image_bounds

    return VLLMGenerator(model_path, processor, templates, seed=seed, **image_bounds(cfg.model), **knobs,
                         **engine_options)
