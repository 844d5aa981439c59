"""MathVerse in its published layout (hub parquet: config ``testmini`` = testmini.parquet, config
``testmini_text_only`` = testmini_text_only.parquet, the card's features) through the real loader and
`evaluate.py domain=mathverse`; the text-only version through ``domain=mathverse_text_only`` and through
``domain.subsets=[testmini,testmini_text_only]``."""

from __future__ import annotations

import json

import pytest
from datasets import Features, Image, Value

from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.published import evaluate_snapshot, png_bytes, write_parquet_snapshot

META = {"split": Value("string"), "source": Value("string"), "subject": Value("string"),
        "subfield": Value("string")}
COLUMNS = {"sample_index": Value("string"), "problem_index": Value("string"), "problem_version": Value("string"),
           "question": Value("string"), "answer": Value("string"), "question_type": Value("string"),
           "metadata": META, "query_wo": Value("string"), "query_cot": Value("string"),
           "question_for_eval": Value("string")}
FEATURES = {"testmini": Features({**COLUMNS, "image": Image()}),
            "testmini_text_only": Features({**COLUMNS, "image": Value("string")})}  # image "" (no diagram)
CIRCLE = ("As shown in the figure, circle O has a radius 1.0, if angle BAC = 60.0, then the length of BC is ()"
          "\nChoices:\nA:2\nB:2√{3}\nC:√{3}\nD:2√{2}")


def _row(index, version, question, answer, qtype="multi-choice", subject="Plane Geometry", subfield="Length",
         for_eval=None, image=True):
    return {"sample_index": index, "problem_index": "7", "problem_version": version, "question": question,
            "image": {"bytes": png_bytes("white"), "path": None} if image else "", "answer": answer,
            "question_type": qtype, "metadata": {"split": "testmini", "source": "GeoQA", "subject": subject,
                                                 "subfield": subfield},
            "query_wo": f"Please directly answer the question.\nQuestion: {question}",
            "query_cot": f"Please first conduct reasoning.\nQuestion: {question}",
            "question_for_eval": for_eval if for_eval is not None else question}


TESTMINI = [
    _row("1", "Text Dominant", CIRCLE, "C"),
    _row("2", "Vision Only", "", "C", for_eval=CIRCLE),  # question and choices only in the diagram
    _row("3", "Text Lite", "Find the distance d between Ned and Bart to one decimal place.", "22.3",
         qtype="free-form", subject="Trigonometry", subfield="Length"),
    _row("4", "Vision Intensive", "Write the set of numbers represented on the number line in interval notation.",
         "(-2,1]", qtype="free-form", subject="Functions", subfield="Coordinate"),
    _row("5", "Vision Dominant", "Determine the equation of the graphed function.", "y=-x^2-2x+1",
         qtype="free-form", subject="Functions", subfield="Expression"),
    _row("6", "Version X", CIRCLE, "C"),  # not a MathVerse version: counted skip
    _row("7", "Text Lite", CIRCLE, "E"),  # gold beyond the 4 choices: counted skip
]
TEXT_ONLY = [_row("1", "Text Only", CIRCLE, "C", image=False)]


def _snapshot(tmp_path):
    return write_parquet_snapshot(tmp_path / "MathVerse", {"testmini": {"testmini": TESTMINI},
                                                          "testmini_text_only": {"testmini_text_only": TEXT_ONLY}},
                                  FEATURES, layout="{config}.parquet")


