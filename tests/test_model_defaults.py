"""Real-model budgets (conf/model: max_new_tokens, max_length) reach the recipes, with explicit overrides
winning; and the InternVL path trains: encoding passes through whatever vision inputs the processor returns
(a real tiny InternVL built from a config, `tests/tiny_internvl.py`)."""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from dualtune.config_checks import check_config
from dualtune.data.encoding import collate_train, encode_train_example
from dualtune.recipes.evaluate import eval_settings
from dualtune.recipes.grpo import generation_budget, grpo_algo_cfg
from tests.conftest import compose
from tests.tiny_internvl import build_tiny_internvl

REAL = {"qwen2_5_vl_3b": ({"direct": 64, "cot": 2048}, 4096), "qwen2_5_vl_7b": ({"direct": 64, "cot": 2048}, 4096),
        "qwen3_vl_4b": ({"direct": 64, "cot": 4096}, 8192), "internvl3_2b": ({"direct": 64, "cot": 2048}, 8192)}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_model_budgets_reach_every_recipe(name):
    budgets, max_length = REAL[name]
    sft = compose("train", [f"model={name}"])
    check_config(sft, "train")
    assert eval_settings(sft)["max_new_tokens"] == budgets  # evaluation (base and tuned) and its cache key
    assert sft.algo.max_length == max_length  # SFT: prompt + target
    for algo in ("grpo", "sft_then_grpo"):
        cfg = compose("train", [f"model={name}", f"algo={algo}"])
        check_config(cfg, "train")
        grpo = grpo_algo_cfg(cfg.algo)
        assert generation_budget(grpo, cfg.mode) == budgets and grpo.max_length == max_length
        overlong = OmegaConf.to_container(grpo.reward_options, resolve=True)["overlong"]
        assert overlong["max_len"] == budgets  # DAPO's soft overlong penalty follows the generation budget
    score = compose("score", [f"model={name}", "selection=rap"])
    assert score.mode.max_new_tokens[score.selection.rollouts.mode] == budgets["cot"]  # RAP rollouts


def test_explicit_overrides_win_and_the_tiny_model_keeps_its_budgets():
    cfg = compose("train", ["model=qwen2_5_vl_7b", "mode.max_new_tokens.cot=100", "algo.max_length=999"])
    assert eval_settings(cfg)["max_new_tokens"] == {"direct": 64, "cot": 100} and cfg.algo.max_length == 999
    smoke = compose("train", ["model=qwen3_vl_4b", "experiment=smoke"])  # an experiment's budgets win too
    assert eval_settings(smoke)["max_new_tokens"] == {"direct": 8, "cot": 24}
    grpo = compose("train", ["model=qwen3_vl_4b", "algo=grpo", "algo.max_new_tokens=300"])
    assert generation_budget(grpo.algo, grpo.mode) == {"direct": 300, "cot": 300}  # algo's own budget first
    tiny = compose("train")
    assert eval_settings(tiny)["max_new_tokens"] == {"direct": 16, "cot": 160} and tiny.algo.max_length == 512
    assert compose("train", ["algo=grpo"]).algo.max_length is None  # tiny GRPO: no prompt-length check, as before
    bare = compose("train", ["model=qwen2_5_vl_3b", "~model.max_new_tokens", "~model.max_length"])
    assert eval_settings(bare)["max_new_tokens"] == {"direct": 16, "cot": 160} and bare.algo.max_length == 512


def test_bad_model_budgets_are_named():
    from dualtune.config_checks import ConfigError

    with pytest.raises(ConfigError, match=r"model.max_new_tokens=.*expected a mapping"):
        check_config(compose("train", ["model=qwen2_5_vl_3b", "model.max_new_tokens.cot=0"]), "train")
    with pytest.raises(ConfigError, match=r"model.max_length=0"):
        check_config(compose("train", ["model=qwen2_5_vl_3b", "model.max_length=0"]), "train")


@pytest.fixture(scope="module")
def internvl(tmp_path_factory):
    corpus = ["How many? Answer directly with a single number. Options: A. B. C. D.",
              "<think>one</think><answer>1</answer>"] * 4
    return str(build_tiny_internvl(tmp_path_factory.mktemp("tiny_internvl"), corpus))


def _sample(sid, images):
    return {"id": sid, "domain": "math", "subtask": "t", "images": images, "video": [], "question": "How many?",
            "options": [], "answer": "1", "answer_type": "number", "cot": "one", "source": "test", "meta": "{}"}


