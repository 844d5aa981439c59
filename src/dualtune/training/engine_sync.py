"""GRPO rollouts on a colocated vLLM engine (``generation.backend=vllm``), kept in sync with the trained policy.

* One engine per run, built once from the starting policy's saved dir (`build_engine_rollouts`), in this process
  (``generation.vllm.in_process``), next to the trainer on its single device.
* `EngineRollouts` is a drop-in for `rollout.generate_completions` (same call, same result fields, the HF
  ``prompt_inputs`` for re-scoring included): `GRPOModule` takes it as ``rollout_engine``.
* `EngineSyncCallback` pushes the policy's weights into the engine after every training batch, i.e. after its
  optimizer step(s), and once at train start (a resumed run's weights come from its checkpoint). `push_weights`
  uses vLLM's in-place ``reload_weights`` with checkpoint-named tensors, then drops what the engine computed with
  the old weights: cached vision-encoder outputs and prefix-cache KV blocks.
* LoRA: `policy_weights` yields merged weights, ``W + scaling * B @ A`` of the active adapters (peft's
  ``get_delta_weight``), one tensor at a time: the trained adapter is never modified (no ``merge_and_unload``)
  and the engine serves plain weights. vLLM cannot serve a LoRA adapter on the vision tower; with merged weights
  that does not matter: a LoRA on any module, the vision tower included, reaches the engine.
* Sleep mode (``algo.vllm_enable_sleep_mode``, CUDA only): after generating, the engine sleeps (level 2: weights
  and KV cache released, so the backward pass and optimizer step get the memory); the next sync wakes the weights,
  pushes them and wakes the KV cache. Without CUDA it is logged as unavailable and skipped.
* Truncated importance sampling (``algo.vllm_importance_sampling_correction``): the engine also returns the
  sampled tokens' log-probs (``logprobs_mode="processed_logprobs"``: after temperature, top-p and the suppressed
  vision tokens, the distribution actually sampled) as ``engine_logprobs``; the loss weights each token by
  `grpo_math.truncated_importance_weights`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence

import lightning as L
import torch
from torch import Tensor

from dualtune.generation.base import per_sample_modes, vllm_generator
from dualtune.training.rollout import encode_prompt

log = logging.getLogger(__name__)
PEFT_PREFIX = "base_model.model."
SLEEP_LEVEL = 2  # weights are pushed after every wake-up, so the engine need not keep (offload) its own


def checkpoint_name(key: str) -> str | None:
    """The checkpoint (``save_pretrained``) name of a plain or peft model's state-dict ``key``; None for tensors
    that are no model weight (LoRA factors, the frozen originals of peft's ``modules_to_save``)."""
    name = key[len(PEFT_PREFIX):] if key.startswith(PEFT_PREFIX) else key
    if ".lora_" in name or ".original_module." in name:
        return None
    return re.sub(r"\.modules_to_save\.[^.]+\.", ".", name.replace(".base_layer.", "."))


def lora_layers(model) -> dict[str, tuple]:
    """``{state-dict key of a LoRA layer's base weight: (layer, unmerged active adapters)}`` (empty without peft)."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:
        return {}
    layers = {}
    for name, module in model.named_modules():
        if not isinstance(module, LoraLayer) or module.disable_adapters:
            continue
        adapters = [a for a in module.active_adapters if a in module.lora_A and a not in module.merged_adapters]
        if any(module.use_dora.get(a) for a in adapters):
            raise NotImplementedError(f"{name}: DoRA adapters cannot be pushed to the vLLM engine as merged weights")
        if adapters:
            layers[f"{name}.base_layer.weight"] = (module, adapters)
    return layers


def policy_weights(model) -> Iterator[tuple[str, Tensor]]:
    """The policy's weights as ``(checkpoint name, tensor)``, LoRA merged on the fly (see the module docstring)."""
    layers = lora_layers(model)
    for key, tensor in model.state_dict().items():
        name = checkpoint_name(key)
        if name is None:
            continue
        if key in layers:
            module, adapters = layers[key]
            with torch.no_grad():
                tensor = tensor + sum(module.get_delta_weight(a) for a in adapters).to(tensor.dtype)
        yield name, tensor.detach()


def push_weights(llm, weights: Iterator[tuple[str, Tensor]]) -> None:
    """Load checkpoint-named ``weights`` into the in-process engine ``llm`` in place and drop its caches of
    results computed with the old weights (vision-encoder outputs, prefix-cache KV blocks)."""
    with torch.no_grad():
        llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights), "is_checkpoint_format": True})
    llm.llm_engine.reset_encoder_cache()
    if not llm.reset_prefix_cache():
        log.warning("vLLM: the prefix cache could not be reset after the weight push")