def test_published_rows_map_to_schema_with_official_rules(tmp_path, hf_datasets_cache, caplog):
    cfg = compose("evaluate", ["domain=mathverse", f"domain.path={_snapshot(tmp_path)}"])
    with caplog.at_level("WARNING"):
        data = load_domain(cfg.domain, tmp_path / "cache")
    assert data["train"] == [] and "unknown problem_version 'Version X'" in caplog.text
    assert "answer 'E' is beyond the 4 choices" in caplog.text
    rows = {r["id"]: r for r in data["test"]}
    assert sorted(rows) == [f"mathverse/{i}" for i in "12345"]
    assert [rows[f"mathverse/{i}"]["subtask"] for i in "12345"] == [
        "Text Dominant", "Vision Only", "Text Lite", "Vision Intensive", "Vision Dominant"]
    dominant, only = rows["mathverse/1"], rows["mathverse/2"]
    assert dominant["options"] == ["2", "2√{3}", "√{3}", "2√{2}"] and dominant["answer"] == "C"
    assert dominant["question"].endswith("the length of BC is ()")  # the choices are split off, rendered once
    # Vision Only: no option text in the prompt (it is in the diagram), letters only, counted from question_for_eval
    assert only["options"] == ["A", "B", "C", "D"] and only["question"] == "Answer the question shown in the image."
    assert json.loads(only["meta"])["options_in_image"] is True
    assert [rows[f"mathverse/{i}"]["answer_type"] for i in "345"] == ["number", "math", "math"]
    assert decode_image(dominant["images"][0]).size == (28, 28)  # checked by the validator, decoded at use
    # Verdicts of the official judge's worked examples (MathVerse evaluation/prompts.py demo_prompt_score, as in
    # lmms-eval mathverse_evals.py DEMO_PROMPT_SCORE): gold C vs "B:2√{3}" -> 0; gold (-2,1] vs "(-2, 1)" -> 0;
    # and the extraction example "approximately 22.3 meters" -> 22.3, consistent with gold 22.3 -> 1.
    assert score_output("<answer>B:2√{3}</answer>", dominant)[1] == 0.0
    assert score_output("<answer>C</answer>", dominant)[1] == 1.0
    assert score_output("<answer>(C)</answer>", only)[1] == 1.0
    assert score_output("<answer>(-2, 1)</answer>", rows["mathverse/4"])[1] == 0.0
    assert score_output("<answer>(-2, 1]</answer>", rows["mathverse/4"])[1] == 1.0
    assert score_output("<think>d = 17.6 / cos(38°)</think><answer>approximately 22.3 meters</answer>",
                        rows["mathverse/3"])[1] == 1.0
    assert score_output("<answer>y = -x^2 - 2x + 1</answer>", rows["mathverse/5"])[1] == 1.0
    assert json.loads(dominant["meta"])["scoring"]["judge"] == "rule"


def test_text_only_version_is_reachable(tmp_path, hf_datasets_cache):
    snapshot = _snapshot(tmp_path)
    text_only = load_domain(compose("evaluate", ["domain=mathverse_text_only", f"domain.path={snapshot}"]).domain,
                            tmp_path / "cache")["test"]
    assert [(r["id"], r["subtask"], r["images"], r["answer"]) for r in text_only] == [
        ("mathverse/text_only/1", "Text Only", [], "C")]
    both = load_domain(compose("evaluate", ["domain=mathverse", f"domain.path={snapshot}",
                                            "domain.subsets=[testmini,testmini_text_only]"]).domain,
                       tmp_path / "cache")["test"]
    assert len(both) == 6 and {r["subtask"] for r in both} >= {"Text Only", "Text Dominant"}
    by_subject = load_domain(compose("evaluate", ["domain=mathverse", f"domain.path={snapshot}",
                                                  "+domain.options.subtask_by=subfield"]).domain,
                             tmp_path / "cache")["test"]
    assert sorted({r["subtask"] for r in by_subject}) == ["Coordinate", "Expression", "Length"]
    with pytest.raises(ValueError, match="subtask_by='topic'"):
        load_domain(compose("evaluate", ["domain=mathverse", f"domain.path={snapshot}",
                                         "+domain.options.subtask_by=topic"]).domain, tmp_path / "cache")


def test_bad_column_types_are_named(tmp_path, hf_datasets_cache, caplog):
    bad = [dict(TESTMINI[0], sample_index="8", metadata=None), dict(TESTMINI[2], sample_index="9")]
    bad[1]["question_type"] = "essay"
    features = Features({**COLUMNS, "image": Image()})
    snapshot = write_parquet_snapshot(tmp_path / "bad", {"testmini": {"testmini": bad}}, features,
                                      layout="{config}.parquet")
    with caplog.at_level("WARNING"):
        rows = load_domain(compose("evaluate", ["domain=mathverse", f"domain.path={snapshot}"]).domain,
                           tmp_path / "cache")["test"]
    assert [r["id"] for r in rows] == ["mathverse/8"] and "unknown question_type 'essay'" in caplog.text


def test_evaluate_cli_path_on_the_snapshot(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    result, preds, evaluated = evaluate_snapshot(tmp_path, "mathverse", _snapshot(tmp_path), random_tiny_ckpt)
    assert set(evaluated["mode"]) == {"direct", "cot"} and len(evaluated) == 5 * 2
    assert len(preds) - len(evaluated) == 2  # the two adapter skips are listed too, with their reason
    assert {r["subtask"] for r in result.per_subtask()} == {"Text Dominant", "Vision Only", "Text Lite",
                                                           "Vision Intensive", "Vision Dominant"}
