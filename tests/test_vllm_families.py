"""generation.backend=vllm for the other model families (conf/model/internvl3_2b.yaml, conf/model/qwen3_vl_4b.yaml):
a tiny InternVL in the transformers-native "-hf" format (vLLM serves `InternVLForConditionalGeneration` with its
InternS1 class) and a tiny Qwen3-VL, each against the HF reference, greedy, on images and video files.

In the vLLM environment only (`make vllm-env`; run by .ci/vllm); skipped where vllm is not importable. One engine
at a time: the family fixture is module-scoped and parametrized, so pytest closes one family's engine before it
starts the next. Both models have head_dim 32 (vLLM's CPU attention has no head_dim 16 kernel).
"""

from __future__ import annotations

import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

import torch  # noqa: E402

from tests.conftest import sharpen_weights  # noqa: E402
from tests.test_vllm_generation import CORPUS, _rows, _samples, _video_samples  # noqa: E402

# The config's pixel limits for each family: Qwen3-VL's bound the image (32-px cells: 112x112 -> 64x64 -> 2x2 = 4
# tokens, 16 at the checkpoint's own 128x128 limit); InternVL tiles at a fixed size and ignores them, in both backends.
PIXELS = {"internvl": (784, 6272), "qwen3_vl": (1024, 4096)}
# Image placeholders per sample of `_samples()` (red 112x112, blue 84x140, big 300x200, two, marker, text): InternVL
# writes one <IMG_CONTEXT> per 28-px tile (1 tile, or 2 tiles + a thumbnail), Qwen3-VL one <|image_pad|> per cell.
IMAGE_TOKENS = {"internvl": [1, 3, 3, 2, 2, 0], "qwen3_vl": [4, 2, 2, 8, 8, 0]}
# Video placeholders per sample of `_video_samples` (2 frames, 4 frames, 2 frames + an image): InternVL one
# <IMG_CONTEXT> per frame (+ the image's), Qwen3-VL 1x4x4 and 2x8x8 patches merged 2x2 (the video processor's limits).
VIDEO_TOKENS = {"internvl": [2, 4, 3], "qwen3_vl": [4, 8, 4]}


def _build(family: str, out_dir) -> str:
    """The family's tiny checkpoint with sharpened random weights (greedy outputs depend on the input)."""
    from dualtune.models.loading import load_model

    if family == "internvl":
        from tests.tiny_internvl import build_tiny_internvl

        path = build_tiny_internvl(out_dir, CORPUS, heads=2)
    else:
        from tests.tiny_qwen3vl import build_tiny_qwen3vl

        path = build_tiny_qwen3vl(out_dir, CORPUS)
    model = load_model(str(path), {"dtype": "float32"}, for_training=False)
    sharpen_weights(model)
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module", params=["internvl", "qwen3_vl"])
def family(request, tmp_path_factory):
    """(family, HFGenerator, VLLMGenerator) on one tiny checkpoint, both given the family's config pixel limits."""
    from dualtune.generation.hf import HFGenerator
    from dualtune.generation.vllm import VLLMGenerator
    from dualtune.models.loading import load_model, load_processor

    name = request.param
    path = _build(name, tmp_path_factory.mktemp(f"vllm_{name}"))
    min_pixels, max_pixels = PIXELS[name]
    processor = load_processor(path, max_pixels, min_pixels)
    hf = HFGenerator(load_model(path, {"dtype": "float32"}, for_training=False), processor, micro_batch_size=4)
    engine = VLLMGenerator(path, processor, min_pixels=min_pixels, max_pixels=max_pixels, dtype="float32")
    yield name, hf, engine
    engine.close()


def _count(outs: list[dict], token_id: int) -> list[int]:
    """How often ``token_id`` occurs in each completion's prompt."""
    return [o["prompt_ids"].tolist().count(token_id) for o in outs]


def test_engine_arguments_per_family(family):
    """Pixel limits reach Qwen3-VL's engine as a size (missing bound from the reference processor) and are left
    out for InternVL, whose vLLM processor rejects them; only InternVL's video placeholder is remapped."""
    from dualtune.generation.vllm import engine_placeholder_ids, image_size_kwargs

    name, hf, engine = family
    processor, convert = hf.processor, hf.processor.tokenizer.convert_tokens_to_ids
    if name == "qwen3_vl":
        assert image_size_kwargs(processor, 1024, 4096) == {"size": {"shortest_edge": 1024, "longest_edge": 4096}}
        assert image_size_kwargs(processor, None, 8192) == {"size": {"shortest_edge": 1024, "longest_edge": 8192}}
        assert engine_placeholder_ids(processor) == {} == engine.video_placeholders
    else:
        assert image_size_kwargs(processor, 784, 6272) == {}
        assert engine.video_placeholders == {convert("<video>"): convert("<IMG_CONTEXT>")}
    assert image_size_kwargs(processor) == {}


