"""generation.backend=vllm against the HF reference, in the vLLM environment (`make vllm-env`; run by .ci/vllm).

Skipped where vllm is not importable (the main venv). The engine runs in-process on CPU; the tiny model here
has head_dim 32 (vLLM's CPU attention has no kernel for the test overrides' head_dim 16: model.tiny.heads=2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from tests.conftest import TEST_MODEL_OVERRIDES, compose, sharpen_weights  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ["How many red circles are in the grid? Answer directly with a single number.",
          "<think>Row 1 has two circles, so 3.</think><answer>3</answer>",
          "Which color? Options: A. red B. blue C. green. Think step by step inside <think></think>."] * 4
MAX_PIXELS = 6272  # below the checkpoint processor's 12544: the engine must be given the config's limit
VLLM_TINY = ["model.tiny.heads=2"]


def _image(color: str, size=(112, 112)) -> Image.Image:
    """A white image with one colored top-left quadrant."""
    img = Image.new("RGB", size, "white")
    img.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), color), (0, 0))
    return img


def _samples() -> list[dict]:
    """One image per sample in three sizes, two images, an `<image k>` marker, and no image at all."""
    base = {"domain": "d", "subtask": "t", "options": [], "answer": "1", "answer_type": "number", "cot": ""}
    return [
        dict(base, id="red", images=[_image("red")], question="How many red squares?"),
        dict(base, id="blue", images=[_image("blue", (84, 140))], question="How many blue squares?"),
        dict(base, id="big", images=[_image("green", (300, 200))], question="Which color is it?",
             options=["red", "green"], answer="B", answer_type="choice"),
        dict(base, id="two", images=[_image("red"), _image("blue")], question="How many squares in total?"),
        dict(base, id="marker", images=[_image("green"), _image("red")],
             question="Compare <image 2> with <image 1>: how many red?"),
        dict(base, id="text", images=[], question="How many sides has a triangle?"),
    ]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    """A tiny Qwen2.5-VL (head_dim 32) with sharpened random weights, so greedy outputs depend on the input."""
    from dualtune.models.loading import load_model
    from dualtune.models.tiny import build_tiny_checkpoint

    path = build_tiny_checkpoint(tmp_path_factory.mktemp("vllm_tiny"), CORPUS, vocab_size=300, hidden_size=64,
                                 layers=2, heads=2, intermediate_size=128, vision_hidden=32, vision_depth=1)
    model = load_model(str(path), {"dtype": "float32"}, for_training=False)
    sharpen_weights(model)
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def backends(ckpt):
    """(HFGenerator, VLLMGenerator, state before/after the engine start) on the same checkpoint and pixel limits."""
    from dualtune.generation.hf import HFGenerator
    from dualtune.generation.vllm import VLLMGenerator
    from dualtune.models.loading import load_model, load_processor

    processor = load_processor(ckpt, MAX_PIXELS, 784)
    hf = HFGenerator(load_model(ckpt, {"dtype": "float32"}, for_training=False), processor, micro_batch_size=4)
    torch.manual_seed(11)
    before = (torch.get_num_threads(), torch.random.get_rng_state())
    engine = VLLMGenerator(ckpt, processor, min_pixels=784, max_pixels=MAX_PIXELS, dtype="float32")
    after = (torch.get_num_threads(), torch.random.get_rng_state())
    yield hf, engine, before, after
    engine.close()


def _rows(outs: list[dict]) -> list[tuple]:
    """Comparable completions: sample index, prompt ids, completion ids, text, truncated."""
    return [(o["sample_index"], o["prompt_ids"].tolist(), o["completion_ids"].tolist(), o["completion_text"],
             o["truncated"]) for o in outs]


@pytest.mark.parametrize("mode", ["direct", "cot"])
@pytest.mark.parametrize("text_only", [False, True])
def test_greedy_parity_with_images(backends, mode, text_only):
    hf, engine, _, _ = backends
    samples = _samples()
    ref = hf.generate(samples, mode, max_new_tokens=12, do_sample=False, text_only=text_only)
    got = engine.generate(samples, mode, max_new_tokens=12, do_sample=False, text_only=text_only)
    assert _rows(got) == _rows(ref)  # same prompt ids (images resized alike), tokens, text, truncation
    image_id = hf.processor.tokenizer.convert_tokens_to_ids(hf.processor.image_token)
    n_image_tokens = [o["prompt_ids"].tolist().count(image_id) for o in got]
    if text_only:
        assert n_image_tokens == [0] * len(samples)
    else:  # 112x112 at max_pixels 6272 -> 56x56 -> 4 tokens (16 at the checkpoint's own 12544)
        assert n_image_tokens[0] == 4 and n_image_tokens[3] == 8 and n_image_tokens[-1] == 0
    assert len({tuple(o["completion_ids"].tolist()) for o in got}) >= 3  # outputs depend on the input


def test_greedy_parity_per_sample_modes_and_budgets(backends):
    hf, engine, _, _ = backends
    samples, modes, budgets = _samples()[:4], ["direct", "cot", "cot", "direct"], {"direct": 3, "cot": 9}
    ref = hf.generate(samples, modes, max_new_tokens=budgets, do_sample=False)
    got = engine.generate(samples, modes, max_new_tokens=budgets, do_sample=False)
    assert _rows(got) == _rows(ref) and [o["mode"] for o in got] == modes
    for o in got:
        assert len(o["completion_ids"]) == budgets[o["mode"]] if o["truncated"] else \
            len(o["completion_ids"]) <= budgets[o["mode"]]


def test_engine_start_and_calls_restore_threads_and_rng(backends):
    hf, engine, before, after = backends
    assert after[0] == before[0] and torch.equal(after[1], before[1])
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    engine.generate(_samples()[:2], "cot", n=2, max_new_tokens=4, do_sample=True, seed=1)
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)


def test_sampling_shape_and_seeding(backends):
    _, engine, _, _ = backends
    samples = _samples()[:3]
    first = engine.generate(samples, "cot", n=4, max_new_tokens=8, do_sample=True, temperature=1.0, seed=3)
    assert len(first) == 12 and [o["sample_index"] for o in first] == [0] * 4 + [1] * 4 + [2] * 4
    assert [o["sample_id"] for o in first[::4]] == ["red", "blue", "big"]
    assert _rows(first) == _rows(engine.generate(samples, "cot", n=4, max_new_tokens=8, do_sample=True, seed=3))
    other = engine.generate(samples, "cot", n=4, max_new_tokens=8, do_sample=True, seed=4)
    assert _rows(other) != _rows(first)
    for i in range(3):  # the n completions of a sample are different draws
        assert len({tuple(o["completion_ids"].tolist()) for o in first[4 * i: 4 * i + 4]}) > 1
    eos = set(engine.eos_ids)
    for o in first:
        ids = o["completion_ids"].tolist()
        assert o["truncated"] == (ids[-1] not in eos) and not eos & set(ids[:-1])
        assert len(ids) == 8 if o["truncated"] else len(ids) <= 8
    # A sample's draws do not depend on the other samples of the call.
    alone = engine.generate(samples[:1], "cot", n=4, max_new_tokens=8, do_sample=True, seed=3)
    assert _rows(alone) == _rows(first[:4])


def test_seeded_sampling_of_many_image_prompts(backends):
    """Enough image prompts that the scheduler splits prefills: with chunked prefill vLLM rewinds each seeded
    request's generator, which a CPU torch Generator cannot do (it crashed RAP-sized calls before)."""
    _, engine, _, _ = backends
    samples = [dict(s, id=f"{s['id']}_{k}") for k in range(24) for s in _samples()[:3]]
    out = engine.generate(samples, "cot", n=5, max_new_tokens=4, do_sample=True, seed=5)
    assert len(out) == 5 * len(samples) and all(len(o["completion_ids"]) >= 1 for o in out)