def engine_logprob_rows(results: Sequence[dict], device=None) -> Tensor | None:
    """The rows' ``engine_logprobs`` right-padded with 0 into [B, C] like their completions (None without them)."""
    if not results or "engine_logprobs" not in results[0]:
        return None
    out = torch.zeros(len(results), max(len(r["engine_logprobs"]) for r in results))
    for i, row in enumerate(results):
        out[i, : len(row["engine_logprobs"])] = row["engine_logprobs"]
    return out.to(device)


class EngineRollouts:
    """GRPO rollouts on a `VLLMGenerator` kept in sync with the policy (see the module docstring)."""

    def __init__(self, generator, importance_sampling: bool = False):
        if not generator.in_process:
            raise ValueError("GRPO with generation.backend=vllm needs generation.vllm.in_process=true: the policy's "
                             "weights are pushed into an engine in the trainer's process")
        self.generator, self.importance_sampling = generator, bool(importance_sampling)
        self.asleep, self.syncs = False, 0

    def __call__(self, model, processor, samples: Sequence[dict], mode: str | Sequence[str], num_generations: int = 1,
                 max_new_tokens: int | Mapping = 256, temperature: float = 1.0, top_p: float = 1.0,
                 do_sample: bool = True, micro_batch_size: int = 8, templates=None,
                 return_inputs: bool = False) -> list[dict]:
        """`rollout.generate_completions`'s call and results (``micro_batch_size`` unused: the engine batches),
        plus ``engine_logprobs`` with importance sampling. The seed is drawn from torch's global RNG, so a seeded
        run draws the same rollouts again."""
        if self.asleep:  # a level-2 sleep released the weights: push them again first
            self.sync(model)
        self.generator.templates = dict(templates) if templates else None
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        results = self.generator.generate(samples, mode, n=num_generations, max_new_tokens=max_new_tokens,
                                          temperature=temperature, top_p=top_p, do_sample=do_sample, seed=seed,
                                          return_logprobs=self.importance_sampling)
        if self.generator.sleep_mode:
            self.generator.llm.sleep(level=SLEEP_LEVEL)
            self.asleep = True
        modes = per_sample_modes(samples, mode)
        prompts = [encode_prompt(processor, s, m, templates) for s, m in zip(samples, modes)] if return_inputs else []
        for row in results:
            if "logprobs" in row:
                row["engine_logprobs"] = row.pop("logprobs")
            if return_inputs:
                row["prompt_inputs"] = prompts[row["sample_index"]]
                if not torch.equal(row["prompt_inputs"]["input_ids"], row["prompt_ids"]):
                    raise RuntimeError(f"sample {row['sample_id']!r}: the engine's prompt tokens differ from the "
                                       f"trainer's; the completion cannot be re-scored on the prompt it was drawn on")
        return results

    def sync(self, model) -> None:
        """Push ``model``'s weights into the engine (waking it first when it sleeps)."""
        start, llm = time.perf_counter(), self.generator.llm
        if self.asleep:
            llm.wake_up(tags=["weights"])
        push_weights(llm, policy_weights(model))
        if self.asleep:
            llm.wake_up(tags=["kv_cache"])
            self.asleep = False
        self.syncs += 1
        log.debug("vLLM weight sync %d: %.2f s", self.syncs, time.perf_counter() - start)

    def close(self) -> None:
        """Shut the engine down."""
        self.generator.close()


class EngineSyncCallback(L.Callback):
    """Pushes the policy's weights into the rollout engine at train start and after every training batch."""

    def __init__(self, rollouts: EngineRollouts):
        self.rollouts = rollouts

    def on_train_start(self, trainer, pl_module) -> None:
        """The weights the run starts from (a checkpoint's, when resumed)."""
        self.rollouts.sync(pl_module.model)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """The weights after this batch's optimizer step(s)."""
        self.rollouts.sync(pl_module.model)


def build_engine_rollouts(cfg, algo, model_path: str, processor, templates=None) -> EngineRollouts:
    """`EngineRollouts` on a vLLM engine for ``model_path`` with ``cfg.generation.vllm``'s settings, ``cfg.model``'s
    dtype and pixel limits, and ``algo``'s ``vllm_enable_sleep_mode`` / ``vllm_importance_sampling_correction``."""
    correction = bool(algo.get("vllm_importance_sampling_correction", False))
    generator = vllm_generator(cfg, model_path, processor, templates, seed=int(cfg.get("seed", 0)),
                               enable_sleep_mode=bool(algo.get("vllm_enable_sleep_mode", False)),
                               logprobs_mode="processed_logprobs" if correction else None)
    return EngineRollouts(generator, importance_sampling=correction)
