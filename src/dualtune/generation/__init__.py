"""One generation interface for evaluation and scoring: ``generation.backend: hf | vllm``.

`base.Generator` is the interface (``generate(samples, mode, n, ...) -> completions``), `hf.HFGenerator` wraps
``training.rollout.generate_completions`` (the reference), `vllm.VLLMGenerator` runs the same prompts through a
vLLM engine (its own environment: ``make vllm-env``). `base.build_generator` picks one from the config. This
package imports nothing heavy at import time (``torchvision_ops`` is loaded from a ``.pth`` line).
"""
