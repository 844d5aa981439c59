"""The sample schema's validator: bad rows become clear errors (strict) or counted skips."""

from __future__ import annotations

import io

import pytest
from datasets import Dataset
from PIL import Image

from dualtune.schema import FEATURES, SampleError, validate_rows


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (28, 28), "red").save(buf, format="PNG")
    return buf.getvalue()


def good(i=0, **kw):
    row = {"id": f"x{i}", "domain": "math", "subtask": "count", "images": [Image.new("RGB", (28, 28), "red")],
           "video": [], "question": "How many?", "options": [], "answer": "3", "answer_type": "number",
           "cot": "1, 2, 3.", "source": "test", "meta": "{}"}
    row.update(kw)
    return row


BAD = {
    "missing_answer": good(1, answer=""),
    "empty_question": good(2, question="   "),
    "answer_not_in_options": good(3, answer_type="choice", options=["red", "blue"], answer="E"),
    "undecodable_image": good(4, images=[{"bytes": b"not a png", "path": None}]),
    "bad_answer_type": good(5, answer_type="essay"),
    "choice_without_options": good(6, answer_type="choice", answer="A"),
}


def test_valid_rows_fit_the_features():
    rows, report = validate_rows([good(0), good(1, images=[{"bytes": _png(), "path": None}])])
    assert report.kept == 2 and report.total_skipped == 0
    ds = Dataset.from_list([good(0)], features=FEATURES)
    assert ds.features == FEATURES and ds[0]["images"][0].size == (28, 28)


def test_bad_rows_are_counted_not_dropped_silently(caplog):
    rows, report = validate_rows([good(0), *BAD.values()], name="unit")
    assert [r["id"] for r in rows] == ["x0"]
    assert dict(report.skipped) == {reason: 1 for reason in BAD}
    assert "skipped 6" in report.summary()
    assert "unit" in caplog.text and "missing_answer" in caplog.text


@pytest.mark.parametrize("reason", sorted(BAD))
def test_strict_mode_raises_naming_row_and_reason(reason):
    with pytest.raises(SampleError, match=f"{BAD[reason]['id']}.*{reason}"):
        validate_rows([BAD[reason]], strict=True)


def test_choice_answer_given_as_option_text_becomes_letter():
    rows, _ = validate_rows([good(0, answer_type="choice", options=["red", "blue"], answer="Blue")])
    assert rows[0]["answer"] == "B"