def test_internvl_encoding_passes_its_vision_inputs_and_trains(internvl):
    """Old code: KeyError 'image_grid_thw' (encoding copied Qwen's keys); InternVL returns pixel_values only."""
    from dualtune.models.loading import load_model, load_processor

    cfg = compose("train", ["model=internvl3_2b", f"model.path={internvl}", "model.dtype=float32"])
    processor = load_processor(internvl, cfg.model.get("max_pixels"), cfg.model.get("min_pixels"))
    with_image = encode_train_example(processor, _sample("a", [Image.new("RGB", (40, 30), "red")]), "cot")
    text_only = encode_train_example(processor, _sample("b", []), "direct")
    assert "pixel_values" in with_image and "image_grid_thw" not in with_image
    assert with_image["pixel_values"].shape[1:] == (3, 28, 28)
    # The placeholder check covers InternVL too: image_seq_length <IMG_CONTEXT> tokens per tile.
    from dualtune.data.encoding import _check_image_tokens, expected_image_tokens

    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    expected = expected_image_tokens(processor, with_image)
    assert expected == with_image["pixel_values"].shape[0] * processor.image_seq_length
    assert int((with_image["input_ids"] == image_id).sum()) == expected
    cut = with_image["input_ids"][with_image["input_ids"] != image_id]  # every image placeholder dropped
    with pytest.raises(ValueError, match="image token mismatch"):
        _check_image_tokens(processor, cut, with_image)
    batch = collate_train([with_image, text_only], processor.tokenizer.pad_token_id)
    assert batch["pixel_values"].shape[0] == with_image["pixel_values"].shape[0]
    assert batch["input_ids"].shape == batch["labels"].shape and batch["input_ids"].shape[0] == 2
    model = load_model(internvl, cfg.model)  # LoRA on the language model, vision tower frozen (the real config)
    model.train()
    loss = model(**batch).loss
    assert math.isfinite(loss.item())
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    assert grads and any(g is not None and torch.any(g != 0) for g in grads)


def test_internvl_train_recipe_one_step(internvl, cache_dir, tmp_path):
    """`python train.py model=internvl3_2b model.path=<ckpt>` (one SFT step, evaluation off) saves a model."""
    from dualtune.recipes.train import train

    cfg = compose("train", ["model=internvl3_2b", f"model.path={internvl}", "model.dtype=float32", "domain=math",
                            "domain.n_train_per_subtask=2", "algo.max_steps=1", "algo.batch_size=4",
                            "eval.enabled=false", "logger=none", f"cache_dir={cache_dir}",
                            f"output_dir={tmp_path / 'out'}"])
    train(cfg)
    saved = list((tmp_path / "out").rglob("adapter_config.json")) + list((tmp_path / "out").rglob("config.json"))
    assert saved, "the tuned InternVL was not saved"


def test_internvl_evaluate_recipe(internvl, cache_dir, tmp_path):
    """`python evaluate.py model=internvl3_2b model.path=<ckpt>`: generation with InternVL's vision inputs."""
    import pandas as pd

    from dualtune.recipes.evaluate import evaluate

    cfg = compose("evaluate", ["model=internvl3_2b", f"model.path={internvl}", "model.dtype=float32", "domain=math",
                               "domain.n_test_per_subtask=1", "mode.max_new_tokens.direct=2",
                               "mode.max_new_tokens.cot=3", f"cache_dir={cache_dir}", f"output_dir={tmp_path}"])
    evaluate(cfg)
    preds = pd.read_json(tmp_path / "predictions.jsonl", lines=True)
    assert len(preds) == 4 * 2 and set(preds["status"]) == {"evaluated"}


def test_internvl_max_patches_bounds_the_tiles(internvl, tiny_model_path):
    """model.max_patches sets InternVL's tiles per image (fewer tiles, fewer image tokens); a processor that does
    not tile (Qwen-VL) refuses it by name."""
    from dualtune.models.loading import load_processor, processor_for

    wide = _sample("w", [Image.new("RGB", (112, 56), "red")])
    default = encode_train_example(load_processor(internvl), wide, "direct")
    cfg = compose("train", ["model=internvl3_2b", f"model.path={internvl}", "model.max_patches=1"])
    check_config(cfg, "train")
    one = encode_train_example(processor_for(internvl, cfg.model), wide, "direct")
    assert default["pixel_values"].shape[0] == 3 and one["pixel_values"].shape[0] == 1  # 2 tiles + thumbnail -> 1
    assert len(one["input_ids"]) == len(default["input_ids"]) - 2  # one image token a tile (the tiny's tiles)
    with pytest.raises(ValueError, match="max_patches=2: .* does not tile"):
        load_processor(tiny_model_path, max_patches=2)
