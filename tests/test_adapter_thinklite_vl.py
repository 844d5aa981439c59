"""ThinkLite-VL-70k and ThinkLite-VL-hard-11k in their published layouts (hub parquet: id, problem, answer,
image, choices) through the real loader, one adapter for both configs; `score.py selection=rap` and
`train.py eval.enabled=false algo.max_steps=2` on the 70k snapshot."""

from __future__ import annotations

import logging

from datasets import Dataset, Features, Image, Sequence, Value

from dualtune.data.sources import load_domain
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.published import png_bytes, write_default_snapshot
from tests.trainsets import run_score_and_train

FEATURES_70K = Features({"id": Value("string"), "problem": Value("string"), "answer": Value("string"),
                         "image": Image(), "choices": Sequence(Value("string"))})


def _row(rid, problem, answer, choices=None, color="white"):
    return {"id": rid, "problem": f"<image>{problem}", "answer": answer, "choices": choices,
            "image": {"bytes": png_bytes(color), "path": None}}


ROWS_70K = [
    _row("1", "Which colour is the square?", "B", choices=["A. red", "B. blue"]),
    _row("2", "How many sides? (A) 3 (B) 4 (C) 5", "B", color="red"),
    _row("3", "How many apples are there?", "12", color="green"),
    _row("4", "What is the length of the diagonal?", "$\\sqrt{2}$", color="blue"),
    _row("5", "Which animal is shown?", "cat", color="black"),
]


def _snapshot_70k(tmp_path):
    return write_default_snapshot(tmp_path / "ThinkLite-VL-70k", {"train": ROWS_70K}, FEATURES_70K)


def test_70k_rows_map_with_per_row_answer_types(tmp_path, hf_datasets_cache, caplog):
    cfg = compose("score", ["domain=thinklite_vl", f"domain.path={_snapshot_70k(tmp_path)}"])
    with caplog.at_level(logging.WARNING):
        data = load_domain(cfg.domain, tmp_path / "cache")
    assert data["test"] == []
    rows = {r["id"]: r for r in data["train"]}
    assert [(rows[f"thinklite_vl/{i}"]["answer_type"], rows[f"thinklite_vl/{i}"]["answer"]) for i in "12345"] == [
        ("choice", "B"), ("choice", "B"), ("number", "12"), ("math", "\\sqrt{2}"), ("text", "cat")]
    assert rows["thinklite_vl/1"]["options"] == ["red", "blue"]  # the choices column, letter prefixes dropped
    assert rows["thinklite_vl/2"]["options"] == ["3", "4", "5"]  # options written in the problem
    assert rows["thinklite_vl/2"]["question"] == "How many sides?"
    assert rows["thinklite_vl/3"]["question"] == "How many apples are there?"  # <image> placeholder removed
    # No category column in the published parquet: the documented fallback is the answer format.
    assert {r["subtask"] for r in rows.values()} == {"choice", "number", "math", "text"}
    assert all(r["source"] == "russwang/ThinkLite-VL-70k" and r["cot"] == "" for r in rows.values())
    assert '"judge": "rule"' in rows["thinklite_vl/3"]["meta"]  # the official check is an LLM judge
    assert "thinklite_vl/train: 5 of 5 training rows have no rationale" in caplog.text


def test_hard_11k_raw_byte_images_and_string_choices(tmp_path, hf_datasets_cache, caplog):
    """The 11k file as the official mcts.py reads it: one parquet, ``image`` holding raw bytes; a choices
    string that holds a list is parsed, never split into characters; one that holds no list is a skip."""
    root = tmp_path / "ThinkLite-VL-hard-11k"
    root.mkdir()
    features = Features({"id": Value("string"), "problem": Value("string"), "answer": Value("string"),
                         "image": Value("binary"), "choices": Value("string")})
    rows = [{"id": "h1", "problem": "<image>Which is larger?", "answer": "A", "image": png_bytes("red"),
             "choices": "['10', '8']"},
            {"id": "h2", "problem": "<image>Find x.", "answer": "x=3", "image": png_bytes("blue"), "choices": None},
            {"id": "h3", "problem": "<image>Pick one.", "answer": "A", "image": png_bytes("green"),
             "choices": "not a list"}]
    Dataset.from_list(rows, features=features).to_parquet(str(root / "ThinkLite-VL-Hard-11k.parquet"))
    with caplog.at_level(logging.WARNING):
        data = load_domain(compose("score", ["domain=thinklite_vl_hard", f"domain.path={root}"]).domain,
                           tmp_path / "cache")
    got = {r["id"]: (r["answer_type"], r["answer"], r["options"], r["subtask"], r["source"]) for r in data["train"]}
    assert got == {"thinklite_vl_hard/h1": ("choice", "A", ["10", "8"], "choice", "russwang/ThinkLite-VL-hard-11k"),
                   "thinklite_vl_hard/h2": ("math", "x=3", [], "math", "russwang/ThinkLite-VL-hard-11k")}
    assert decode_image(data["train"][0]["images"][0]).size == (28, 28)
    assert "adapter skipped 1 rows (column 'choices' is a string that holds no list" in caplog.text


def test_score_rap_and_train_without_test_split(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    table, _ = run_score_and_train(tmp_path, "thinklite_vl", _snapshot_70k(tmp_path), random_tiny_ckpt)
    assert sorted(table["id"]) == [f"thinklite_vl/{i}" for i in "12345"]
    assert set(table["subtask"]) == {"choice", "number", "math", "text"}
