"""The vLLM backend (``generation.backend=vllm``): the reference's prompts, images and decoding rules on a vLLM engine.

Runs in the vLLM environment only (``make vllm-env``; vLLM pins its own torch). What makes it match the HF
reference (``training.rollout.generate_completions``):

* the prompt is the same chat-formatted text (``data.encoding.prompt_and_images``) with the same images, in
  placeholder order; vLLM's multimodal processor is the checkpoint's HF processor, given the config's
  ``min_pixels`` / ``max_pixels`` for images (``mm_processor_kwargs.images_kwargs.size``; not for InternVL's
  fixed-size tiles: `image_size_kwargs`), so the image placeholders expand to the same count;
* families with greedy parity on tiny checkpoints: Qwen2.5-VL, Qwen3-VL and InternVL in the transformers-native
  "-hf" format (vLLM serves it with its InternS1 class), images and video files (tests/test_vllm_families.py);
  InternVL's video-frame placeholders are mapped back to the reference's ids (`engine_placeholder_ids`);
* a video file (``meta.video``) goes in as the frames the reference decodes (`data.video.sample_videos`) with
  their indices and fps, so the same video placeholders and timestamps. One known difference: for a clip whose
  temporal M-RoPE extent exceeds its spatial one, transformers continues the text positions after
  max(h, w) / merge, vLLM (like the original Qwen2.5-VL) after the largest position, and outputs differ;
* decoding is explicit: no checkpoint generation defaults (``generation_config="vllm"``), stop on the reference's
  EOS ids, vision placeholder ids suppressed (bias -inf, as ``suppress_tokens``), repetition penalty 1, no top-k,
  greedy = temperature 0;
* the completion keeps its tokens up to and including the first EOS and is decoded with the same tokenizer call.

Sampling: completion g of sample i is seeded with ``seed + i * n + g`` (vLLM gives the n children of a request
``seed + g``), so a call is reproducible whatever the engine's batching; ``seed=None`` draws from vLLM's own state.

On CPU the engine runs in this process (``in_process``: ``VLLM_ENABLE_V1_MULTIPROCESSING=0``, executor "uni",
``TORCHDYNAMO_DISABLE=1``) with a KV cache of ``kv_cache_space_gb`` GiB; building the engine resets torch's thread
count and the global RNG, which are restored afterwards. A script that lets vLLM spawn worker processes needs
an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from types import SimpleNamespace

from dualtune.generation.base import Generator, budget, generation_inputs, per_sample_modes

log = logging.getLogger(__name__)


@contextmanager
def preserved_process_state():
    """Restore torch's thread count and the global RNGs (torch, numpy, random) on exit."""
    import numpy as np
    import torch

    threads = torch.get_num_threads()
    states = (torch.random.get_rng_state(), np.random.get_state(), random.getstate())
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def engine_environment(in_process: bool, kv_cache_space_gb: float | None) -> dict[str, str]:
    """Environment variables the engine reads at start (set unless the user set them already)."""
    env = {}
    if in_process:
        env.update(VLLM_ENABLE_V1_MULTIPROCESSING="0", TORCHDYNAMO_DISABLE="1")
    if kv_cache_space_gb is not None:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_space_gb)
    return env


def _reference_ids(model_path: str, processor) -> tuple[list[int], list[int]]:
    """``(eos_ids, suppressed_ids)`` exactly as the HF reference derives them from the checkpoint."""
    from transformers import AutoConfig, GenerationConfig

    from dualtune.training.rollout import eos_token_ids, suppressed_token_ids

    try:
        generation_config = GenerationConfig.from_pretrained(model_path)
    except OSError:  # no generation_config.json: the tokenizer's EOS only
        generation_config = None
    shim = SimpleNamespace(config=AutoConfig.from_pretrained(model_path), generation_config=generation_config)
    return eos_token_ids(shim, processor), suppressed_token_ids(shim)


def image_size_kwargs(processor, min_pixels=None, max_pixels=None, max_patches=None) -> dict:
    """The engine's image-processor kwargs for the config's pixel limits, as `load_processor` applies them to the
    reference: ``{"size": {"shortest_edge": min, "longest_edge": max}}`` (a missing bound from the checkpoint's
    processor) for an image processor that bounds the pixel count (Qwen2.5-VL, Qwen3-VL); ``{}`` without limits
    or for a processor that tiles at a fixed size (InternVL's GotOcr2: the reference ignores the limits there, and
    vLLM's processor would reject ``min_pixels``); ``max_patches`` (InternVL's tiles per image) is passed as is."""
    if max_patches is not None:
        return {"max_patches": int(max_patches), **image_size_kwargs(processor, min_pixels, max_pixels)}
    if min_pixels is None and max_pixels is None:
        return {}
    image_processor = getattr(processor, "image_processor", None)
    size = getattr(image_processor, "size", None)
    if size is None or "longest_edge" not in size:
        log.info("min_pixels / max_pixels do not apply to %s (fixed-size tiles); the engine ignores them, as the "
                 "reference does", type(image_processor).__name__)
        return {}
    return {"size": {"shortest_edge": int(min_pixels or size["shortest_edge"]),
                     "longest_edge": int(max_pixels or size["longest_edge"])}}


