"""MMMU in its published layout (one hub config per subject, ``<Subject>/validation-*.parquet``, options as a
string holding a Python list, image_1..image_7) through the real loader and `evaluate.py domain=mmmu`;
scoring verdicts are the official ones (MMMU repo ``eval/eval_utils.py``)."""

from __future__ import annotations

import json

import pytest
from datasets import Features, Image, Value
from omegaconf import OmegaConf

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.mmmu import SUBJECTS, to_sample
from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.prompting.templates import prompt_layout, prompt_text
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.published import evaluate_snapshot, png_bytes, write_parquet_snapshot

FEATURES = Features({
    "id": Value("string"), "question": Value("string"), "options": Value("string"), "explanation": Value("string"),
    **{f"image_{k}": Image() for k in range(1, 8)},
    "img_type": Value("string"), "answer": Value("string"), "topic_difficulty": Value("string"),
    "question_type": Value("string"), "subfield": Value("string"),
})
SIZES = {1: (28, 28), 2: (56, 56), 3: (28, 84)}  # distinct sizes -> distinct placeholder counts per image


def _row(rid, question, answer, options="[]", question_type="multiple-choice", images=(1,)):
    row = {"id": rid, "question": question, "options": options, "explanation": "", "img_type": "['Diagrams']",
           "answer": answer, "topic_difficulty": "Easy", "question_type": question_type, "subfield": "sub"}
    for k in range(1, 8):
        row[f"image_{k}"] = {"bytes": png_bytes("white", SIZES[k]), "path": None} if k in images else None
    return row


SUBSETS = {
    "Accounting": [
        _row("validation_Accounting_1", "<image 1> Which fruit is shown?", "B",
             "['a pear', 'the red apple', 'a plum']"),
    ],
    "Math": [
        _row("validation_Math_1", "Compare <image 1> and <image 2>. Which one continues the pattern?", "A",
             "['<image 3>', 'neither']", images=(1, 2, 3)),
        _row("validation_Math_2", "<image 1> Find x.", "6.333", question_type="open"),
        _row("validation_Math_3", "<image 1> Find y.", "0.9965", question_type="open"),
    ],
    "History": [
        _row("validation_History_1", "<image 1> Which city is this?", "['Tikal', 'the Mayan city of Tikal']",
             question_type="open"),
        _row("validation_History_2", "<image 1> Options broken", "A", "not a list"),       # skip: not a literal
        _row("validation_History_3", "<image 1> Options a string", "A", "'abc'"),          # skip: not a list
        _row("validation_History_4", "<image 2> names an empty column", "A", "['x', 'y']"),  # skip: no image_2
    ],
}


def _snapshot(tmp_path):
    configs = {subject: {"validation": rows} for subject, rows in SUBSETS.items()}
    return write_parquet_snapshot(tmp_path / "MMMU", configs, FEATURES)


def _load(tmp_path, caplog):
    cfg = compose("evaluate", ["domain=mmmu", f"domain.path={_snapshot(tmp_path)}",
                               f"domain.subsets=[{','.join(SUBSETS)}]"])
    with caplog.at_level("WARNING"):
        data = load_domain(cfg.domain, tmp_path / "cache")
    return {r["id"]: r for r in data["test"]}


def test_domain_config_lists_the_30_official_subjects():
    cfg = OmegaConf.load("conf/domain/mmmu.yaml")
    assert sorted(cfg.subsets) == SUBJECTS and len(SUBJECTS) == 30
    assert cfg.path == "MMMU/MMMU" and cfg.splits.test == "validation" and cfg.splits.train is None


def test_published_rows_map_to_schema_with_official_rules(tmp_path, hf_datasets_cache, caplog):
    rows = _load(tmp_path, caplog)
    assert sorted(rows) == ["mmmu/validation_Accounting_1", "mmmu/validation_History_1", "mmmu/validation_Math_1",
                            "mmmu/validation_Math_2", "mmmu/validation_Math_3"]
    assert "options is not a Python list literal" in caplog.text and "options is not a list of strings" in caplog.text
    assert "names an empty image_k column" in caplog.text
    mc, multi = rows["mmmu/validation_Accounting_1"], rows["mmmu/validation_Math_1"]
    assert mc["options"] == ["a pear", "the red apple", "a plum"] and mc["answer"] == "B"  # never 1-char options
    assert mc["subtask"] == "Accounting" and json.loads(mc["meta"])["discipline"] == "Business"
    assert [decode_image(img).size for img in multi["images"]] == [SIZES[1], SIZES[2], SIZES[3]]
    assert multi["options"] == ["<image 3>", "neither"]

    # parse_multi_choice_response: "(B)" and a bare " B " are candidates; > 5 words naming one option's text
    # picks that option; another letter is wrong.
    assert score_output("(B)", mc)[1] == 1.0
    assert score_output("The answer is B.", mc)[1] == 1.0
    assert score_output("I believe the correct choice is the red apple here", mc)[1] == 1.0
    assert score_output("C", mc)[1] == 0.0
    # normalize_str + eval_open: numbers are rounded to 2 decimals on both sides, then compared exactly.
    x, y = rows["mmmu/validation_Math_2"], rows["mmmu/validation_Math_3"]
    assert x["answer_type"] == "number" and x["answer"] == "6.33"
    assert json.loads(x["meta"])["scoring"]["precision"] == 2
    assert [score_output(f"<answer>{p}</answer>", x)[1] for p in ("6.33", "6.333", "6.334", "6.34")] == [1, 1, 1, 0]
    assert score_output("<answer>1</answer>", y)[1] == 1.0  # round(0.9965, 2) == 1.0 == float("1")
    # A gold that is a string holding a list: every element is accepted; text is compared normalized.
    city = rows["mmmu/validation_History_1"]
    assert city["answer_type"] == "text" and city["answer"] == "Tikal"
    assert json.loads(city["meta"])["scoring"]["accepted"] == ["the Mayan city of Tikal"]
    assert score_output("<answer>Tikal</answer>", city)[1] == 1.0
    assert score_output("<answer>The Mayan city of Tikal</answer>", city)[1] == 1.0
    assert score_output("<answer>Copan</answer>", city)[1] == 0.0


