"""``model.max_patches`` (InternVL's tiles per image) reaches the vLLM engine as it reaches the HF reference:
the same prompt ids (fewer image tokens than the checkpoint's default) and the same greedy completions.

In the vLLM environment only (`make vllm-env`; run by .ci/vllm). Its own module, so its engine never
overlaps the family fixture's engine of tests/test_vllm_families.py (module-scoped, closed at module end)."""

from __future__ import annotations

import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

from tests.test_vllm_families import IMAGE_TOKENS, _build, _count  # noqa: E402
from tests.test_vllm_generation import _rows, _samples  # noqa: E402


def test_internvl_max_patches_reaches_the_engine(tmp_path):
    from dualtune.generation.hf import HFGenerator
    from dualtune.generation.vllm import VLLMGenerator, image_size_kwargs
    from dualtune.models.loading import load_model, load_processor

    path = _build("internvl", tmp_path)
    processor = load_processor(path, max_patches=1)
    assert image_size_kwargs(processor, None, None, 1) == {"max_patches": 1}
    hf = HFGenerator(load_model(path, {"dtype": "float32"}, for_training=False), processor, micro_batch_size=4)
    engine = VLLMGenerator(path, processor, max_patches=1, dtype="float32")
    try:
        samples = _samples()
        image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
        ref = hf.generate(samples, "direct", max_new_tokens=8, do_sample=False)
        got = engine.generate(samples, "direct", max_new_tokens=8, do_sample=False)
        assert _rows(got) == _rows(ref)
        counts = _count(got, image_id)
        # One tile an image (no thumbnail once a single tile covers it): fewer than the default 2 tiles + thumbnail.
        assert counts == _count(ref, image_id) and sum(counts) < sum(IMAGE_TOKENS["internvl"])
    finally:
        engine.close()
