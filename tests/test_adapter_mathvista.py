"""MathVista in its published layout (hub parquet with the card's features) through the real loader and
`evaluate.py domain=mathvista domain.path=<snapshot>`; scoring follows the official rules."""

from __future__ import annotations

import json

from datasets import Features, Image, Sequence, Value

from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.published import evaluate_snapshot, png_bytes, write_default_snapshot

FEATURES = Features({
    "pid": Value("string"), "question": Value("string"), "image": Value("string"), "decoded_image": Image(),
    "choices": Sequence(Value("string")), "unit": Value("string"), "precision": Value("float64"),
    "answer": Value("string"), "question_type": Value("string"), "answer_type": Value("string"),
    "metadata": {"category": Value("string"), "context": Value("string"), "grade": Value("string"),
                 "img_height": Value("int64"), "img_width": Value("int64"), "language": Value("string"),
                 "skills": Sequence(Value("string")), "source": Value("string"), "split": Value("string"),
                 "task": Value("string")},
    "query": Value("string"),
})


def _row(pid, question, answer, question_type="free_form", answer_type="integer", choices=None, unit=None,
         precision=None, skills=("arithmetic reasoning",)):
    return {"pid": pid, "question": question, "image": f"images/{pid}.jpg",
            "decoded_image": {"bytes": png_bytes("white"), "path": None}, "choices": choices, "unit": unit,
            "precision": precision, "answer": answer, "question_type": question_type, "answer_type": answer_type,
            "metadata": {"category": "math-targeted-vqa", "context": "scene", "grade": "elementary school",
                         "img_height": 28, "img_width": 28, "language": "english", "skills": list(skills),
                         "source": "CLEVR-Math", "split": "testmini", "task": "math word problem"},
            "query": f"Hint: ...\nQuestion: {question}"}


ROWS = [
    _row("1", "How many objects are left?", "3"),
    _row("2", "What is the length of the bar?", "1.5", answer_type="float", precision=1.0, unit="cm",
         skills=("scientific reasoning", "arithmetic reasoning")),
    _row("3", "Which is larger?", "B side", question_type="multi_choice", answer_type="text",
         choices=["A side", "B side"], skills=("logical reasoning",)),
    _row("4", "List the values.", "[1, 2]", answer_type="list", skills=("statistical reasoning",)),
    _row("5", "Skill unknown", "1", skills=("made-up skill",)),  # not a MathVista skill: counted skip
]


def _snapshot(tmp_path):
    return write_default_snapshot(tmp_path / "MathVista", {"testmini": ROWS}, FEATURES)


def test_published_rows_map_to_schema_with_official_rules(tmp_path, hf_datasets_cache, caplog):
    cfg = compose("evaluate", ["domain=mathvista", f"domain.path={_snapshot(tmp_path)}"])
    with caplog.at_level("WARNING"):
        data = load_domain(cfg.domain, tmp_path / "cache")
    assert data["train"] == [] and "adapter skipped 1 rows" in caplog.text
    rows = {r["id"]: r for r in data["test"]}
    assert sorted(rows) == ["mathvista/1", "mathvista/2", "mathvista/3", "mathvista/4"]
    assert [rows[f"mathvista/{i}"]["subtask"] for i in "1234"] == ["Arithmetic", "Scientific", "Logical", "Statistical"]
    assert rows["mathvista/2"]["question"].endswith("(Unit: cm)")
    assert rows["mathvista/3"]["answer"] == "B" and rows["mathvista/3"]["options"] == ["A side", "B side"]
    assert decode_image(rows["mathvista/1"]["images"][0]).size == (28, 28)  # checked by the validator, decoded at use
    # Official rules: float rounded to the row's precision; list answers compared as normalized text.
    assert score_output("<answer>1.46</answer>", rows["mathvista/2"])[1] == 1.0
    assert score_output("<answer>1.6</answer>", rows["mathvista/2"])[1] == 0.0
    assert score_output("<answer>1, 2</answer>", rows["mathvista/4"])[1] == 1.0
    assert score_output("<answer>(B)</answer>", rows["mathvista/3"])[1] == 1.0
    assert json.loads(rows["mathvista/1"]["meta"])["scoring"]["judge"] == "rule"


def test_evaluate_cli_path_on_the_snapshot(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    result, preds, evaluated = evaluate_snapshot(tmp_path, "mathvista", _snapshot(tmp_path), random_tiny_ckpt)
    assert len(evaluated) == 4 * 2 and set(evaluated["mode"]) == {"direct", "cot"}
    # Every input row appears: the row the adapter skipped is listed with its reason; records are auditable.
    skipped = preds[preds["status"] != "evaluated"]
    assert list(skipped["id"].astype(str)) == ["5"] and "unknown first skill" in skipped["status"].iloc[0]
    assert {"question", "options", "answer", "answer_type", "extracted"} <= set(evaluated.columns)
    assert {r["subtask"] for r in result.per_subtask()} == {"Arithmetic", "Scientific", "Logical", "Statistical"}


def test_a_dataset_in_another_layout_gets_an_error_naming_the_columns(tmp_path, hf_datasets_cache):
    import pytest

    other = write_default_snapshot(tmp_path / "Other", {"testmini": [{"qid": "1", "text": "q"}]})
    cfg = compose("evaluate", ["domain=mathvista", f"domain.path={other}"])
    with pytest.raises(ValueError, match=r"lacks the columns \['pid', 'question', 'answer', 'question_type', 'answer_type', 'metadata'\].*columns found: \['qid', 'text'\]"):
        load_domain(cfg.domain, tmp_path / "cache")


def test_a_changed_or_second_local_snapshot_is_never_served_from_a_stale_cache(tmp_path, hf_datasets_cache):
    """`datasets` keys a local dir's cache by its name and layout: without dualtune's content key, a second
    snapshot with the same name, or the same snapshot edited in place, returned the first one's rows."""
    import time

    first = write_default_snapshot(tmp_path / "a" / "MathVista", {"testmini": ROWS[:1]}, FEATURES)
    second = write_default_snapshot(tmp_path / "b" / "MathVista", {"testmini": ROWS[1:2]}, FEATURES)

    def ids(path):
        return [r["id"] for r in load_domain(compose("evaluate", ["domain=mathvista", f"domain.path={path}"]).domain,
                                             tmp_path / "cache")["test"]]

    assert ids(first) == ["mathvista/1"] and ids(second) == ["mathvista/2"]
    time.sleep(0.01)
    write_default_snapshot(first, {"testmini": ROWS[2:3]}, FEATURES)  # edited in place
    assert ids(first) == ["mathvista/3"]