def test_column_types_are_validated_by_name():
    ctx = AdapterContext(root=None, subset="Math", split="validation", domain="mmmu")
    row = _row("validation_Math_9", "<image 1> q", "A", options="['x', 'y']")
    with pytest.raises(TypeError, match="'options' must be a string holding a Python list, found list"):
        to_sample(dict(row, options=["x", "y"]), ctx)
    with pytest.raises(SkipRow, match="options is not a list of strings"):
        to_sample(dict(row, options="'xy'"), ctx)
    with pytest.raises(SkipRow, match="unknown MMMU subject"):
        to_sample(row, AdapterContext(root=None, subset="Cooking", split="validation", domain="mmmu"))


def test_image_markers_place_each_image_in_the_encoded_prompt(tmp_path, hf_datasets_cache, caplog, random_tiny_ckpt):
    from dualtune.data.encoding import OverlongError, encode_generation_batch, encode_train_example
    from dualtune.models.loading import load_processor

    sample = _load(tmp_path, caplog)["mmmu/validation_Math_1"]
    processor = load_processor(random_tiny_ckpt)
    enc = encode_generation_batch(processor, [sample], "direct")
    merge = processor.image_processor.merge_size
    counts = [int(n) for n in enc["image_grid_thw"].prod(-1) // merge**2]
    assert len(set(counts)) == 3  # the three images are told apart by their placeholder counts
    text = processor.tokenizer.decode(enc["input_ids"][0][enc["attention_mask"][0].bool()])

    def image(n):
        return "<|vision_start|>" + "<|image_pad|>" * n + "<|vision_end|>"

    # image_1 and image_2 where the question names them, image_3 as option A's text; no image before the text.
    assert f"Compare {image(counts[0])} and {image(counts[1])}. Which one" in text
    assert f"A. {image(counts[2])}\nB. neither" in text
    assert text.count("<|vision_start|>") == 3 and "<image" not in text
    # Image tokens are never truncated: a training example over the limit is refused whole.
    train = encode_train_example(processor, sample, "direct", max_length=4096)
    assert int((train["labels"] == -100).sum()) == int(enc["attention_mask"][0].sum())
    with pytest.raises(OverlongError):
        encode_train_example(processor, sample, "direct", max_length=len(train["input_ids"]) - 1)
    # Marker-free samples keep their layout (images, then the text); the text-only variant keeps the markers.
    plain = dict(sample, question="Which one?", options=["x", "y"])
    messages, images = prompt_layout(plain, "cot")
    assert messages[0]["content"] == [{"type": "image"}] * 3 + [{"type": "text", "text": prompt_text(plain, "cot")}]
    assert [decode_image(im).size for im in images] == [SIZES[1], SIZES[2], SIZES[3]]
    text_only, none = prompt_layout(sample, "direct", num_images=0)
    assert none == [] and "<image 1>" in text_only[0]["content"][0]["text"]


def test_evaluate_cli_path_on_the_snapshot(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    result, preds, evaluated = evaluate_snapshot(tmp_path, "mmmu", _snapshot(tmp_path), random_tiny_ckpt,
                                                 f"domain.subsets=[{','.join(SUBSETS)}]")
    assert len(evaluated) == 5 * 2 and set(evaluated["mode"]) == {"direct", "cot"}
    skipped = preds[preds["status"] != "evaluated"]  # every input row is listed, skips with their reason
    assert sorted(skipped["id"]) == ["validation_History_2", "validation_History_3", "validation_History_4"]
    assert {r["subtask"] for r in result.per_subtask()} == {"Accounting", "Math", "History"}


def test_list_columns_nested_too_deep_are_counted_skips_not_crashes():
    """A list column stored as text goes through one parser (`training_sets.literal_value`) for MMMU and the
    training sets; a string nested too deep to parse (``json.loads`` raised RecursionError) is a SkipRow."""
    from dualtune.data.adapters.mmmu import parse_list_column
    from dualtune.data.adapters.training_sets import list_field

    deep = "[" * 100_000
    with pytest.raises(SkipRow, match="column 'choices' is a string that holds no list"):
        list_field({"choices": deep}, "choices")
    with pytest.raises(SkipRow, match="options is not a Python list literal"):
        parse_list_column(deep, "options")
    assert list_field({"choices": '["1", "2"]'}, "choices") == parse_list_column("['1', '2']", "options") == ["1", "2"]
