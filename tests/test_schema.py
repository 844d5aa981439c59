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
    "missing_image_file": good(7, images=[{"bytes": None, "path": "/nonexistent/dualtune/x7.png"}]),
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
    assert "skipped 7" in report.summary()
    assert "unit" in caplog.text and "missing_answer" in caplog.text


@pytest.mark.parametrize("reason", sorted(BAD))
def test_strict_mode_raises_naming_row_and_reason(reason):
    with pytest.raises(SampleError, match=f"{BAD[reason]['id']}.*{reason}"):
        validate_rows([BAD[reason]], strict=True)


def test_choice_answer_given_as_option_text_becomes_letter():
    rows, _ = validate_rows([good(0, answer_type="choice", options=["red", "blue"], answer="Blue")])
    assert rows[0]["answer"] == "B"


def test_images_are_decoded_to_pil_on_request():
    row = good(0, images=[{"bytes": _png(), "path": None}], video=[{"bytes": _png(), "path": None}])
    kept, _ = validate_rows([row], decode_images=True)
    assert all(isinstance(img, Image.Image) and img.size == (28, 28) for img in kept[0]["images"] + kept[0]["video"])
    assert validate_rows([row])[0][0]["images"] == row["images"]  # checked, kept as given


def test_exact_duplicate_rows_are_deduped_and_counted_even_when_strict(caplog):
    for strict in (False, True):
        rows, report = validate_rows([good(0), good(1), good(0)], strict=strict, name="unit")
        assert [r["id"] for r in rows] == ["x0", "x1"] and dict(report.skipped) == {"duplicate_row": 1}
        assert report.kept == 2 and report.examples == {"duplicate_row": ["x0"]}
    assert "duplicate_row=1" in caplog.text and "'x0'" in caplog.text


def test_same_id_with_different_content_keeps_the_first_or_raises_naming_the_id(caplog):
    blue = good(0, images=[Image.new("RGB", (28, 28), "blue")])  # same text, other picture
    rows, report = validate_rows([good(0), good(0, answer="4"), blue, good(1)], name="unit")
    assert [(r["id"], r["answer"]) for r in rows] == [("x0", "3"), ("x1", "3")]
    assert rows[0]["images"][0].getpixel((0, 0)) == (255, 0, 0)
    assert dict(report.skipped) == {"conflicting_duplicate_id": 2}
    assert "1 ids occur with different content; kept the first row of each, skipped 2: ['x0']" in caplog.text
    with pytest.raises(SampleError, match=r"unit: 1 ids occur with different content: \['x0'\]"):
        validate_rows([good(0), blue], strict=True, name="unit")


def test_ids_shared_by_splits_are_reported_not_dropped(caplog):
    from dualtune.schema import warn_split_overlap

    splits = {"train": [good(0), good(1)], "test": [good(1), good(2)]}
    assert warn_split_overlap(splits, name="unit") == ["x1"]
    assert "unit: 1 ids occur in more than one split" in caplog.text and "['x1']" in caplog.text
    assert warn_split_overlap({"train": [good(0)], "test": [good(1)]}) == []


def test_sample_meta_is_decoded_in_one_place():
    """`sample_meta` (the one decoder of a sample's ``meta``, re-exported by `dualtune.data.sources`): a blank
    string is {}, a JSON value that is not an object is an error naming the sample."""
    from dualtune.data.sources import sample_meta as reexported
    from dualtune.prompting.templates import sample_video
    from dualtune.schema import sample_meta

    assert reexported is sample_meta
    assert sample_meta({"meta": "  "}) == {} and sample_meta({"meta": {"a": 1}}) == {"a": 1}
    assert sample_video({"id": "v", "meta": " "}) is None
    with pytest.raises(ValueError, match="sample 'x1': meta must be a JSON object, found list"):
        sample_meta({"id": "x1", "meta": "[1, 2]"})
