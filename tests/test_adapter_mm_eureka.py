"""MM-Eureka in its published layout (dataset.jsonl + K12/ and MMPR/ image folders unzipped next to it), and
MMK12 (hub parquet), through the real loader; the documented commands `score.py selection=rap` and
`train.py eval.enabled=false algo.max_steps=2` on a training set that publishes no test split."""

from __future__ import annotations

import json

import pytest
from datasets import Features, Image, Value

from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.published import png_bytes, write_default_snapshot
from tests.trainsets import run_score_and_train, write_jsonl, write_png

PREFIX = "file:///inspire/hdd/global_user/x/mengfanqing/OpenRLHF-InternVL/dataset/report_data/"
INSTRUCTION = ("You should first thinks about the reasoning process in the mind and then provides the user with "
               "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
               "</answer> tags, respectively.\nQuestion:\n")


def _row(rid, question, answer, urls):
    return {"id": rid, "conversations": [{"role": "system", "content": "You are a helpful assistant."},
                                         {"role": "user", "content": question}],
            "answer": answer, "image_urls": urls}


def _snapshot(tmp_path):
    root = tmp_path / "MM-Eureka-Dataset"
    write_png(root / "K12" / "aa.png", "red")
    write_png(root / "K12" / "bb.png", "blue")
    write_png(root / "MMPR" / "images" / "geoqa_plus" / "images" / "1.png", "green")
    write_png(root / "MMPR" / "images" / "ai2d" / "abc.png", "white")
    rows = [
        _row("k12_mc", INSTRUCTION + "<image>Which shape is red?\nA. circle\nB. square\nC. triangle", "B",
             [PREFIX + "K12/aa.png"]),
        _row("k12_latex", "<image>Find the ratio of the shaded area.", "$\\frac{1}{2}$", [PREFIX + "K12/bb.png"]),
        _row("geo_num", "<image>Find the angle ABC in degrees.", "$30$",
             [PREFIX + "MMPR/images/geoqa_plus/images/1.png"]),
        _row("ai2d_text", "<image>Which process is shown?", "photosynthesis", ["MMPR/images/ai2d/abc.png"]),
        _row("gone", "<image>How many?", "3", [PREFIX + "K12/missing.png"]),  # image file absent: counted skip
        {"id": "bad_conv", "conversations": 5, "answer": "1", "image_urls": []},  # wrong column type
    ]
    write_jsonl(root / "dataset.jsonl", rows, raw_lines=['{"id": "cut", "conversations": ['])
    return root


def test_jsonl_rows_map_with_per_row_answer_types_and_collection_subtasks(tmp_path, caplog):
    cfg = compose("score", ["domain=mm_eureka", f"domain.path={_snapshot(tmp_path)}"])
    with caplog.at_level("WARNING"):
        data = load_domain(cfg.domain, tmp_path / "cache")
    assert data["test"] == []  # a training set: no test split
    rows = {r["id"]: r for r in data["train"]}
    assert sorted(rows) == ["mm_eureka/ai2d_text", "mm_eureka/geo_num", "mm_eureka/k12_latex", "mm_eureka/k12_mc"]
    mc = rows["mm_eureka/k12_mc"]
    assert mc["question"] == "Which shape is red?"  # format instruction and inline options stripped
    assert (mc["options"], mc["answer"], mc["answer_type"]) == (["circle", "square", "triangle"], "B", "choice")
    latex = rows["mm_eureka/k12_latex"]
    assert (latex["answer"], latex["answer_type"]) == ("\\frac{1}{2}", "math")
    assert (rows["mm_eureka/geo_num"]["answer"], rows["mm_eureka/geo_num"]["answer_type"]) == ("30", "number")
    assert rows["mm_eureka/ai2d_text"]["answer_type"] == "text" and rows["mm_eureka/ai2d_text"]["options"] == []
    assert {k: r["subtask"] for k, r in rows.items()} == {
        "mm_eureka/k12_mc": "K12", "mm_eureka/k12_latex": "K12", "mm_eureka/geo_num": "geoqa_plus",
        "mm_eureka/ai2d_text": "ai2d"}
    assert all(r["cot"] == "" and decode_image(r["images"][0]).size == (28, 28) for r in rows.values())
    # Official verdicts: MM-EUREKA's accuracy reward checks the gold with math-verify (README, "answer: gt that
    # could be parsed and verified by math_verify"): verify(parse("$\\frac{1}{2}$"), parse("0.5")) is True,
    # against 1/3 it is False; verify(parse("$30$"), parse("30.0")) is True.
    assert score_output("<think>.</think><answer>0.5</answer>", latex)[1] == 1.0
    assert score_output("<answer>1/3</answer>", latex)[1] == 0.0
    assert score_output("<answer>30.0</answer>", rows["mm_eureka/geo_num"])[1] == 1.0
    assert score_output("<answer>B</answer>", mc)[1] == 1.0 and score_output("<answer>A</answer>", mc)[1] == 0.0
    assert "<image>" not in "".join(r["question"] for r in rows.values())
    # Counted skips, each naming its reason and row: wrong column type, malformed line, missing image.
    assert "column 'conversations' is int" in caplog.text and "'bad_conv'" in caplog.text
    assert "malformed record: line 7 is not JSON" in caplog.text and "'dataset.jsonl:7'" in caplog.text
    assert "missing_image_file=1" in caplog.text and "'mm_eureka/gone'" in caplog.text
    # No rationales: one warning per load, with the count and what to do.
    warnings = [r.getMessage() for r in caplog.records if "have no rationale" in r.getMessage()]
    assert len(warnings) == 1 and "mm_eureka/train: 5 of 5 training rows" in warnings[0]
    assert "`python cot.py` is not available yet" in warnings[0] and "`cot` column" in warnings[0]


