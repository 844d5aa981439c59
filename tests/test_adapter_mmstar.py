"""MMStar in its published layout (``mmstar.parquet``, config ``mmstar``, split ``val``; options inline in the
question) through the real loader and `evaluate.py domain=mmstar`; verdicts follow the official rule
(lmms-eval ``mmstar/utils.py::exact_match``, "brought from MMStar")."""

from __future__ import annotations

import json

import pytest
from datasets import Features, Image, Value

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.mmstar import split_options, to_sample
from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from tests.conftest import compose
from tests.published import evaluate_snapshot, png_bytes, write_parquet_snapshot

FEATURES = Features({
    "index": Value("int64"), "question": Value("string"), "image": Image(), "answer": Value("string"),
    "category": Value("string"), "l2_category": Value("string"),
    "meta_info": {"source": Value("string"), "split": Value("string"), "image_path": Value("string")},
})


def _row(index, question, answer, category="coarse perception", l2="image scene and topic"):
    return {"index": index, "question": question, "image": {"bytes": png_bytes("white"), "path": None},
            "answer": answer, "category": category, "l2_category": l2,
            "meta_info": {"source": "MMBench", "split": "val", "image_path": f"images/{index}.jpg"}}


ROWS = [
    _row(0, "Which option describe the object relationship in the image correctly?\nOptions: A: The suitcase is "
            "on the book., B: The suitcase is beneath the cat., C: The suitcase is beneath the bed., D: The "
            "suitcase is beneath the book.", "A", "instance reasoning", "cross-instance relation reasoning"),
    _row(1, "Hint: Please answer the question and provide the correct option letter.\nQuestion: What is the "
            "total of 2, 3 and 4?\nOptions: A: 9, B: 1, 2, 3, C: 5, D: 7", "A", "math",
            "numeric commonsense and calculation"),
    _row(2, "What is the mood of the image?\nOptions: A: happy, B: sad", "B", "coarse perception", "image emotion"),
    _row(3, "No options here", "A"),                                        # skip: no inline options
    _row(4, "Q?\nOptions: A: x, B: y", "B", category="made-up category"),  # skip: not an MMStar category
]


def _snapshot(tmp_path):
    return write_parquet_snapshot(tmp_path / "MMStar", {"mmstar": {"val": ROWS}}, FEATURES, layout="mmstar.parquet")


def test_published_rows_map_to_schema_with_official_rules(tmp_path, hf_datasets_cache, caplog):
    cfg = compose("evaluate", ["domain=mmstar", f"domain.path={_snapshot(tmp_path)}"])
    with caplog.at_level("WARNING"):
        data = load_domain(cfg.domain, tmp_path / "cache")
    assert "no inline 'Options: A: ...' block" in caplog.text and "unknown MMStar category" in caplog.text
    rows = {r["id"]: r for r in data["test"]}
    assert sorted(rows) == ["mmstar/0", "mmstar/1", "mmstar/2"]
    first, calc, mood = rows["mmstar/0"], rows["mmstar/1"], rows["mmstar/2"]
    assert first["question"] == "Which option describe the object relationship in the image correctly?"
    assert first["options"][0] == "The suitcase is on the book." and len(first["options"]) == 4
    assert calc["options"] == ["9", "1, 2, 3", "5", "7"]  # a comma inside an option text is not a label
    assert calc["question"].startswith("Hint: ") and calc["question"].endswith("2, 3 and 4?")
    assert (first["subtask"], calc["subtask"], mood["subtask"]) == ("instance reasoning", "math", "coarse perception")
    meta = json.loads(first["meta"])
    assert meta["l2_category"] == "cross-instance relation reasoning" and meta["scoring"]["judge"] == "rule"
    # exact_match: the first character (or the one after "(", "option ", "the answer is ") equals the gold.
    for output in ("B", "(B) sad", "Option B", "The answer is B"):
        assert score_output(output, mood)[1] == 1.0, output
    assert score_output("A", mood)[1] == 0.0
    # Documented divergence: officially a response that merely *starts* with the gold letter ("Based on ...")
    # scores 1 for gold B; dualtune reads the answer the response names.
    assert score_output("Based on the image, A", mood)[1] == 0.0


def test_inline_options_and_column_types():
    assert split_options("Q?\nOptions: A: x, y, B: z") == ("Q?", ["x, y", "z"])
    with pytest.raises(SkipRow):
        split_options("Q? A or B")
    ctx = AdapterContext(root=None, subset=None, split="val", domain="mmstar")
    with pytest.raises(TypeError, match="'question' must be a string"):
        to_sample(dict(ROWS[0], question=["Q?"]), ctx)
    with pytest.raises(SkipRow, match="not the letter of an inline option"):
        to_sample(dict(ROWS[2], answer="C"), ctx)


def test_evaluate_cli_path_on_the_snapshot(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    result, preds, evaluated = evaluate_snapshot(tmp_path, "mmstar", _snapshot(tmp_path), random_tiny_ckpt)
    assert len(evaluated) == 3 * 2 and set(evaluated["mode"]) == {"direct", "cot"}
    assert sorted(preds[preds["status"] != "evaluated"]["id"].astype(str)) == ["3", "4"]
    assert {r["subtask"] for r in result.per_subtask()} == {"instance reasoning", "math", "coarse perception"}
