"""Budget and cross-model selection on real tiny models: `score.py selection=rap selection.budget=0.1` (CLI),
the random control at the same count, and `selection.scorer=internvl3_2b` scoring for a tiny-Qwen training run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dualtune.data.sources import limit_samples, load_domain
from dualtune.recipes.select import run_selection, select_training_rows
from tests.conftest import CONF_DIR, TEST_MODEL_OVERRIDES, compose
from tests.tiny_internvl import build_tiny_internvl

ROOT = Path(CONF_DIR).parent
LAB = ["domain=math", "domain.n_train_per_subtask=8", "score.limit=5"]  # 4 subtasks x 5 = 20 samples
FAST = ["selection.rollouts.num_generations=2", "selection.rollouts.max_new_tokens=8"]


def test_score_cli_rap_budget_then_random_at_the_same_count(cache_dir, tmp_path, tiny_model_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    out = tmp_path / "rap"
    cmd = [sys.executable, "score.py", "selection=rap", "selection.budget=0.1", *LAB, *FAST, "score.plots=false",
           f"selection.scores_dir={tmp_path / 'scores'}", f"cache_dir={cache_dir}", f"output_dir={out}",
           *TEST_MODEL_OVERRIDES]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rap = json.loads((out / "selection.json").read_text())
    assert rap["n_total"] == 20 and rap["n_kept"] == 2 == len(rap["kept_ids"])  # round(0.1 * 20)
    assert rap["budget"] == {"requested": 0.1, "resolved": 2}
    assert rap["scorer"]["is_trained_model"] and rap["scorer"]["name"] == "tiny"
    before = rap["details"]["n_before_budget"]
    moved = rap["counts_by_reason"].get("dropped_budget", 0) + rap["counts_by_reason"].get("added_budget", 0)
    assert moved == abs(before - 2)

    cfg = compose("score", ["selection=random", f"selection.match_budget_of={out}", *LAB, f"cache_dir={cache_dir}",
                            "score.plots=false", *TEST_MODEL_OVERRIDES])
    rows = limit_samples(load_domain(cfg.domain, cache_dir)["train"], 5)
    control = run_selection(cfg, rows, tmp_path / "random")
    assert control.summary["n_kept"] == 2 and control.summary["details"]["budget_source"] == str(out)


@pytest.fixture(scope="module")
def internvl(tmp_path_factory):
    corpus = ["How many? Think step by step inside <think></think>, then give the answer inside <answer></answer>.",
              "<think>one</think><answer>1</answer>"] * 4
    return str(build_tiny_internvl(tmp_path_factory.mktemp("tiny_internvl"), corpus))


def test_cross_model_scores_are_keyed_by_the_scorer_and_training_uses_the_trained_model(
        cache_dir, tmp_path, tiny_model_path, internvl):
    from dualtune.recipes.train import train

    base = [*TEST_MODEL_OVERRIDES, "domain=math", "domain.n_train_per_subtask=2", "selection=rap", *FAST,
            "selection.drm.k=0", "selection.cde.lam_c=-1.0", f"selection.scores_dir={tmp_path / 'scores'}",
            f"cache_dir={cache_dir}"]
    cross = [*base, "selection.scorer=internvl3_2b", f"selection.scorer_overrides.path={internvl}",
             "selection.scorer_overrides.dtype=float32"]
    rows = load_domain(compose("score", base).domain, cache_dir)["train"]
    own = run_selection(compose("score", [*base, "score.plots=false"]), rows, tmp_path / "own")
    other = run_selection(compose("score", [*cross, "score.plots=false"]), rows, tmp_path / "cross")
    assert own.summary["provenance_hash"] != other.summary["provenance_hash"]
    assert own.summary["scores_store"] != other.summary["scores_store"]
    prov = json.loads((tmp_path / "cross" / "provenance.json").read_text())
    assert prov["model"]["name"] == "internvl3_2b" and prov["model_path"] == internvl
    scorer = other.summary["scorer"]
    assert scorer["config"] == "internvl3_2b" and not scorer["is_trained_model"]
    assert other.summary["cost"]["scoring"]["this_run"]["generated_tokens"] > 0
    # train.py with the same selection reuses the InternVL scores and trains the tiny Qwen.
    out = tmp_path / "train"
    cfg = compose("train", [*cross, "algo.max_steps=1", "algo.batch_size=2", "eval.enabled=false", "logger=none",
                            f"output_dir={out}"])
    kept = select_training_rows(cfg, rows, tmp_path / "sel")
    assert [r["id"] for r in kept] == other.summary["kept_ids"]
    assert json.loads((tmp_path / "sel" / "selection.json").read_text())["cost"]["scoring"]["reused_store"]
    train(cfg)
    config = json.loads(next(out.rglob("config.json")).read_text())
    assert config["model_type"] == "qwen2_5_vl"
    assert json.loads(next(out.rglob("selection.json")).read_text())["scorer"]["config"] == "internvl3_2b"


def test_baselines_end_to_end_on_the_tiny_model(cache_dir, tmp_path, tiny_model_path, random_tiny_ckpt):
    """thinklite_mcts / s1 / limr write the same outputs as RAP (selection.json, scores.parquet)."""
    import pandas as pd

    common = [*TEST_MODEL_OVERRIDES, "domain=math", "domain.n_train_per_subtask=2", f"cache_dir={cache_dir}",
              "selection.rollouts.max_new_tokens=8", f"selection.scores_dir={tmp_path / 'scores'}", "score.plots=false"]
    rows = load_domain(compose("score", common[:-3]).domain, cache_dir)["train"]  # 8 samples
    mcts = run_selection(compose("score", [*common, "selection=thinklite_mcts", "selection.max_iters=3",
                                           "selection.min_iters=1", "selection.budget=3"]), rows, tmp_path / "mcts")
    table = pd.read_parquet(tmp_path / "mcts" / "scores.parquet")
    assert mcts.summary["n_kept"] == 3 and table["mcts_iterations"].between(1, 4).all()
    assert mcts.summary["details"]["max_iters"] == 3 and len(table["mm_correct"][0]) == 3
    s1 = run_selection(compose("score", [*common, "selection=s1", "selection.budget=0.5",
                                         "selection.rollouts.num_generations=2"]), rows, tmp_path / "s1")
    assert s1.summary["n_kept"] == 4 and set(s1.summary["counts_by_reason"]) <= {
        "kept_s1", "added_budget", "not_selected", "dropped_s1_easy", "dropped_quality"}
    limr = run_selection(compose("score", [*common, "selection=limr", "selection.rollouts.num_generations=2",
                                           f"selection.checkpoints=[{random_tiny_ckpt}]", "selection.budget=2"]),
                         rows, tmp_path / "limr")
    assert limr.summary["n_kept"] == 2 and limr.summary["limr"]["source"] == "checkpoints"
    assert len(set(limr.summary["limr"]["stores"])) == 2  # base store + the checkpoint's own store
    traj = pd.read_parquet(tmp_path / "limr" / "scores.parquet")["limr_trajectory"]
    assert all(len(t) == 2 for t in traj)
    log = tmp_path / "rewards.jsonl"
    log.write_text("\n".join(json.dumps({"id": r["id"], "step": s, "reward": float(k % 2 == s % 2)})
                             for k, r in enumerate(rows) for s in (1, 2)))
    logged = run_selection(compose("score", [*common, "selection=limr", f"selection.rewards_file={log}",
                                             "selection.epoch_key=step"]), rows, tmp_path / "limr_log")
    assert logged.summary["scorer"] is None and logged.summary["details"]["epochs"] == 2
    assert logged.summary["n_kept"] == 0  # two opposite curves around a flat mean: every s = 1 - 2 * 0.25 / 0.5 = 0
