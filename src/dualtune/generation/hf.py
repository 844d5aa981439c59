"""The reference backend: ``model.generate`` through ``training.rollout.generate_completions``, unchanged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dualtune.generation.base import Generator, generation_inputs


class HFGenerator(Generator):
    """`Generator` over a loaded Hugging Face VLM; ``micro_batch_size`` sequences per ``generate`` call."""

    name = "hf"

    def __init__(self, model, processor, templates=None, micro_batch_size: int = 8):
        self.model, self.processor = model, processor
        self.templates, self.micro_batch_size = templates, int(micro_batch_size)

    def generate(self, samples: Sequence[dict], mode: str | Sequence[str], n: int = 1,
                 max_new_tokens: int | Mapping = 256, temperature: float = 1.0, top_p: float = 1.0,
                 do_sample: bool = True, seed: int | None = None, text_only: bool = False) -> list[dict]:
        """`generate_completions` on ``samples`` (image-free copies with ``text_only``). With a ``seed`` the
        global torch RNG is forked and seeded for the call (the caller's random stream does not move); with
        ``seed=None`` it is used as it is, exactly as a direct `generate_completions` call."""
        import torch

        from dualtune.training.rollout import generate_completions

        def run():
            return generate_completions(
                self.model, self.processor, generation_inputs(samples, text_only), mode, num_generations=n,
                max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, do_sample=do_sample,
                micro_batch_size=self.micro_batch_size, templates=self.templates)

        if seed is None:
            return run()
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return run()
