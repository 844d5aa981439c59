"""The main job end to end on the tiny model (small), SFT in each mode, and resume from a checkpoint."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from tests.conftest import TEST_MODEL_OVERRIDES, compose

SMALL = ["experiment=smoke", "logger=csv", "domain.n_train_per_subtask=2", "domain.n_test_per_subtask=2",
         "mode.max_new_tokens={direct: 4, cot: 12}", "eval.n_boot=20", "algo.batch_size=8"]


def _cfg(cache_dir, out_dir, *extra):
    return compose("train", [f"cache_dir={cache_dir}", f"output_dir={out_dir}", *TEST_MODEL_OVERRIDES, *SMALL,
                             *extra])


def test_main_job_writes_boundary_report_and_curation(cache_dir, tiny_model_path, tmp_path):
    from dualtune.lab import planted_regions
    from dualtune.recipes.train import train

    cfg = _cfg(cache_dir, tmp_path, "domain=math")
    report = train(cfg)
    for name in ("thinking_boundary.json", "thinking_boundary.csv", "thinking_boundary.md",
                 "boundary_scatter.png", "gap_b.png", "timings.json", "curation/manifest.json",
                 "eval_base/predictions.jsonl", "eval_tuned/predictions.jsonl", "model/config.json"):
        assert (tmp_path / name).exists(), name
    saved = json.loads((tmp_path / "thinking_boundary.json").read_text())
    subtasks = {r["subtask"]: r for r in saved["subtasks"]}
    assert set(subtasks) == {n for n, r in planted_regions().items() if n in subtasks} and len(subtasks) >= 4
    for row in saved["subtasks"]:
        assert row["planted_region"] == planted_regions()[row["subtask"]]
        assert row["region"] in ("cot", "direct", "negative", "tie")
        for key in ("n", "B_S", "B_L", "DT_S", "DT_L", "GAP_B", "GAP_DT", "Gain_DA", "Gain_CoT", "uncertain", "ci"):
            assert key in row
    assert saved["aggregates"] and saved["config"]["mode"]["name"] == "dual"
    # Every training id lands in exactly one route.
    manifest = json.loads((tmp_path / "curation/manifest.json").read_text())
    routed = [i for ids in manifest["routes"].values() for i in ids]
    assert len(routed) == len(set(routed)) == 2 * len(subtasks)
    # Tuned eval covers every test item in both modes.
    preds = pd.read_json(tmp_path / "eval_tuned/predictions.jsonl", lines=True)
    assert set(preds["mode"]) == {"direct", "cot"} and len(preds) == 2 * 2 * len(subtasks)
    assert report["subtasks"]


@pytest.mark.parametrize("mode", ["direct", "cot", "dual"])
def test_sft_fast_dev_run_each_mode(cache_dir, tiny_model_path, tmp_path, mode):
    from dualtune.data.sources import load_domain
    from dualtune.models.loading import load_processor
    from dualtune.recipes.sft import fit_sft

    cfg = _cfg(cache_dir, tmp_path, f"mode={mode}", "+trainer.fast_dev_run=true", "domain=spatial")
    rows = load_domain(cfg.domain, cfg.cache_dir)["train"]
    saved = fit_sft(cfg, tiny_model_path, load_processor(tiny_model_path), rows, tmp_path)
    assert (saved / "model.safetensors").exists()


def test_resume_continues_at_same_step(cache_dir, tiny_model_path, tmp_path):
    from dualtune.data.sources import load_domain
    from dualtune.models.loading import load_processor
    from dualtune.recipes.sft import fit_sft

    rows = load_domain(_cfg(cache_dir, tmp_path, "domain=math").domain, cache_dir)["train"]
    processor = load_processor(tiny_model_path)
    # Run 1: one epoch (a checkpoint at its end). Run 2 in the same dir: two epochs, resumed from last.
    first = _cfg(cache_dir, tmp_path, "domain=math", "algo.epochs=1")
    fit_sft(first, tiny_model_path, processor, rows, tmp_path)
    ckpt = torch.load(tmp_path / "checkpoints/last.ckpt", weights_only=False)
    steps_after_first = ckpt["global_step"]
    assert steps_after_first > 0
    second = _cfg(cache_dir, tmp_path, "domain=math", "algo.epochs=2", "ckpt_path=last")
    fit_sft(second, tiny_model_path, processor, rows, tmp_path)
    resumed = torch.load(tmp_path / "checkpoints/last.ckpt", weights_only=False)
    assert resumed["global_step"] == 2 * steps_after_first
    assert resumed["epoch"] == ckpt["epoch"] + 1


def test_per_row_train_mode_overrides_run_mode():
    from dualtune.data.datamodule import expand_modes

    rows = [{"id": "a"}, {"id": "b", "train_mode": "cot"}, {"id": "c", "train_mode": "direct"}]
    samples, modes = expand_modes(rows, "dual")
    assert [(s["id"], m) for s, m in zip(samples, modes)] == [("a", "direct"), ("a", "cot"), ("b", "cot"),
                                                              ("c", "direct")]
    with pytest.raises(ValueError, match="unknown training mode"):
        expand_modes(rows, "both")
