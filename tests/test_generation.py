"""The generation interface (dualtune.generation) in the main venv: the HF backend is the reference unchanged,
evaluation routes through a backend, and the generation config group is composed and validated.
(vLLM parity runs in the vLLM environment: tests/test_vllm_generation.py, via .ci/vllm.)"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from PIL import Image

from dualtune.config_checks import ConfigError, check_config
from dualtune.evaluation import evaluate_model
from dualtune.generation.base import COMPLETION_KEYS, Generator, build_generator, generation_settings
from dualtune.generation.hf import HFGenerator
from dualtune.training.rollout import generate_completions
from tests.conftest import compose


def _samples() -> list[dict]:
    """Three image samples with different colors (the sharpened model's outputs depend on them)."""
    out = []
    for i, color in enumerate(["red", "blue", "green"]):
        img = Image.new("RGB", (56, 56), "white")
        img.paste(Image.new("RGB", (28, 28), color), (0, 0))
        out.append({"id": f"s{i}", "domain": "d", "subtask": "t", "images": [img], "question": "How many?",
                    "options": [], "answer": str(i), "answer_type": "number", "cot": ""})
    return out


@pytest.fixture(scope="module")
def tiny(random_tiny_ckpt):
    """(model, processor): the random tiny checkpoint with sharpened weights, so outputs vary by input."""
    from dualtune.models.loading import load_model, load_processor

    model = load_model(random_tiny_ckpt, {"dtype": "float32"}, for_training=False)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() >= 2:
                weight.copy_(torch.randn(weight.shape, generator=generator) * 0.3)
    return model, load_processor(random_tiny_ckpt)


def _same(a: list[dict], b: list[dict]) -> bool:
    """Equal completions (ids, text, truncation) in the same order."""
    key = [(o["completion_ids"].tolist(), o["completion_text"], o["truncated"], o["sample_index"]) for o in a]
    return key == [(o["completion_ids"].tolist(), o["completion_text"], o["truncated"], o["sample_index"]) for o in b]


def test_hf_generator_is_generate_completions_unchanged(tiny):
    model, processor = tiny
    samples = _samples()
    gen = HFGenerator(model, processor, micro_batch_size=2)
    greedy = gen.generate(samples, "cot", max_new_tokens=6, do_sample=False)
    assert _same(greedy, generate_completions(model, processor, samples, "cot", max_new_tokens=6, do_sample=False,
                                              micro_batch_size=2))
    assert set(COMPLETION_KEYS) <= set(greedy[0])
    assert len({tuple(o["completion_ids"].tolist()) for o in greedy}) > 1  # not a constant model
    # Text-only: exactly the reference's generation from image-free samples; the prompt has no image tokens.
    text_only = gen.generate(samples, "direct", max_new_tokens=4, do_sample=False, text_only=True)
    stripped = [dict(s, images=[], video=[]) for s in samples]
    assert _same(text_only, generate_completions(model, processor, stripped, "direct", max_new_tokens=4,
                                                 do_sample=False, micro_batch_size=2))
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    assert all(image_id not in o["prompt_ids"].tolist() for o in text_only)
    assert samples[0]["images"]  # the caller's samples are not modified


def test_hf_generator_seed_forks_the_rng_and_reproduces(tiny):
    model, processor = tiny
    samples = _samples()
    gen = HFGenerator(model, processor, micro_batch_size=8)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    first = gen.generate(samples, "cot", n=3, max_new_tokens=5, do_sample=True, seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's stream did not move
    assert len(first) == 9 and [o["sample_index"] for o in first] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert _same(first, gen.generate(samples, "cot", n=3, max_new_tokens=5, do_sample=True, seed=7))
    assert not _same(first, gen.generate(samples, "cot", n=3, max_new_tokens=5, do_sample=True, seed=8))
    # seed=None is a plain call on the current stream (what evaluation always did).
    torch.manual_seed(5)
    plain = generate_completions(model, processor, samples, "cot", num_generations=2, max_new_tokens=5,
                                 do_sample=True)
    torch.manual_seed(5)
    assert _same(plain, gen.generate(samples, "cot", n=2, max_new_tokens=5, do_sample=True))


class _Scripted(Generator):
    """A backend that answers from a table and records its calls."""

    name = "scripted"

    def __init__(self):
        self.calls = []

    def generate(self, samples, mode, n=1, max_new_tokens=256, temperature=1.0, top_p=1.0, do_sample=True,
                 seed=None, text_only=False):
        self.calls.append((mode, [s["id"] for s in samples], max_new_tokens, do_sample, n))
        return [{"sample_id": s["id"], "sample_index": i, "mode": mode, "completion_text": s["answer"],
                 "completion_ids": torch.zeros(2, dtype=torch.long), "truncated": False}
                for i, s in enumerate(samples)]


def test_evaluate_model_routes_through_a_given_backend_without_a_model():
    samples = _samples()
    backend = _Scripted()
    result = evaluate_model(None, None, samples, max_new_tokens={"direct": 3, "cot": 9}, batch_size=2,
                            progress=False, generator=backend)
    # One call per mode with every prompt (the engine batches), greedy, the mode's budget.
    assert backend.calls == [("direct", ["s0", "s1", "s2"], 3, False, 1), ("cot", ["s0", "s1", "s2"], 9, False, 1)]
    assert {(r["id"], r["mode"]): r["output"] for r in result.records} == {
        (s["id"], m): s["answer"] for s in samples for m in ("direct", "cot")}
    assert all(r["n_tokens"] == 2 for r in result.records)


def test_generation_group_composes_with_hf_default_and_is_validated():
    for task in ("evaluate", "score", "train"):
        cfg = compose(task)
        assert generation_settings(cfg)["backend"] == "hf"
        check_config(cfg, task)
        assert compose(task, ["generation=vllm"]).generation.backend == "vllm"
    cfg = compose("evaluate", ["generation.backend=vllm", "generation.vllm.max_num_seqs=4"])
    assert generation_settings(cfg)["vllm"]["max_num_seqs"] == 4 and cfg.generation.vllm.enforce_eager is True
    with pytest.raises(ConfigError) as err:
        check_config(compose("evaluate", ["generation.backend=tgi", "generation.vllm.gpu_memory_utilization=0",
                                          "generation.vllm.kv_cache_space_gb=-1"]), "evaluate")
    for key in ("generation.backend='tgi'", "generation.vllm.gpu_memory_utilization=0",
                "generation.vllm.kv_cache_space_gb=-1"):
        assert key in str(err.value)
    assert generation_settings({})["backend"] == "hf"  # a config without the group


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_vllm_backend_without_vllm_fails_before_any_work_naming_the_env_command():
    with pytest.raises(ConfigError, match=r"generation.backend=vllm: vllm is not installed.*make vllm-env"):
        check_config(compose("evaluate", ["generation.backend=vllm"]), "evaluate")


def test_build_generator_hf_needs_the_model(tiny):
    model, processor = tiny
    cfg = compose("evaluate")
    assert isinstance(build_generator(cfg, "unused", processor, model=model), HFGenerator)
    with pytest.raises(ValueError, match="needs the loaded model"):
        build_generator(cfg, "unused", processor)


def test_torchvision_ops_hook_is_a_noop_where_the_ops_load():
    import sys

    from dualtune.generation import torchvision_ops

    torchvision_ops.install()
    torchvision_ops.install()
    hooks = [f for f in sys.meta_path if type(f).__name__ == "_BeforeMetaRegistrations"]
    assert len(hooks) == 1
    sys.meta_path.remove(hooks[0])
    import torchvision.extension

    if torchvision.extension._has_ops():  # the main venv: torch and torchvision from one build
        assert torchvision_ops.declare_missing_ops() == []


def test_load_processor_applies_the_config_pixel_limits(random_tiny_ckpt):
    """transformers 5 keeps the Qwen-VL size bounds in a SizeDict: the limits were silently ignored before."""
    from dualtune.models.loading import load_processor

    image = Image.new("RGB", (112, 112), "red")
    default = load_processor(random_tiny_ckpt).image_processor(images=[image], return_tensors="pt")
    limited = load_processor(random_tiny_ckpt, max_pixels=56 * 112, min_pixels=784).image_processor(
        images=[image], return_tensors="pt")
    assert default["image_grid_thw"].tolist() == [[1, 8, 8]]  # the checkpoint's 112x112 bound
    assert limited["image_grid_thw"].tolist() == [[1, 4, 4]]  # 12544 px > 6272: resized to 56x56
    bigger = load_processor(random_tiny_ckpt, max_pixels=448 * 448, min_pixels=224 * 224).image_processor(
        images=[image], return_tensors="pt")
    assert bigger["image_grid_thw"].tolist()[0][1] > 8  # a min_pixels above the image's size upsizes it
