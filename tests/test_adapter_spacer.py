"""SpaceR-151k in its published layout (the decompressed directory: ``SpaceR-151k.jsonl`` in the Video-R1
record format, videos and images at each record's ``path``) through the real loader, the model's video path,
``score.py selection=rap`` and ``train.py algo.max_steps=2 eval.enabled=false``."""

from __future__ import annotations

import json

import pytest

from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.trainsets import run_score_and_train, write_jsonl, write_png
from tests.video_files import write_mp4

VIDEO = ["domain.options.video_max_frames=4", "domain.options.video_fps=2"]
OPTS = ["A. chair", "B. table", "C. sofa"]


def _record(pid, problem_type, solution, path="./SR-91k/scannet/scene0000_00.mp4", data_type="video",
            options=None, **extra):
    return {"problem_id": pid, "problem": f"Question {pid}: how is the room laid out?", "data_type": data_type,
            "problem_type": problem_type, "options": options or [], "solution": f"<answer>{solution}</answer>",
            "path": path, "data_source": "SR_dataset", **extra}


RECORDS = [
    _record(1, "numerical", "2.5", question_type="object_abs_distance",
            process="<think>The door is two steps from the bed.</think>"),
    _record(2, "numerical", "4", question_type="object_counting"),
    _record(3, "multiple choice", "B", options=OPTS, question_type="object_rel_distance"),
    _record(4, "multiple choice", "C", options=OPTS, question_type="object_rel_direction",
            path="./SR-91k/arkitscenes/41069025.mp4"),
    _record(5, "free-form", "a kitchen", path="./general/images/0.png", data_type="image",
            data_source="LLaVA-Video"),
    _record(6, "numerical", "3", path="./SR-91k/scannet/missing.mp4", question_type="object_counting"),  # skip
    _record(7, "multiple choice", "B", options="A. chair B. table", question_type="object_rel_distance"),  # skip
    _record(8, "ranking", "1"),  # not a SpaceR problem_type: skip
]


def _snapshot(tmp_path):
    root = tmp_path / "SpaceR-151k"
    write_mp4(root / "SR-91k/scannet/scene0000_00.mp4")
    write_mp4(root / "SR-91k/arkitscenes/41069025.mp4", n_frames=6)
    write_png(root / "general/images/0.png", "green")
    write_jsonl(root / "SpaceR-151k.jsonl", RECORDS)
    return root


def test_records_map_to_schema_with_video_files(tmp_path, caplog):
    root = _snapshot(tmp_path)
    cfg = compose("score", ["domain=spacer", f"domain.path={root}", *VIDEO])
    with caplog.at_level("WARNING"):
        data = load_domain(cfg.domain, tmp_path / "cache")
    assert data["test"] == [] and "missing video file" in caplog.text
    assert "unknown problem_type 'ranking'" in caplog.text
    assert "options must be a non-empty list of strings, got str" in caplog.text
    rows = {r["id"]: r for r in data["train"]}
    assert sorted(rows) == [f"spacer/{i}" for i in (1, 2, 3, 4, 5)]
    assert rows["spacer/1"]["cot"] == "The door is two steps from the bed." and rows["spacer/1"]["answer"] == "2.5"
    assert rows["spacer/3"]["options"] == ["chair", "table", "sofa"] and rows["spacer/3"]["answer"] == "B"
    assert [rows[f"spacer/{i}"]["subtask"] for i in (1, 3, 5)] == ["object_abs_distance", "object_rel_distance",
                                                                    "LLaVA-Video"]
    meta = json.loads(rows["spacer/4"]["meta"])
    assert meta["video"]["path"] == str((root / "SR-91k/arkitscenes/41069025.mp4").resolve())
    assert meta["video"]["max_frames"] == 4 and rows["spacer/4"]["images"] == []
    assert decode_image(rows["spacer/5"]["images"][0]).size == (28, 28)
    assert "video" not in json.loads(rows["spacer/5"]["meta"])
    # SpaceR's numerical reward is VSI-Bench's MRA (err <= 1 - θ, θ = linspace(.5, .95, 10)): 2.375 vs 2.5 is
    # err 0.05 -> 1.0 under that inclusive boundary.
    assert score_output("<answer>2.375</answer>", rows["spacer/1"])[1] == 1.0


def test_a_malformed_line_is_named(tmp_path):
    root = tmp_path / "snap"
    write_jsonl(root / "SpaceR-151k.jsonl", RECORDS[:1], raw_lines=["{not json"])
    with pytest.raises(ValueError, match=r"SpaceR-151k.jsonl:2: not valid JSON"):
        load_domain(compose("score", ["domain=spacer", f"domain.path={root}"]).domain, tmp_path / "cache")


def test_score_rap_and_train_through_the_video_path(tmp_path, random_tiny_ckpt, monkeypatch):
    import dualtune.data.encoding as encoding

    calls = []
    real = encoding.video_processor_kwargs
    monkeypatch.setattr(encoding, "video_processor_kwargs", lambda videos: calls.append(len(videos)) or real(videos))
    snapshot = _snapshot(tmp_path)
    from tests import trainsets

    monkeypatch.setattr(trainsets, "FAST", [*trainsets.FAST, *VIDEO])
    table, out = run_score_and_train(tmp_path, "spacer", snapshot, random_tiny_ckpt)
    assert len(table) == 5 and {"object_counting", "LLaVA-Video"} <= set(table["subtask"])
    assert any(calls) and (out / "model" / "model.safetensors").is_file()


def test_report_aggregates_follow_each_benchmark_config():
    from dualtune.recipes.train import aggregate_kinds

    cfg = compose("train", ["domain=spacer", "eval.domains=[vsibench,cvbench]"])
    assert aggregate_kinds(cfg) == {"spacer": "weighted", "vsibench": "macro", "cvbench": "weighted"}
    assert aggregate_kinds(compose("train", ["domain=math"])) == {"math": "weighted"}  # the lab: pooled, as before
    assert aggregate_kinds(compose("train", ["domain=cvbench", "domain.aggregate=cvbench"])) == {"cvbench": "cvbench"}
