"""We-Math in its published layout (hub parquet, split ``testmini``, the columns lmms-eval's wemath task and
the official data/testmini.json use) through the real loader and `evaluate.py domain=wemath`."""

from __future__ import annotations

import json

import pytest
from datasets import Features, Image, Value

from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.published import evaluate_snapshot, png_bytes, write_default_snapshot

FEATURES = Features({
    "ID": Value("string"), "split": Value("string"), "knowledge concept": Value("string"),
    "question": Value("string"), "option": Value("string"), "answer": Value("string"), "image_path": Image(),
    "key": Value("string"), "question number": Value("int64"), "knowledge concept description": Value("string"),
})
UNITS = "Conversion Rates and Calculations Between Length Units"


OPTION = "A. 300, 400;B. 400, 300;C. 3000, 4000;D. 4000, 3000; E. No correct answer"  # as published


def _row(number, pid, key, answer="C", option=OPTION, concept=UNITS):
    return {"ID": pid, "split": "testmini", "knowledge concept": concept,
            "question": "According to the diagram: OA = ( ) m, AB = ( ) m", "option": option, "answer": answer,
            "image_path": {"bytes": png_bytes("white"), "path": None}, "key": key, "question number": number,
            "knowledge concept description": f"{concept}:\n1. ..."}


ROWS = [
    _row(1, "2steps_1", "2steps_1"),
    _row(2, "2steps_1", "2steps_2", answer="A", concept="Left-Right Position",
         option="A. Left; B. Right; C. Cannot be determined.; D. No correct answer"),
    _row(3, "2steps_1", "2steps_multi", answer="B", concept=f"{UNITS};Left-Right Position"),
    _row(4, "3steps_9", "3steps_multi", answer="A", option="A. F;    B. D;    C. B;    D. I; E. No correct answer"),
    _row(5, "3steps_9", "4steps_1"),                        # not a We-Math key: counted skip
    _row(6, "3steps_9", "3steps_1", option="A: 1, B: 2"),   # option string without 'A. ..;B. ..' labels: skip
    _row(7, "3steps_9", "3steps_2", answer="F"),            # gold beyond the options: skip
]


def _snapshot(tmp_path, rows=ROWS):
    return write_default_snapshot(tmp_path / "We-Math", {"testmini": rows}, FEATURES)


def test_published_rows_map_to_schema_with_official_rules(tmp_path, hf_datasets_cache, caplog):
    cfg = compose("evaluate", ["domain=wemath", f"domain.path={_snapshot(tmp_path)}"])
    with caplog.at_level("WARNING"):
        data = load_domain(cfg.domain, tmp_path / "cache")
    assert data["train"] == []
    for reason in ("unknown key '4steps_1'", "column 'option' does not list options", "answer 'F' is not one of"):
        assert reason in caplog.text
    rows = {r["id"]: r for r in data["test"]}
    assert sorted(rows) == ["wemath/2steps_1/2steps_1", "wemath/2steps_1/2steps_2", "wemath/2steps_1/2steps_multi",
                            "wemath/3steps_9/3steps_multi"]  # the ID is shared by a problem's sub-questions
    assert [r["subtask"] for r in data["test"]] == ["S1", "S1", "S2", "S3"]
    first = rows["wemath/2steps_1/2steps_1"]
    assert first["options"] == ["300, 400", "400, 300", "3000, 4000", "4000, 3000", "No correct answer"]
    assert rows["wemath/3steps_9/3steps_multi"]["options"] == ["F", "D", "B", "I", "No correct answer"]
    assert rows["wemath/2steps_1/2steps_2"]["options"][2] == "Cannot be determined."
    assert json.loads(first["meta"])["question_number"] == 1 and decode_image(first["images"][0]).size == (28, 28)
    # Official verdicts (We-Math evaluation/accuracy.py load_and_process_data: the first character after the
    # last "Answer", with <>:. removed, must equal the gold letter): "Answer: C" -> 1, "Answer: E" -> 0.
    assert score_output("Answer: C", first)[1] == 1.0
    assert score_output("Answer: E", first)[1] == 0.0
    assert score_output("<think>3 km = 3000 m</think><answer>C</answer>", first)[1] == 1.0


def test_subtask_choices(tmp_path, hf_datasets_cache):
    snapshot = _snapshot(tmp_path)
    by_key = load_domain(compose("evaluate", ["domain=wemath", f"domain.path={snapshot}",
                                              "+domain.options.subtask_by=key"]).domain, tmp_path / "cache")["test"]
    assert [r["subtask"] for r in by_key] == ["2steps_1", "2steps_2", "2steps_multi", "3steps_multi"]
    by_concept = load_domain(compose("evaluate", ["domain=wemath", f"domain.path={snapshot}",
                                                  "+domain.options.subtask_by=knowledge_concept"]).domain,
                             tmp_path / "cache")["test"]
    assert by_concept[1]["subtask"] == "Left-Right Position"
    assert by_concept[2]["subtask"] == f"{UNITS};Left-Right Position"  # a multi-step question: its joined list
    with pytest.raises(ValueError, match="subtask_by='skill'"):
        load_domain(compose("evaluate", ["domain=wemath", f"domain.path={snapshot}",
                                         "+domain.options.subtask_by=skill"]).domain, tmp_path / "cache")


def test_option_column_must_be_a_string(tmp_path, hf_datasets_cache, caplog):
    """A list-typed ``option`` column (not the published string) is named, never split into characters."""
    features = Features({**FEATURES, "option": [Value("string")]})
    row = dict(_row(1, "2steps_1", "2steps_1"), option=["A. 1", "B. 2"])
    snapshot = write_default_snapshot(tmp_path / "bad", {"testmini": [row, row | {"key": "2steps_2"}]}, features)
    with caplog.at_level("WARNING"):
        rows = load_domain(compose("evaluate", ["domain=wemath", f"domain.path={snapshot}"]).domain,
                           tmp_path / "cache")["test"]
    assert rows == [] and "column 'option' is list, expected a string" in caplog.text


def test_evaluate_cli_path_on_the_snapshot(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    result, preds, evaluated = evaluate_snapshot(tmp_path, "wemath", _snapshot(tmp_path), random_tiny_ckpt)
    assert set(evaluated["mode"]) == {"direct", "cot"} and len(evaluated) == 4 * 2
    assert {r["subtask"] for r in result.per_subtask()} == {"S1", "S2", "S3"}
