"""The selection lab (domain=selection_lab), RAP against its planted flags (scoring/planted.py), and the training
tokens in the selection cost accounting."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from dualtune.lab import generate_split, subtasks_for
from dualtune.lab.registry import SELECTION_LAB, SELECTION_SUBTASKS, SUBTASKS
from dualtune.scoring.planted import planted_flags, planted_metrics, precision_recall, report_from_run_dir, write_planted
from tests.conftest import TEST_MODEL_OVERRIDES, compose

BANDS = {"sel_count_all": {"easy": (1, 2), "cognitive": (3, 6), "hard": (7, 9)},
         "sel_count_color": {"easy": (2, 3), "cognitive": (4, 4), "hard": (5, 6)},
         "sel_count_shape": {"easy": (2, 3), "cognitive": (4, 4), "hard": (5, 6)}}
# A text-only reader of the generic notes ("Note: the count of red objects is 3. ", "... holds 5 objects. ").
NOTE = re.compile(r"^Note: the (?:count of [a-z ]+ is|picture holds) (\d+)(?: objects)?\. ")


@pytest.fixture(scope="module")
def rows():
    return generate_split(SELECTION_LAB, "train", 400, seed=0)


def test_domain_builds_validates_and_stays_out_of_the_other_lab_tables(tmp_path):
    from dualtune.data.sources import load_domain

    cfg = compose("score", [f"cache_dir={tmp_path}", "domain=selection_lab", "domain.n_train_per_subtask=6",
                            "domain.n_test_per_subtask=3"])
    data = load_domain(cfg.domain, cfg.cache_dir, strict=True)
    assert len(data["train"]) == 18 and len(data["test"]) == 9
    assert {r["subtask"] for r in data["train"]} == set(SELECTION_SUBTASKS) == set(BANDS)
    assert set(planted_flags(data["train"]).values()) <= {"language_prior", "easy", "hard", "cognitive"}
    # Not a target domain: never in "all", SUBTASKS or planted_regions (so the tokenizer corpus is unchanged).
    assert not set(SELECTION_SUBTASKS) & set(SUBTASKS)
    assert not {s.name for s in subtasks_for("all")} & set(SELECTION_SUBTASKS)


def test_flags_are_planted_in_the_documented_proportions_and_bands(rows):
    metas = [json.loads(r["meta"]) for r in rows]
    shares = Counter(m["planted"] for m in metas)
    for kind in ("language_prior", "easy", "hard", "cognitive"):  # 0.25 each by default; n = 1200
        assert abs(shares[kind] / len(rows) - 0.25) < 0.04, shares
    for row, meta in zip(rows, metas):
        assert meta["language_prior"] == (meta["planted"] == "language_prior")
        if meta["planted"] != "language_prior":
            lo, hi = BANDS[row["subtask"]][meta["planted"]]
            assert lo <= meta["level"] <= hi
    # The shares are knobs: no language prior, then easy / hard / cognitive in thirds.
    knobbed = generate_split(SELECTION_LAB, "train", 300, seed=0,
                             knobs={"language_prior_rate": 0.0, "easy_rate": 0.5, "hard_rate": 0.0})
    shares = Counter(json.loads(r["meta"])["planted"] for r in knobbed)
    assert shares["language_prior"] == shares["hard"] == 0 and abs(shares["easy"] / len(knobbed) - 0.5) < 0.05


def test_language_prior_samples_state_their_answer_in_the_text(rows):
    for row in rows:
        prior = json.loads(row["meta"])["language_prior"]
        match = NOTE.match(row["question"])
        assert bool(match) == prior
        if prior:
            assert match.group(1) == row["answer"]
        else:
            assert not re.search(r"\d", row["question"])  # nothing in the text gives the count away
        assert len(row["images"]) == 1


def test_precision_recall_by_hand():
    out = precision_recall([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    assert (out["tp"], out["fp"], out["fn"]) == (2, 1, 1)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    empty = precision_recall([0, 0], [0, 1])
    assert empty["precision"] is None and empty["recall"] == 0.0


def _hand_table():
    # M = 5. ids: a (LP, gap 0), b (easy, all correct, dropped by DRM), c (hard, in band, added by DRM),
    # d (cognitive, kept by CDE), e (hard, all wrong), f (no planted kind: ignored).
    return pd.DataFrame({
        "id": list("abcdef"),
        "p_mm": [0.8, 1.0, 0.2, 0.8, 0.0, 1.0],
        "p_txt": [0.8, 0.0, 0.0, 0.2, 0.0, 0.0],
        "ace_flag": [False] * 6,
        "kept": [False, False, True, True, False, True],
        "reason": ["dropped_cde_gap", "dropped_easy_drm", "added_drm", "kept_cde", "dropped_cde_gap", "kept_cde"],
    }).assign(cde_gap=lambda d: d.p_mm - d.p_txt)


FLAGS = {"a": "language_prior", "b": "easy", "c": "hard", "d": "cognitive", "e": "hard"}


def test_planted_metrics_on_hand_built_flags():
    report = planted_metrics(_hand_table(), FLAGS, M=5, lam_c=0.5)
    det = report["detectors"]
    assert report["n"] == 5 and report["n_kept"] == 2
    # CDE drops a (gap 0), c (0.2), e (0): one of three is the language prior, the only one there is.
    assert (det["cde"]["tp"], det["cde"]["fp"], det["cde"]["fn"]) == (1, 2, 0)
    assert det["drm_easy"]["precision"] == 1.0 and det["drm_easy"]["recall"] == 1.0
    # In-band: a, c, d (p 0.8, 0.2, 0.8); hard: c, e.
    assert (det["drm_band"]["tp"], det["drm_band"]["fp"], det["drm_band"]["fn"]) == (1, 2, 1)
    assert det["drm_removed"]["recall"] == 1.0 and det["drm_added"]["precision"] == 1.0
    assert det["drm_added"]["recall"] == 0.5 and "ace" not in det  # ACE flagged nothing
    assert report["by_kind"]["hard"]["share_kept"] == 0.5 and report["kept"]["hard"] == {"pool": 0.4, "kept": 0.5}
    flagged = _hand_table().assign(ace_flag=[True, False, False, False, False, False])
    assert planted_metrics(flagged, FLAGS, M=5)["detectors"]["ace"]["precision"] == 1.0


def test_write_planted_and_recompute_from_the_run_dir(tmp_path):
    df = _hand_table()
    df.to_parquet(tmp_path / "scores.parquet")
    params = {"rollouts": {"num_generations": 5}, "cde": {"enabled": True, "lam_c": 0.5}}
    (tmp_path / "selection.json").write_text(json.dumps({"params": params}))
    report = write_planted(tmp_path, df, FLAGS)
    assert json.loads((tmp_path / "selection.json").read_text())["planted"]["detectors"]["cde"]["tp"] == 1
    assert "| cde | language_prior | 3 | 1 | 1 | 0.33 | 1.00 |" in (tmp_path / "planted.md").read_text()
    assert pd.read_parquet(tmp_path / "scores.parquet")["planted"].tolist()[:2] == ["language_prior", "easy"]
    assert report_from_run_dir(tmp_path) == report


def test_score_run_on_the_default_base_spreads_pass_rates(tmp_path):
    """`python score.py selection=rap domain=selection_lab` (small): the default tiny base solves some samples,
    misses others and half-solves the rest, and score.py writes the planted report."""
    from dualtune.recipes.score import score

    cfg = compose("score", ["selection=rap", "domain=selection_lab", f"output_dir={tmp_path}", "score.limit=10",
                            "selection.ace.enabled=false", f"score.rollout_cache_dir={tmp_path}/rollouts",
                            f"selection.scores_dir={tmp_path}/scores", "score.plots=false"])
    score(cfg)
    table = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(table) == 30 and table["planted"].notna().all()
    assert len(np.unique(np.round(table["p_mm"], 6))) >= 3
    assert (table["p_mm"] == 0).any() and (table["p_mm"] >= 0.8).any()
    summary = json.loads((tmp_path / "selection.json").read_text())
    assert summary["planted"]["n"] == 30 and "cde" in summary["planted"]["detectors"]
    assert (tmp_path / "planted.md").exists()


def test_training_tokens_reach_the_selection_cost(cache_dir, tiny_model_path, tmp_path):
    """A tiny SFT run on a random selection: selection.json's training tokens = the hand count of the non-pad
    tokens of every encoded example of one epoch."""
    from dualtune.data.datamodule import expand_modes
    from dualtune.data.encoding import encode_train_example
    from dualtune.data.sources import load_domain
    from dualtune.models.loading import load_processor
    from dualtune.recipes.train import train

    cfg = compose("train", [f"cache_dir={cache_dir}", f"output_dir={tmp_path}", *TEST_MODEL_OVERRIDES,
                            "experiment=smoke", "logger=csv", "domain=selection_lab", "domain.n_train_per_subtask=3",
                            "domain.n_test_per_subtask=1", "selection=random", "selection.budget=4",
                            "eval.enabled=false", "algo.epochs=1", "algo.max_steps=-1", "algo.batch_size=3"])
    train(cfg)
    summary = json.loads((tmp_path / "selection.json").read_text())
    kept = set(summary["kept_ids"])
    rows = [r for r in load_domain(cfg.domain, cfg.cache_dir)["train"] if r["id"] in kept]
    processor = load_processor(tiny_model_path)
    samples, modes = expand_modes(rows, "dual")
    hand = sum(int(encode_train_example(processor, s, m, dict(cfg.mode.templates), int(cfg.algo.max_length))
                   ["input_ids"].numel()) for s, m in zip(samples, modes))
    tokens = summary["cost"]["training"]["tokens"]
    assert isinstance(tokens, int) and tokens == hand > 0
    assert summary["cost"]["total"]["training_tokens"] == tokens


def test_grpo_batches_count_the_module_rollout_tokens():
    from types import SimpleNamespace

    import torch

    from dualtune.training.callbacks import batch_tokens

    assert batch_tokens({"attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])}, None) == 5
    assert batch_tokens([{"id": "x"}], SimpleNamespace(last_step_tokens=42)) == 42