def engine_placeholder_ids(processor) -> dict[int, int]:
    """``{engine id: reference id}`` for video-frame placeholders the engine writes differently: vLLM's InternVL
    processor marks a frame's features with ``<video>`` where transformers' `InternVLProcessor` writes
    ``<IMG_CONTEXT>`` (same features, same completions). Mapped back so ``prompt_ids`` are the reference's (GRPO
    re-scores completions on them: `training.engine_sync`). Empty for the other families."""
    from transformers import InternVLProcessor

    if not isinstance(processor, InternVLProcessor) or processor.video_token == processor.image_token:
        return {}
    convert = processor.tokenizer.convert_tokens_to_ids
    return {int(convert(processor.video_token)): int(convert(processor.image_token))}


def _cuda_available() -> bool:
    """True when torch sees a CUDA device (vLLM's GPU flavour)."""
    import torch

    return torch.cuda.is_available()


class VLLMGenerator(Generator):
    """`Generator` on a vLLM engine for the checkpoint at ``model_path`` (one engine per generator)."""

    name = "vllm"

    def __init__(self, model_path, processor, templates=None, *, dtype: str = "float32", min_pixels=None,
                 max_pixels=None, max_patches=None, gpu_memory_utilization: float = 0.5, enforce_eager: bool = True,
                 max_model_len: int | None = None, max_num_seqs: int | None = None, kv_cache_space_gb=1,
                 in_process: bool = True, max_images_per_prompt: int = 8, seed: int = 0,
                 enable_chunked_prefill: bool | None = None, enable_sleep_mode: bool = False,
                 logprobs_mode: str | None = None):
        for key, value in engine_environment(in_process, kv_cache_space_gb).items():
            os.environ.setdefault(key, value)
        from vllm import LLM

        self.model_path, self.processor, self.templates = str(model_path), processor, templates
        self.eos_ids, self.suppressed_ids = _reference_ids(self.model_path, processor)
        self.video_placeholders = engine_placeholder_ids(processor)
        pixels = image_size_kwargs(processor, min_pixels, max_pixels, max_patches)
        # The pixel limits go to the image processor only: the reference sets them there (`load_processor`),
        # a video keeps the checkpoint's video-processor limits in both backends.
        kwargs = dict(model=self.model_path, dtype=dtype, seed=int(seed), enforce_eager=bool(enforce_eager),
                      gpu_memory_utilization=float(gpu_memory_utilization), generation_config="vllm",
                      mm_processor_kwargs={"images_kwargs": pixels} if pixels else None,
                      limit_mm_per_prompt={"image": int(max_images_per_prompt), "video": 1})
        if in_process:
            kwargs["distributed_executor_backend"] = "uni"
        if max_model_len is not None:
            kwargs["max_model_len"] = int(max_model_len)
        if max_num_seqs is not None:
            kwargs["max_num_seqs"] = int(max_num_seqs)
        # vLLM rewinds a seeded request's generator after a partial (chunked) prefill, which a CPU torch
        # Generator cannot do ("CPU Generator does not use offset"): seeded sampling of many image prompts
        # crashed on CPU. Off by default without CUDA; vLLM's own default on GPU.
        if enable_chunked_prefill is None and not _cuda_available():
            enable_chunked_prefill = False
        if enable_chunked_prefill is not None:
            kwargs["enable_chunked_prefill"] = bool(enable_chunked_prefill)
        self.in_process, self.sleep_mode = bool(in_process), bool(enable_sleep_mode) and _cuda_available()
        if enable_sleep_mode and not self.sleep_mode:
            log.info("vLLM sleep mode is unavailable without CUDA; the engine stays awake")
        if self.sleep_mode:
            kwargs["enable_sleep_mode"] = True
        if logprobs_mode is not None:  # "processed_logprobs": log-probs of the distribution actually sampled
            kwargs["logprobs_mode"] = logprobs_mode
        with preserved_process_state():
            self.llm = LLM(**kwargs)
        log.info("vLLM engine on %s (%s, pixels %s)", self.model_path, dtype, pixels or "checkpoint default")

    def request(self, sample: dict, mode: str) -> dict:
        """The engine input of one sample: the reference's prompt text, its images (PIL, placeholder order,
        decoded by `prompt_and_images`) and its video file's frames as the reference decodes them
        (`data.video.sample_videos`: the same sampled frames, with their indices and fps as metadata)."""
        import numpy as np

        from dualtune.data.encoding import prompt_and_images
        from dualtune.data.video import sample_videos

        prompt, images = prompt_and_images(self.processor, sample, mode, self.templates)
        videos = [(np.array(frames), dict(meta, video_backend="pyav")) for frames, meta in sample_videos(sample)]
        media = {"image": images, "video": videos}
        media = {kind: items for kind, items in media.items() if items}
        return {"prompt": prompt, "multi_modal_data": media} if media else {"prompt": prompt}

    def sampling_params(self, n: int, max_new_tokens: int, temperature: float, top_p: float, do_sample: bool,
                        seed: int | None, logprobs: bool = False):
        """vLLM sampling parameters equivalent to the reference's ``generate`` kwargs (``logprobs``: also the
        sampled tokens' log-probs)."""
        from vllm import SamplingParams

        common = dict(n=int(n), max_tokens=int(max_new_tokens), stop_token_ids=list(self.eos_ids), ignore_eos=False,
                      repetition_penalty=1.0, top_k=0, min_p=0.0, skip_special_tokens=False, detokenize=False,
                      logit_bias={i: float("-inf") for i in self.suppressed_ids} or None, seed=seed,
                      logprobs=0 if logprobs else None)
        if do_sample:
            return SamplingParams(temperature=float(temperature), top_p=float(top_p), **common)
        return SamplingParams(temperature=0.0, top_p=1.0, **common)

    def generate(self, samples: Sequence[dict], mode: str | Sequence[str], n: int = 1,
                 max_new_tokens: int | Mapping = 256, temperature: float = 1.0, top_p: float = 1.0,
                 do_sample: bool = True, seed: int | None = None, text_only: bool = False, *,
                 return_logprobs: bool = False) -> list[dict]:
        """See `Generator.generate`; all samples go to the engine in one call (it batches them itself).
        ``return_logprobs``: each completion also gets ``logprobs`` (float32, one per completion token), the
        engine's log-prob of each sampled token (of the distribution set by the engine's ``logprobs_mode``)."""
        import torch

        inputs = generation_inputs(samples, text_only)
        modes = per_sample_modes(inputs, mode)
        requests = [self.request(s, m) for s, m in zip(inputs, modes)]
        # vLLM refuses n > 1 when greedy; the n greedy completions of the reference are copies of one.
        copies, engine_n = (1, int(n)) if do_sample else (int(n), 1)
        params = [self.sampling_params(engine_n, budget(max_new_tokens, m), temperature, top_p, do_sample,
                                       None if seed is None else int(seed) + i * int(n), return_logprobs)
                  for i, m in enumerate(modes)]
        with preserved_process_state():
            outputs = self.llm.generate(requests, params, use_tqdm=False) if requests else []
        tokenizer, eos = self.processor.tokenizer, set(self.eos_ids)
        results = []
        for i, (sample, out) in enumerate(zip(inputs, outputs)):
            prompt_ids = torch.tensor(out.prompt_token_ids, dtype=torch.long)
            if "video" in requests[i].get("multi_modal_data", {}):
                for engine_id, reference_id in self.video_placeholders.items():
                    prompt_ids[prompt_ids == engine_id] = reference_id
            for completion in [c for c in out.outputs for _ in range(copies)]:
                ids = list(completion.token_ids)
                cut = next((k for k, t in enumerate(ids) if t in eos), None)
                ids = ids if cut is None else ids[: cut + 1]
                results.append({
                    "sample_id": sample.get("id"), "sample_index": i, "mode": modes[i],
                    "prompt_ids": prompt_ids.clone(),
                    "completion_ids": torch.tensor(ids, dtype=torch.long),
                    "completion_text": tokenizer.decode(ids if cut is None else ids[:-1], skip_special_tokens=False),
                    "truncated": cut is None,
                })
                if return_logprobs:
                    results[-1]["logprobs"] = torch.tensor(
                        [step[t].logprob for t, step in zip(ids, completion.logprobs)], dtype=torch.float32)
        return results

    def close(self) -> None:
        """Shut the engine down and free its memory (a new engine can be built in this process afterwards)."""
        import gc

        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm, engine
        gc.collect()
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
