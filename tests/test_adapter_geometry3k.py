"""Geometry3K in its published layout (hiyouga/geometry3k: parquet train / validation / test with a list
of images, problem, answer, id, choices, ground_truth) through the real loader, then the documented commands
on a training set with a test split: `score.py selection=rap` and `train.py` (SFT and GRPO, 2 steps)."""

from __future__ import annotations

import json

import pytest
from datasets import Features, Image, Sequence, Value

from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.published import png_bytes, write_default_snapshot

FEATURES = Features({"images": Sequence(Image()), "problem": Value("string"), "answer": Value("string"),
                     "id": Value("int64"), "choices": Sequence(Value("string")), "ground_truth": Value("string")})


def _row(rid, problem, answer, choices, truth, color="white"):
    return {"images": [{"bytes": png_bytes(color), "path": None}], "problem": f"<image>{problem}", "answer": answer,
            "id": rid, "choices": choices, "ground_truth": truth}


TRAIN = [
    _row(0, "Find x.", "2\\sqrt{3}", ["2\\sqrt{3}", "3\\sqrt{2}", "6", "12"], "A"),
    _row(1, "Find the area of the figure to the nearest tenth.", "1061.9", ["530.9", "1061.9", "2123.7", "4247.4"], "B",
         color="red"),
    _row(2, "Find y.", "\\frac{40}{3}", ["10", "\\frac{40}{3}", "15", "20"], "B", color="blue"),
    _row(3, "Find m \\angle 2.", "34", ["34", "56", "67", "124"], "A", color="green"),
    _row(4, "Find z.", "12", ["4", "8", "12", "16"], "E", color="yellow"),   # ground_truth outside the 4 choices
]
TEST = [_row(2401, "Find x. Round to the nearest tenth.", "5.8", ["5.8", "6.9", "10.8", "12.1"], "A")]
VALIDATION = [_row(2101, "Find the perimeter.", "60", ["30", "45", "60", "90"], "C")]


def _snapshot(tmp_path, train=TRAIN, features=FEATURES, name="geometry3k"):
    # A distinct directory name per snapshot: `datasets` caches a local parquet dataset under the directory's
    # name and its files' relative paths, so two same-named snapshots written together would share a cache.
    return write_default_snapshot(tmp_path / name, {"train": train, "validation": VALIDATION, "test": TEST},
                                  features)


def test_published_rows_map_to_schema_with_easyr1_rules(tmp_path, hf_datasets_cache):
    data = load_domain(compose("train", ["domain=geometry3k", f"domain.path={_snapshot(tmp_path)}"]).domain,
                       tmp_path / "cache")
    train = {r["id"]: r for r in data["train"]}
    assert sorted(train) == [f"geometry3k/{i}" for i in range(5)]  # free-form: ground_truth is not needed
    assert [r["id"] for r in data["test"]] == ["geometry3k/2401"]  # the test split, not validation
    first = train["geometry3k/0"]
    assert first["question"] == "Find x." and first["subtask"] == "geometry"
    assert decode_image(first["images"][0]).size == (28, 28)
    assert [train[f"geometry3k/{i}"]["answer_type"] for i in range(4)] == ["math", "number", "math", "number"]
    assert json.loads(first["meta"])["choices"][0] == "2\\sqrt{3}"
    # EasyR1's reward (examples/reward_function/math.py: mathruler grade_answer on the boxed answer) gives 1 to
    # an equal value and 0 to a different one; dualtune reads the <answer> block or the last \boxed{}.
    assert score_output("<think>x = 2 sqrt 3</think><answer>\\boxed{2\\sqrt{3}}</answer>", first)[1] == 1.0
    assert score_output("<answer>3\\sqrt{2}</answer>", first)[1] == 0.0
    assert score_output("The value is \\boxed{\\frac{40}{3}}", train["geometry3k/2"])[1] == 1.0
    assert score_output("<answer>1061.9</answer>", train["geometry3k/1"])[1] == 1.0
    validation = load_domain(compose("train", ["domain=geometry3k", f"domain.path={_snapshot(tmp_path)}",
                                               "domain.splits.test=validation"]).domain, tmp_path / "cache")["test"]
    assert [r["id"] for r in validation] == ["geometry3k/2101"]


def test_choice_format_and_bad_columns(tmp_path, hf_datasets_cache, caplog):
    snapshot = _snapshot(tmp_path)
    with caplog.at_level("WARNING"):
        rows = load_domain(compose("train", ["domain=geometry3k", f"domain.path={snapshot}",
                                             "+domain.options.format=choice"]).domain, tmp_path / "cache")["train"]
    assert "ground_truth 'E' is not a letter of the 4 choices" in caplog.text and len(rows) == 4
    assert rows[1]["options"] == ["530.9", "1061.9", "2123.7", "4247.4"] and rows[1]["answer"] == "B"
    assert rows[1]["answer_type"] == "choice"
    # choices published as one string that is no list: never split into one-character options
    features = Features({**FEATURES, "choices": Value("string")})
    bad = [dict(TRAIN[0], choices="A B C D"), dict(TRAIN[1], choices='["530.9", "1061.9"]')]
    bad_snapshot = _snapshot(tmp_path, bad, features, name="geometry3k_bad")
    with caplog.at_level("WARNING"):
        rows = load_domain(compose("train", ["domain=geometry3k", f"domain.path={bad_snapshot}",
                                             "+domain.options.format=choice"]).domain, tmp_path / "cache")["train"]
    assert "column 'choices' is a string that holds no list" in caplog.text
    assert [(r["id"], r["options"]) for r in rows] == [("geometry3k/1", ["530.9", "1061.9"])]
    with pytest.raises(ValueError, match="format='mc'"):
        load_domain(compose("train", ["domain=geometry3k", f"domain.path={snapshot}",
                                      "+domain.options.format=mc"]).domain, tmp_path / "cache")


RAP = ["selection=rap", "selection.rollouts.num_generations=2", "selection.rollouts.max_new_tokens=8",
       "score.plots=false", "score.batch_size=8"]


def test_score_rap_then_train_sft_and_grpo(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    """The documented commands on the snapshot with a random tiny checkpoint: score (RAP), train (2 steps)."""
    from dualtune.recipes.score import score
    from dualtune.recipes.train import train

    common = ["domain=geometry3k", f"domain.path={_snapshot(tmp_path)}", f"model.path={random_tiny_ckpt}",
              f"cache_dir={tmp_path / 'cache'}"]
    result = score(compose("score", [*common, *RAP, f"selection.scores_dir={tmp_path / 'scores'}",
                                     f"output_dir={tmp_path / 'score'}"]))
    assert result.summary["n_total"] == 5 and result.table["id"].is_unique
    assert {"p_mm", "p_txt", "cde_gap", "kept"} <= set(result.table.columns)
    for algo in (["algo=sft"], ["algo=grpo", "algo.num_generations=2", "algo.max_new_tokens=6"]):
        out = tmp_path / algo[0].split("=")[1]
        train(compose("train", [*common, *algo, "algo.max_steps=2", "algo.batch_size=2", "eval.enabled=false",
                                "logger=none", f"output_dir={out}"]))
        assert (out / "model" / "config.json").is_file(), f"{algo[0]}: no tuned model written"