@pytest.mark.parametrize("mode", ["direct", "cot"])
def test_greedy_parity_with_images(family, mode):
    """Same prompt ids (placeholders expanded alike, at the config's pixel limits), tokens, text and truncation,
    with the images and in the text-only condition."""
    name, hf, engine = family
    samples = _samples()
    image_id = hf.processor.tokenizer.convert_tokens_to_ids(hf.processor.image_token)
    for text_only in (False, True):
        ref = hf.generate(samples, mode, max_new_tokens=12, do_sample=False, text_only=text_only)
        got = engine.generate(samples, mode, max_new_tokens=12, do_sample=False, text_only=text_only)
        assert _rows(got) == _rows(ref)
        assert _count(got, image_id) == ([0] * len(samples) if text_only else IMAGE_TOKENS[name])
        assert len({tuple(o["completion_ids"].tolist()) for o in got}) >= 3  # outputs depend on the input


def test_greedy_parity_per_sample_modes_and_budgets(family):
    _, hf, engine = family
    samples, modes, budgets = _samples()[:4], ["direct", "cot", "cot", "direct"], {"direct": 3, "cot": 9}
    ref = hf.generate(samples, modes, max_new_tokens=budgets, do_sample=False)
    got = engine.generate(samples, modes, max_new_tokens=budgets, do_sample=False)
    assert _rows(got) == _rows(ref) and [o["mode"] for o in got] == modes
    assert all(len(o["completion_ids"]) <= budgets[o["mode"]] for o in got)


@pytest.mark.parametrize("mode", ["direct", "cot"])
def test_greedy_parity_with_video_files(family, mode, tmp_path):
    """Video files: the reference's frames; InternVL's prompt ids equal the reference's only because the engine's
    `<video>` frame placeholders are mapped back to `<IMG_CONTEXT>` (`engine_placeholder_ids`)."""
    name, hf, engine = family
    samples = _video_samples(tmp_path)
    tokenizer = hf.processor.tokenizer
    placeholder = hf.processor.image_token if name == "internvl" else hf.processor.video_token
    for text_only in (False, True):
        ref = hf.generate(samples, mode, max_new_tokens=10, do_sample=False, text_only=text_only)
        got = engine.generate(samples, mode, max_new_tokens=10, do_sample=False, text_only=text_only)
        assert _rows(got) == _rows(ref)
        assert _count(got, tokenizer.convert_tokens_to_ids(placeholder)) == \
            ([0, 0, 0] if text_only else VIDEO_TOKENS[name])
    if name == "internvl":
        assert _count(got, tokenizer.convert_tokens_to_ids("<video>")) == [0, 0, 0]


def test_seeded_sampling(family):
    """Sampling: n draws per sample, reproducible for a seed, cut after the first EOS, threads/RNG untouched."""
    _, _, engine = family
    samples = _samples()[:3]
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    first = engine.generate(samples, "cot", n=3, max_new_tokens=8, do_sample=True, seed=3)
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)
    assert [o["sample_index"] for o in first] == [0] * 3 + [1] * 3 + [2] * 3
    assert _rows(first) == _rows(engine.generate(samples, "cot", n=3, max_new_tokens=8, do_sample=True, seed=3))
    assert _rows(first) != _rows(engine.generate(samples, "cot", n=3, max_new_tokens=8, do_sample=True, seed=4))
    eos = set(engine.eos_ids)
    for o in first:
        ids = o["completion_ids"].tolist()
        assert o["truncated"] == (ids[-1] not in eos) and not eos & set(ids[:-1])


def test_weight_push_keeps_parity(family):
    """GRPO's weight sync (`training.engine_sync`: checkpoint-named weights loaded in place) works for the family:
    after new weights are pushed, the engine's greedy outputs change and equal the HF model's again. Last test of
    a family: it changes that family's weights."""
    from dualtune.training.engine_sync import policy_weights, push_weights

    _, hf, engine = family
    samples = _samples()
    before = engine.generate(samples, "cot", max_new_tokens=10, do_sample=False)
    sharpen_weights(hf.model, seed=5)
    push_weights(engine.llm, policy_weights(hf.model))
    got = engine.generate(samples, "cot", max_new_tokens=10, do_sample=False)
    assert _rows(got) != _rows(before)
    assert _rows(got) == _rows(hf.generate(samples, "cot", max_new_tokens=10, do_sample=False))