def test_mmk12_parquet_layout_uses_subject_as_subtask(tmp_path, hf_datasets_cache):
    features = Features({"id": Value("string"), "subject": Value("string"), "question": Value("string"),
                         "answer": Value("string"), "image": Image()})
    img = {"bytes": png_bytes("white"), "path": None}
    rows = [{"id": "p1", "subject": "physics", "question": "<image>Which force is larger? A. F1 B. F2",
             "answer": "A", "image": img},
            {"id": "m1", "subject": "math", "question": "<image>Compute the area.", "answer": "12", "image": img}]
    snap = write_default_snapshot(tmp_path / "MMK12", {"train": rows}, features)
    data = load_domain(compose("score", ["domain=mm_eureka", f"domain.path={snap}"]).domain, tmp_path / "cache")
    got = {r["id"]: (r["subtask"], r["answer_type"], r["answer"], r["options"], r["source"]) for r in data["train"]}
    assert got == {"mm_eureka/p1": ("physics", "choice", "A", ["F1", "F2"], "FanqingM/MMK12"),
                   "mm_eureka/m1": ("math", "number", "12", [], "FanqingM/MMK12")}


def test_hub_id_without_local_snapshot_says_how_to_get_one(tmp_path):
    cfg = compose("score", ["domain=mm_eureka"])
    with pytest.raises(FileNotFoundError, match=r"not a local directory.*unzip K12.zip and MMPR.zip"):
        load_domain(cfg.domain, tmp_path / "cache")


def test_training_set_without_test_split_evaluation_error_says_how(tmp_path):
    from dualtune.recipes.train import train

    cfg = compose("train", [f"cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'out'}", "domain=mm_eureka",
                            f"domain.path={_snapshot(tmp_path)}", "logger=none"])
    with pytest.raises(ValueError, match=r"mm_eureka is a training set and publishes no test split.*"
                                         r"eval.enabled=false.*python evaluate.py domain=mathvista"):
        train(cfg)


def test_score_rap_and_train_without_test_split(tmp_path, random_tiny_ckpt):
    table, out = run_score_and_train(tmp_path, "mm_eureka", _snapshot(tmp_path), random_tiny_ckpt)
    assert sorted(table["id"]) == ["mm_eureka/ai2d_text", "mm_eureka/geo_num", "mm_eureka/k12_latex",
                                   "mm_eureka/k12_mc"]
    assert {"p_mm", "p_txt", "cde_gap", "kept"} <= set(table.columns)
    manifest = json.loads((out / "timings.json").read_text())
    assert "evaluate base model (both modes)" not in manifest  # trained without evaluation