def _evaluate_overrides(ckpt, cache_dir, out) -> list[str]:
    """A small lab evaluation of the sharpened tiny checkpoint at the config's (non-default) pixel limit."""
    return [f"checkpoint={ckpt}", f"cache_dir={cache_dir}", f"output_dir={out}", *TEST_MODEL_OVERRIDES, *VLLM_TINY,
            f"model.max_pixels={MAX_PIXELS}", "domain=math", "domain.n_train_per_subtask=1",
            "domain.n_test_per_subtask=2", "mode.max_new_tokens.direct=4", "mode.max_new_tokens.cot=16"]


def test_evaluate_end_to_end_from_the_command_line(ckpt, cache_dir, tmp_path):
    """`python evaluate.py generation.backend=vllm ...` equals the HF backend's evaluation, record by record."""
    from dualtune.recipes.evaluate import evaluate

    reference = evaluate(compose("evaluate", _evaluate_overrides(ckpt, cache_dir, tmp_path / "hf")))
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled")
    run = subprocess.run([sys.executable, "evaluate.py", "generation.backend=vllm",
                          *_evaluate_overrides(ckpt, cache_dir, tmp_path / "vllm")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "vLLM engine on" in run.stdout + run.stderr + "".join(
        p.read_text() for p in (tmp_path / "vllm").glob("*.log"))
    preds = [json.loads(line) for line in (tmp_path / "vllm" / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == len(reference.records) == 4 * 2 * 2  # 4 subtasks x 2 items x 2 modes
    key = ("id", "mode", "output", "n_tokens", "truncated", "score", "status")
    assert [{k: p[k] for k in key} for p in preds] == [{k: r[k] for k in key} for r in reference.records]
    assert len({p["output"] for p in preds if p["mode"] == "cot"}) >= 3  # not a constant model


def test_rap_rollouts_through_the_engine_match_hf_greedy(backends):
    """RAP's two conditions through `GeneratorRolloutBackend`: greedy rollouts equal the HF backend's."""
    from dualtune.scoring.rollouts import GeneratorRolloutBackend, HFRolloutBackend, RolloutSettings, condition_inputs

    hf, engine, _, _ = backends
    samples = _samples()[:4]
    settings = RolloutSettings(mode="cot", num_generations=2, max_new_tokens=10, do_sample=False)
    ref_backend = HFRolloutBackend(hf.model, hf.processor, micro_batch_size=4)
    for condition in ("mm", "txt"):
        inputs = condition_inputs(samples, condition)
        ref = ref_backend.generate(inputs, condition, settings, 2, seed=9)
        got = GeneratorRolloutBackend(engine).generate(inputs, condition, settings, 2, seed=9)
        assert got == ref and [len(r) for r in got] == [2] * 4


def test_score_end_to_end_from_the_command_line(ckpt, cache_dir, tmp_path):
    """`python score.py selection=rap generation.backend=vllm ...` (vLLM rollouts, HF attention for ACE) gives the
    HF backend's scores when decoding is greedy; its rollouts and scores live apart from the HF ones."""
    import numpy as np
    import pandas as pd

    from dualtune.recipes.score import score

    overrides = [f"model.path={ckpt}", f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES, *VLLM_TINY, "selection=rap",
                 "domain=math", "domain.n_train_per_subtask=2", "domain.n_test_per_subtask=1",
                 "selection.rollouts.num_generations=2", "+selection.rollouts.do_sample=false",
                 "selection.rollouts.max_new_tokens=12", "score.plots=false"]
    score(compose("score", [*overrides, f"output_dir={tmp_path / 'hf'}"]))
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled")
    run = subprocess.run([sys.executable, "score.py", "generation.backend=vllm", *overrides,
                          f"output_dir={tmp_path / 'vllm'}"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    ref, got = (pd.read_parquet(tmp_path / name / "scores.parquet") for name in ("hf", "vllm"))
    assert len(got) == len(ref) == 8
    exact = ["id", "p_mm", "mm_tokens", "p_txt", "txt_tokens", "cde_gap", "ace_argmax_col", "kept", "reason"]
    assert got[exact].equals(ref[exact])
    # ACE re-reads the same completions with the HF model (another process: float noise only).
    assert np.allclose(got["ace_log_psi"], ref["ace_log_psi"], rtol=1e-5)
    provenance = json.loads((tmp_path / "vllm" / "provenance.json").read_text())
    assert provenance["model"]["generation_backend"] == "vllm"
    assert "generation_backend" not in json.loads((tmp_path / "hf" / "provenance.json").read_text())["model"]


def _video_samples(tmp_path) -> list[dict]:
    """Samples showing a video file (meta.video, decoded by data/video.py), one of them with an image too: one
    temporal patch (2 frames), and two (4 frames 0.5 s apart, 112x112). Not a clip whose temporal M-RoPE extent
    exceeds its spatial one: there transformers (5.19, 5.24) continues the text positions after max(h, w) / merge
    while vLLM, like the original Qwen2.5-VL, continues after the largest position, so greedy outputs differ."""
    from tests.video_files import write_mp4

    base = {"domain": "d", "subtask": "t", "options": [], "answer": "1", "answer_type": "number", "cot": ""}
    spec = [{"path": str(write_mp4(tmp_path / "a.mp4", n_frames=8)), "fps": 2.0, "max_frames": 2, "max_pixels": 3136},
            {"path": str(write_mp4(tmp_path / "b.mp4", n_frames=4, size=112, fps=4)), "fps": 4.0, "max_frames": 4,
             "max_pixels": 12544}]
    return [dict(base, id="clip_a", images=[], question="How many squares move?", meta=json.dumps({"video": spec[0]})),
            dict(base, id="clip_b", images=[], question="What moves right?", meta=json.dumps({"video": spec[1]})),
            dict(base, id="clip_img", images=[_image("red")], question="Is <image 1> in the clip?",
                 meta=json.dumps({"video": spec[0]}))]


@pytest.mark.parametrize("mode", ["direct", "cot"])
def test_greedy_parity_with_video_files(backends, mode, tmp_path):
    """Video files through the engine: the reference's frames (same sampled indices, fps metadata), so the same
    video placeholders and the same greedy tokens; the text-only condition drops the video."""
    hf, engine, _, _ = backends
    samples = _video_samples(tmp_path)
    for text_only in (False, True):
        ref = hf.generate(samples, mode, max_new_tokens=10, do_sample=False, text_only=text_only)
        got = engine.generate(samples, mode, max_new_tokens=10, do_sample=False, text_only=text_only)
        assert _rows(got) == _rows(ref)
        video_id = hf.processor.tokenizer.convert_tokens_to_ids(hf.processor.video_token)
        n_video = [o["prompt_ids"].tolist().count(video_id) for o in got]
        assert n_video == ([0, 0, 0] if text_only else [4, 32, 4])  # 1x4x4 and 2x8x8 patches, merged 2x2
    assert len({tuple(o["completion_ids"].tolist()) for o in got}) >= 2


def test_close_frees_the_engine_and_a_new_one_starts_in_this_process(backends, ckpt):
    from dualtune.generation.vllm import VLLMGenerator

    hf, engine, _, _ = backends
    engine.close()  # the module's engine: this test is the last one that uses it
    assert engine.llm is None
    sample = _samples()[:1]
    with VLLMGenerator(ckpt, hf.processor, min_pixels=784, max_pixels=MAX_PIXELS) as again:
        assert _rows(again.generate(sample, "cot", max_new_tokens=6, do_sample=False)) == \
            _rows(hf.generate(sample, "cot", max_new_tokens=6, do_sample=False))
    assert again.llm is None
