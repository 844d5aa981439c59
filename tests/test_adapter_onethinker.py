"""OneThinker SFT image data in its published layout (onethinker_sft_image.json, LLaMA-Factory sharegpt
records with messages + images, image folders next to it) through the real loader: the response is split into
cot (<think>) and answer (<answer>); `score.py selection=rap` and `train.py eval.enabled=false
algo.max_steps=2` run on it."""

from __future__ import annotations

import json
import logging

import pytest

from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.prompting.templates import target_text
from tests.conftest import compose
from tests.trainsets import run_score_and_train, write_png

TAIL = ("\nPlease answer this question based on the visual content.Provide your thinking process between the "
        "<think> and </think> tags, and then give your final answer between the <answer> and </answer> tags.")


def _record(question, response, image, **extra):
    return {"messages": [{"role": "user", "content": f"<image>{question}{TAIL}"},
                         {"role": "assistant", "content": response}], "images": [image], **extra}


RECORDS = [
    _record("AB is the diameter of circle O and angle ABD = 50. Find angle BCD. Choices: (A) 30° (B) 35° (C) 40°",
            "<think>Angle ADB is 90, so angle BAD = 40 and BCD = BAD = 40.</think>\n<answer>C</answer>",
            "images/geo/1.png", category="Geometry"),
    _record("How many cubes are left?", "<think>5 minus 2 is 3.</think><answer>3</answer>", "images/clevr/2.png"),
    _record("Simplify the ratio shown.", "<think>Half of the area.</think><answer>$\\frac{1}{2}$</answer>",
            "images/math/3.png"),
    _record("What organ is highlighted?", "<think>It pumps blood.</think><answer>heart</answer>", "images/bio/4.png"),
    _record("Locate the dog.", "<think>Left side.</think><answer>{\"boxes\": [1, 2, 30, 40]}</answer>",
            "images/ground/5.png"),  # grounding output: counted skip
    _record("Track the car.", "<think>It moves.</think><answer>{}</answer>", "images/track/6.png",
            problem_type="tracking"),  # non-QA task: counted skip
    _record("How many birds?", "<answer>2</answer>", "images/clevr/7.png"),  # no rationale
]


def _snapshot(tmp_path):
    root = tmp_path / "OneThinker-train-data"
    for record in RECORDS:
        write_png(root / record["images"][0], "white")
    (root / "onethinker_sft_image.json").write_text(json.dumps(RECORDS), encoding="utf-8")
    return root


def test_records_split_into_cot_and_answer_with_answer_types(tmp_path, caplog):
    cfg = compose("score", ["domain=onethinker", f"domain.path={_snapshot(tmp_path)}"])
    with caplog.at_level(logging.WARNING):
        data = load_domain(cfg.domain, tmp_path / "cache")
    assert data["test"] == []
    rows = {r["id"]: r for r in data["train"]}
    ids = [f"onethinker/onethinker_sft_image#{i}" for i in (0, 1, 2, 3, 6)]
    assert sorted(rows) == sorted(ids)
    mc, count, ratio, organ, birds = (rows[i] for i in ids)
    assert mc["cot"] == "Angle ADB is 90, so angle BAD = 40 and BCD = BAD = 40."
    assert (mc["answer"], mc["answer_type"], mc["options"]) == ("C", "choice", ["30°", "35°", "40°"])
    assert mc["question"] == "AB is the diameter of circle O and angle ABD = 50. Find angle BCD."  # tail removed
    assert mc["subtask"] == "Geometry"  # the record's own category field
    assert (count["answer"], count["answer_type"], count["cot"]) == ("3", "number", "5 minus 2 is 3.")
    assert (ratio["answer"], ratio["answer_type"]) == ("\\frac{1}{2}", "math")
    assert (organ["answer"], organ["answer_type"]) == ("heart", "text") and '"judge": "rule"' in organ["meta"]
    assert (birds["cot"], birds["answer"]) == ("", "2")
    assert [r["subtask"] for r in (count, ratio, organ)] == ["number", "math", "text"]  # fallback: answer format
    # The CoT target is rebuilt from the split parts; the DA target is the answer alone.
    assert target_text(mc, "cot") == f"<think>{mc['cot']}</think><answer>C</answer>"
    assert target_text(mc, "direct") == "C"
    # Official verdicts, OneThinker's onethinker_reward.py::accuracy_reward: "numerical" compares round(x, 2)
    # (3.004 -> 3.0 == 3: 1; 3.01: 0); "math" uses math_verify (1/2 == 0.5: 1); "multiple choice" grade_answer.
    assert score_output("<think>.</think><answer>3.004</answer>", count)[1] == 1.0
    assert score_output("<answer>3.01</answer>", count)[1] == 0.0
    assert score_output("<answer>0.5</answer>", ratio)[1] == 1.0
    assert score_output("<answer>C</answer>", mc)[1] == 1.0 and score_output("<answer>B</answer>", mc)[1] == 0.0
    assert "structured answer (grounding / segmentation / tracking output)), e.g. ids ['onethinker_sft_image#4']" \
        in caplog.text
    assert "non-QA task (tracking)), e.g. ids ['onethinker_sft_image#5']" in caplog.text
    assert "onethinker/train: 1 of 5 training rows have no rationale" in caplog.text


def test_json_file_that_is_not_an_array_is_named(tmp_path):
    root = tmp_path / "snap"
    root.mkdir()
    (root / "onethinker_sft_image.json").write_text(json.dumps({"messages": []}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"onethinker_sft_image.json: expected a JSON array of records, found dict"):
        load_domain(compose("score", ["domain=onethinker", f"domain.path={root}"]).domain, tmp_path / "cache")


def test_score_rap_and_train_without_test_split(tmp_path, random_tiny_ckpt):
    table, _ = run_score_and_train(tmp_path, "onethinker", _snapshot(tmp_path), random_tiny_ckpt)
    assert len(table) == 5 and set(table["subtask"]) == {"Geometry", "number", "math", "text"}
