"""LogicVista in its published layout (the owners' repository: ``data/dataset.json`` keyed by question id +
``data/images/``) through the real loader and `evaluate.py domain=logicvista`; multi-letter golds follow the
official comparison (VLMEvalKit ``logicvista.py``: ``normalize_logicvista_answer`` sorts the labels of both
sides, then ``hit = extracted == answer``)."""

from __future__ import annotations

import json

import pytest

from dualtune.data.adapters import SkipRow
from dualtune.data.adapters.logicvista import gold_labels, read
from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.prompting.rules import letter_set
from dualtune.prompting.templates import prompt_text
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.published import evaluate_snapshot, png_bytes


def _q(question, answer, skill="inductive", capability=("diagram",)):
    return {"question": question, "answer": answer, "reasoning": "Because.", "skill": [skill],
            "capability": list(capability), "imagesource": "aptitudetests", "sourcelink": "https://example.org"}


QUESTIONS = {
    "v1_0": _q("What choice (A, B, C, or D) should be in place of the question mark?", "C"),
    "v1_1": _q("Which choices in the image (A-D) belong to the green category?", "A, C"),
    "v1_4": _q("Who is the odd-one-out? Select answers from A-I", "G", "spatial"),
    "v1_20": _q("Which is the correct answer according to the image? Select from 1-5", "3", "deductive", ("ocr",)),
    "v1_30": _q("Which two statements follow? Select from 1-5", "1, 4", "deductive"),
    "v1_40": _q("Which is it?", "yes", "numerical"),            # skip: not a set of option labels
    "v1_50": _q("Which is it? A-D", "A", "made-up"),            # skip: not a LogicVista skill
}


def _snapshot(tmp_path):
    root = tmp_path / "LogicVista"
    (root / "data/images").mkdir(parents=True)
    table = {qid: dict(q, imagename=f"{qid}.png") for qid, q in QUESTIONS.items()}
    (root / "data/dataset.json").write_text(json.dumps(table, indent=4))
    for qid in QUESTIONS:
        (root / f"data/images/{qid}.png").write_bytes(png_bytes("white"))
    return root


def test_published_rows_map_to_schema_with_official_rules(tmp_path, caplog):
    cfg = compose("evaluate", ["domain=logicvista", f"domain.path={_snapshot(tmp_path)}"])
    with caplog.at_level("WARNING"):
        data = load_domain(cfg.domain, tmp_path / "cache")
    assert "answer is not a set of option labels" in caplog.text and "unknown first skill" in caplog.text
    rows = {r["id"]: r for r in data["test"]}
    assert sorted(rows) == ["logicvista/v1_0", "logicvista/v1_1", "logicvista/v1_20", "logicvista/v1_30",
                            "logicvista/v1_4"]
    single, pair, odd = rows["logicvista/v1_0"], rows["logicvista/v1_1"], rows["logicvista/v1_4"]
    digit, digits = rows["logicvista/v1_20"], rows["logicvista/v1_30"]
    assert [r["subtask"] for r in (single, odd, digit)] == ["inductive", "spatial", "deductive"]
    assert single["options"] == [""] * 4 and len(odd["options"]) == 9  # labels A-I, drawn in the image
    assert prompt_text(single, "direct").count("\nOptions: A, B, C, D\n") == 1
    assert pair["answer"] == "A, C" and json.loads(pair["meta"])["scoring"]["multi"] is True  # kept by the validator
    assert decode_image(single["images"][0]).size == (28, 28)
    assert json.loads(single["meta"])["capability"] == ["diagram"]

    # The official comparison: the same set of labels, in any order and any wording of the list.
    for output in ("A, C", "<answer>C and A</answer>", "The answer is (A) and (C).", "Answer: C, A"):
        assert score_output(output, pair)[1] == 1.0, output
    for output in ("A", "A, B, C", "A or C", "C"):  # a subset, a superset, a hedge: wrong
        assert score_output(output, pair)[1] == 0.0, output
    assert score_output("G", odd)[1] == 1.0 and score_output("F", odd)[1] == 0.0
    # Digit labels ("Select from 1-5", gold "3"): options "1".."5"; the digit or its letter names the option.
    assert digit["options"] == ["1", "2", "3", "4", "5"] and digit["answer"] == "C"
    assert score_output("3", digit)[1] == 1.0 and score_output("4", digit)[1] == 0.0
    assert digits["answer"] == "A, D" and score_output("4 and 1", digits)[1] == 1.0
    assert score_output("1", digits)[1] == 0.0


def test_label_sets_and_layout_errors(tmp_path):
    assert gold_labels("C, A") == ["A", "C"] and gold_labels("3") == ["3"]
    with pytest.raises(SkipRow):
        gold_labels("A3")
    assert letter_set("C and A", [""] * 4) == letter_set("A, C", [""] * 4) == "A, C"
    assert letter_set("A", [""] * 4) == "A" and letter_set("E", [""] * 4) is None  # E is not an option
    with pytest.raises(FileNotFoundError, match="Yijia-Xiao/LogicVista"):
        list(read(str(tmp_path / "missing"), None, "test"))


def test_evaluate_cli_path_on_the_snapshot(tmp_path, random_tiny_ckpt):
    result, preds, evaluated = evaluate_snapshot(tmp_path, "logicvista", _snapshot(tmp_path), random_tiny_ckpt)
    assert len(evaluated) == 5 * 2 and set(evaluated["mode"]) == {"direct", "cot"}
    assert sorted(preds[preds["status"] != "evaluated"]["id"]) == ["v1_40", "v1_50"]
    assert {r["subtask"] for r in result.per_subtask()} == {"inductive", "spatial", "deductive"}
