"""RAP scoring on the real tiny model: text-only prompts, reasoning span, ACE attention capture,
the recipe end to end (score -> reuse from train.py -> released-code variant) and the score.py CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from dualtune.data.encoding import encode_generation_batch
from dualtune.data.sources import load_domain
from dualtune.models.loading import load_model, load_processor
from dualtune.recipes.select import run_selection, select_training_rows
from dualtune.scoring import AceSettings, ace_for_rollouts, layer_attention, reasoning_span, strip_images
from dualtune.training.rollout import build_policy_batch, encode_prompt
from tests.conftest import CONF_DIR, TEST_MODEL_OVERRIDES, compose

ROOT = Path(CONF_DIR).parent
TINY = ["domain=math", "domain.n_train_per_subtask=3"]
RAP = ["selection=rap", "selection.rollouts.num_generations=2", "selection.rollouts.max_new_tokens=10"]


@pytest.fixture(scope="module")
def tiny(tiny_model_path):
    cfg = compose("score", TEST_MODEL_OVERRIDES)
    return load_model(tiny_model_path, cfg.model, for_training=False), load_processor(tiny_model_path)


@pytest.fixture(scope="module")
def rows(cache_dir, tiny_model_path):
    return load_domain(compose("score", [f"cache_dir={cache_dir}", *TINY]).domain, cache_dir)["train"]


def test_text_only_input_has_no_image_or_placeholder(tiny, rows):
    _, processor = tiny
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    mm = encode_prompt(processor, rows[0], "cot")
    txt = encode_prompt(processor, strip_images(rows[0]), "cot")
    reference = encode_generation_batch(processor, [rows[0]], "cot", text_only=True)
    assert torch.equal(txt["input_ids"], reference["input_ids"][0])
    assert int((mm["input_ids"] == image_id).sum()) > 0 and int((txt["input_ids"] == image_id).sum()) == 0
    assert "pixel_values" in mm and "pixel_values" not in txt
    assert rows[0]["images"] and strip_images(rows[0])["question"] == rows[0]["question"]


def test_reasoning_span_covers_exactly_the_thought(tiny):
    _, processor = tiny
    tok = processor.tokenizer
    ids = tok("<think>red: 3. blue: 2.</think><answer>5</answer>", add_special_tokens=False)["input_ids"]
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    start, stop = reasoning_span(tok, ids + [eos], "reasoning", eos_ids=[eos])
    assert tok.decode(ids[start:stop]).strip() == "red: 3. blue: 2."
    assert reasoning_span(tok, ids + [eos], "generated", eos_ids=[eos]) == (0, len(ids))
    plain = tok("no tags here", add_special_tokens=False)["input_ids"]
    assert reasoning_span(tok, plain, "reasoning") == (0, len(plain))


def test_ace_capture_paths_and_batching_agree(tiny, rows):
    model, processor = tiny
    tok = processor.tokenizer
    completions = [tok("<think>" + t + "</think><answer>4</answer>", add_special_tokens=False)["input_ids"]
                   for t in ("red: 3. blue: 1. 3 + 1 = 4.", "bar 2: 4.")]
    items = [(rows[0], completions[0]), (rows[5], completions[1])]
    impl = model.config._attn_implementation
    settings = AceSettings(window=3, min_rows=2, micro_batch_size=2)
    batched = ace_for_rollouts(model, processor, items, "cot", settings)
    single = [ace_for_rollouts(model, processor, [it], "cot", settings)[0] for it in items]
    full = ace_for_rollouts(model, processor, items, "cot",
                            AceSettings(window=3, min_rows=2, capture="output_attentions"))
    for a, b, c in zip(batched, single, full):
        assert a.n_columns > 0 and math.isfinite(a.log_psi)
        assert a.log_psi == pytest.approx(b.log_psi, abs=1e-4) == pytest.approx(c.log_psi, abs=1e-4)
        assert a.n_columns == b.n_columns == c.n_columns
    assert model.config._attn_implementation == impl  # eager only for the ACE pass
    # The captured final-layer rows are attention distributions over the visible keys.
    inputs, _, _ = build_policy_batch([encode_prompt(processor, rows[0], "cot")], [torch.tensor(completions[0])],
                                      tok.pad_token_id)
    attn = layer_attention(model, inputs)
    assert attn.shape[-1] == inputs["input_ids"].shape[1]
    torch.testing.assert_close(attn[0].sum(-1), torch.ones(attn.shape[-1]), atol=1e-4, rtol=0)
    assert torch.all(attn[0].triu(1) == 0)


def test_rap_end_to_end_then_train_reuses_then_released_variant(cache_dir, tmp_path, rows):
    store_root = f"selection.scores_dir={tmp_path / 'scores'}"
    cfg = compose("score", [f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES, *TINY, *RAP, store_root,
                            "score.batch_size=8", "score.plots=false"])
    first = run_selection(cfg, rows, tmp_path / "score")
    table = pd.read_parquet(tmp_path / "score" / "scores.parquet")
    for col in ("p_mm", "p_txt", "cde_gap", "ace_psi", "ace_flag", "difficulty", "kept", "reason"):
        assert col in table
    assert table["id"].is_unique and len(table) == len(rows) == 12
    assert table["p_mm"].isin([0.0, 0.5, 1.0]).all() and (table["ace_n_columns"] >= 0).all()
    prov = json.loads((tmp_path / "score" / "provenance.json").read_text())
    assert prov["decoding"]["max_new_tokens"] == 10 and prov["num_generations"] == 2 and prov["ace"]["layer"] == -1
    assert prov["model"]["fingerprint"] and "{question}" in prov["prompt_template"]
    cost = first.summary["cost"]["scoring"]
    assert cost["this_run"]["generated_tokens"] > 0 and cost["this_run"]["ace_forward_passes"] == 12
    # train.py selection=rap with another lambda_c: same provenance (thresholds are not part of it), so
    # select_training_rows scores nothing; lambda_c = -1 keeps every sample (the tiny model rarely solves any).
    train_cfg = compose("train", [f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES, *TINY, *RAP, store_root,
                                  "selection.cde.lam_c=-1.0"])
    kept_rows = select_training_rows(train_cfg, rows, tmp_path / "train")
    summary = json.loads((tmp_path / "train" / "selection.json").read_text())
    assert summary["cost"]["scoring"]["this_run"]["generated_tokens"] == 0
    assert summary["cost"]["scoring"]["reused_store"]
    expected = table[~table["ace_flag"] & (table["p_mm"] < 1)]["id"].tolist()  # CDE passes all; DRM drops easy
    assert [r["id"] for r in kept_rows] == expected == summary["kept_ids"]
    again = run_selection(cfg, rows, tmp_path / "again")
    assert again.summary["kept_ids"] == first.summary["kept_ids"] and again.summary["cost"]["scoring"]["reused_store"]
    released = run_selection(compose("score", [f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES, *TINY, *RAP,
                                               "selection.variant=released_code", store_root, "score.plots=false"]),
                             rows, tmp_path / "released")
    assert released.summary["cost"]["scoring"]["this_run"]["generated_tokens"] == 0  # rollouts came from the cache
    assert set(released.table["reason"]) <= {"kept_released_main", "added_released_readd", "dropped_easy",
                                             "dropped_similarity", "dropped_gap", "not_selected"}


@pytest.mark.slow
def test_score_cli_random_selection(cache_dir, tmp_path, tiny_model_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled")
    cmd = [sys.executable, "score.py", "selection=random", "selection.budget=3", *TINY, f"cache_dir={cache_dir}",
           f"output_dir={tmp_path}", *TEST_MODEL_OVERRIDES]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    summary = json.loads((tmp_path / "selection.json").read_text())
    assert summary["n_total"] == 12 and summary["n_kept"] == 3 and summary["budget"]["resolved"] == 3
    assert (tmp_path / "scores.parquet").is_file() and (tmp_path / "plots" / "kept_by_subtask.png").is_file()
