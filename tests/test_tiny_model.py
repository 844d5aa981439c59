"""The embedded tiny model goes through the real path: build -> save_pretrained -> Auto* load -> forward -> generate."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from dualtune.data.encoding import (
    OverlongError, collate_train, encode_generation_batch, encode_many, encode_train_example)
from dualtune.models.loading import load_model, load_processor, model_fingerprint
from dualtune.models.tiny import SPECIAL_TOKENS, build_tiny_checkpoint

CORPUS = ["What color is the shape in row 1, column 2?", "red: 3. blue: 2. 3 + 2 = 5.",
          "Options:\nA. red\nB. blue\nAnswer directly with the option letter."] * 20
MODEL_CFG = OmegaConf.create({"dtype": "float32", "attn_implementation": "sdpa", "freeze_vision": True,
                              "vision_modules": ["visual.patch_embed", "visual.blocks"],
                              "lora": {"enabled": False}})


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), CORPUS, vocab_size=300, hidden_size=64,
                                     layers=2, intermediate_size=128, vision_hidden=32, vision_depth=1))


def _sample(i=0, color="red", video=False):
    img = Image.new("RGB", (112, 112), color)
    return {"id": f"s{i}", "question": "What color is the shape?", "options": ["red", "blue"], "answer": "A",
            "answer_type": "choice", "cot": "The shape is red.", "images": [] if video else [img],
            "video": [Image.new("RGB", (56, 56), color)] * 3 if video else []}


def test_auto_classes_load_real_architecture(ckpt):
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    assert AutoConfig.from_pretrained(ckpt).model_type == "qwen2_5_vl"
    model = AutoModelForImageTextToText.from_pretrained(ckpt)
    processor = AutoProcessor.from_pretrained(ckpt)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    vocab = processor.tokenizer.get_vocab()
    assert all(tok in vocab for tok in SPECIAL_TOKENS)
    assert model.config.image_token_id == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")


def test_forward_with_images_and_generate(ckpt):
    processor = load_processor(ckpt)
    model = load_model(ckpt, MODEL_CFG, for_training=False)
    enc = encode_generation_batch(processor, [_sample(0), _sample(1, "blue", video=True)], "direct")
    # 112x112 image -> 4x4 merged tokens; each 56x56 frame -> 2x2 merged tokens.
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((enc["input_ids"][0] == image_id).sum()) == 16
    assert int((enc["input_ids"][1] == image_id).sum()) == 12
    with torch.no_grad():
        out = model(**enc)
        assert out.logits.shape[:2] == enc["input_ids"].shape
        gen = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert gen.shape[0] == 2 and gen.shape[1] > enc["input_ids"].shape[1]


def test_training_example_masks_prompt_and_never_truncates(ckpt):
    processor = load_processor(ckpt)
    ex = encode_train_example(processor, _sample(), "cot", max_length=512)
    target = processor.tokenizer.decode(ex["labels"][ex["labels"] != -100])
    assert target.startswith("<think>") and target.endswith("<|im_end|>")
    assert "<answer>A</answer>" in target
    with pytest.raises(OverlongError):
        encode_train_example(processor, _sample(), "cot", max_length=20)
    examples, skipped = encode_many(processor, [_sample(0), _sample(1)], ["direct", "cot"], max_length=40)
    assert skipped["overlong"] >= 1 and len(examples) + skipped["overlong"] == 2
    batch = collate_train([encode_train_example(processor, _sample(i), m) for i, m in enumerate(["direct", "cot"])],
                          processor.tokenizer.pad_token_id)
    assert batch["pixel_values"].shape[0] == 2 * 64 and batch["image_grid_thw"].shape == (2, 3)


def test_freeze_vision_and_lora(ckpt):
    model = load_model(ckpt, MODEL_CFG)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all("visual" in n for n in frozen)
    lora_cfg = OmegaConf.merge(MODEL_CFG, {"freeze_vision": False, "lora": {
        "enabled": True, "r": 4, "alpha": 8, "dropout": 0.0,
        "target_modules": r".*language_model.*\.(q_proj|v_proj)"}})
    peft_model = load_model(ckpt, lora_cfg)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "visual" not in n for n in trainable)


def test_fingerprint_changes_with_weights(ckpt, tmp_path):
    other = build_tiny_checkpoint(tmp_path / "other", CORPUS, seed=1, vocab_size=300, hidden_size=64, layers=2,
                                  intermediate_size=128, vision_hidden=32, vision_depth=1)
    assert model_fingerprint(ckpt) == model_fingerprint(ckpt)
    assert model_fingerprint(ckpt) != model_fingerprint(other)


def test_vision_tower_gets_scaled_learning_rate(ckpt):
    from dualtune.training.schedules import param_groups

    model = load_model(ckpt, OmegaConf.merge(MODEL_CFG, {"freeze_vision": False}))
    groups = param_groups(model, lr=1e-3, vision_lr_scale=0.1, vision_patterns=("visual.",))
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    n_vision = sum(p.numel() for n, p in model.named_parameters() if n.startswith("model.visual."))
    assert sum(p.numel() for p in groups[1]["params"]) == n_vision
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in model.parameters())


def test_base_cache_key_follows_the_generic_mixture_content(tmp_path, monkeypatch):
    from dualtune.lab.registry import GENERIC_SUBTASKS
    from dualtune.models.base import tiny_base_dir
    from tests.conftest import compose

    cfg = compose("train", [f"cache_dir={tmp_path}"])
    before = tiny_base_dir(cfg.model, tmp_path)
    assert before == tiny_base_dir(cfg.model, tmp_path) and before.parent == tmp_path / "models"
    # Changing what the mixture generates (here one knob) must name another base, LAB_VERSION unchanged.
    knobs = GENERIC_SUBTASKS["generic_count_all"].knobs
    monkeypatch.setitem(knobs, "language_prior_rate", knobs["language_prior_rate"] + 0.3)
    assert tiny_base_dir(cfg.model, tmp_path) != before


def test_hub_id_fingerprint_follows_the_cached_revision(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--org--tiny-vl"
    assert model_fingerprint("org/tiny-vl") == model_fingerprint("org/tiny-vl")  # not downloaded: the id
    not_downloaded = model_fingerprint("org/tiny-vl")
    for commit, hidden in (("a" * 40, 64), ("b" * 40, 96)):  # the hub cache layout: refs/main -> snapshots/<sha>
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True)
        (snapshot / "config.json").write_text(f'{{"hidden_size": {hidden}}}')
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        if commit.startswith("a"):
            first = model_fingerprint("org/tiny-vl")
            assert first != not_downloaded and first == model_fingerprint(snapshot)
    assert model_fingerprint("org/tiny-vl") not in (first, not_downloaded)  # a new revision, a new fingerprint
