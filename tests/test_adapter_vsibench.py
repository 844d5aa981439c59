"""VSI-Bench in its published layout (``test-00000-of-00001.parquet`` + per-dataset videos, one of them only
inside ``arkitscenes.zip``) through the real loader, the model's video path and `evaluate.py domain=vsibench`;
MRA and the overall follow the official evaluator."""

from __future__ import annotations

import json

import pytest
from datasets import Dataset, Features, Sequence, Value

from dualtune.aggregates import aggregate_weights
from dualtune.boundary import boundary_report
from dualtune.data.sources import load_domain
from dualtune.prompting.answers import score_output
from dualtune.prompting.numbers import mean_relative_accuracy
from tests.conftest import compose
from tests.published import evaluate_snapshot
from tests.video_files import write_mp4, write_zip

FEATURES = Features({"id": Value("int64"), "dataset": Value("string"), "scene_name": Value("string"),
                     "question_type": Value("string"), "question": Value("string"),
                     "ground_truth": Value("string"), "options": Sequence(Value("string"))})
OPTS = ["A. chair", "B. table", "C. sofa", "D. lamp"]
VIDEO = ["domain.options.video_max_frames=4", "domain.options.video_fps=2"]


def _row(i, qtype, gold, options=None, dataset="scannet", scene="scene0000_00"):
    return {"id": i, "dataset": dataset, "scene_name": scene, "question_type": qtype,
            "question": f"Question {i} about the room?", "ground_truth": gold, "options": options}


ROWS = [
    _row(0, "object_counting", "3"), _row(1, "object_abs_distance", "10"),
    _row(2, "object_size_estimation", "42", dataset="arkitscenes", scene="41069025"),  # video only in the zip
    _row(3, "room_size_estimation", "20.5"), _row(4, "object_rel_distance", "B", OPTS),
    _row(5, "object_rel_direction_easy", "A", OPTS[:2]), _row(6, "object_rel_direction_medium", "C", OPTS[:3]),
    _row(7, "object_rel_direction_hard", "D", OPTS), _row(8, "route_planning", "A", OPTS),
    _row(9, "obj_appearance_order", "B", OPTS),
    _row(10, "object_counting", "2", scene="scene9999_00"),  # no such video: counted skip
    _row(11, "object_rel_distance", "B", ["chair", "table"]),  # options without their letters: counted skip
    _row(12, "object_teleportation", "1"),  # not a VSI-Bench type: counted skip
    _row(13, "object_counting", "2", scene="scene0001_00"),  # a corrupt video file: counted skip
]


def _snapshot(tmp_path, rows=ROWS):
    root = tmp_path / "VSI-Bench"
    root.mkdir()
    Dataset.from_list(rows, features=FEATURES).to_parquet(str(root / "test-00000-of-00001.parquet"))
    (root / "README.md").write_text("# VSI-Bench (test snapshot)\n")
    write_mp4(root / "scannet" / "scene0000_00.mp4")
    (root / "scannet" / "scene0001_00.mp4").write_bytes(b"not an mp4 at all" * 10)
    clip = write_mp4(tmp_path / "clip.mp4", n_frames=6)
    write_zip(root / "arkitscenes.zip", {"arkitscenes/41069025.mp4": clip})
    return root


def test_rows_map_to_eight_types_with_video_files(tmp_path, hf_datasets_cache, caplog):
    root = _snapshot(tmp_path)
    cfg = compose("evaluate", ["domain=vsibench", f"domain.path={root}", *VIDEO])
    with caplog.at_level("WARNING"):
        rows = {r["id"]: r for r in load_domain(cfg.domain, tmp_path / "cache")["test"]}
    assert "missing video file" in caplog.text and "lacks its letter" in caplog.text
    assert "unknown question_type 'object_teleportation'" in caplog.text and "undecodable video" in caplog.text
    assert sorted(rows) == [f"vsibench/{i}" for i in range(10)]
    assert {r["subtask"] for r in rows.values()} == {
        "object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation",
        "object_rel_distance", "object_rel_direction", "route_planning", "obj_appearance_order"}
    meta = {k: json.loads(r["meta"]) for k, r in rows.items()}
    assert [meta[f"vsibench/{i}"]["variant"] for i in (5, 6, 7)] == ["easy", "medium", "hard"]
    assert (root / "arkitscenes" / "41069025.mp4").is_file()  # extracted from the published zip
    assert meta["vsibench/2"]["video"]["path"].endswith("arkitscenes/41069025.mp4")
    assert meta["vsibench/0"]["video"] == {"path": str((root / "scannet/scene0000_00.mp4").resolve()),
                                           "fps": 2.0, "max_frames": 4, "max_pixels": 401408}
    assert rows["vsibench/4"]["options"] == ["chair", "table", "sofa", "lamp"] and rows["vsibench/4"]["answer"] == "B"
    assert rows["vsibench/0"]["images"] == [] and rows["vsibench/0"]["video"] == []


def test_options_given_as_one_string_are_a_counted_skip():
    from dualtune.data.adapters import AdapterContext, SkipRow
    from dualtune.data.adapters.vsibench import to_sample

    ctx = AdapterContext(root=None, subset=None, split="test", domain="vsibench")
    with pytest.raises(SkipRow, match="options must be a non-empty list of strings, got str"):
        to_sample(_row(14, "route_planning", "A", "A. left B. right"), ctx)  # never one-letter options


@pytest.mark.parametrize("output, expected", [
    # Official verdicts: vsibench/utils.py::mean_relative_accuracy (θ = np.linspace(.5, .95, 10), err <= 1 - θ)
    # evaluated on these predictions against gold 10.
    ("9.5", 1.0),   # err 0.05 <= 1 - 0.95 = 0.050000000000000044: the inclusive boundary passes every θ
    ("10.5", 1.0),
    ("9", 0.9),     # err 0.1 <= 1 - 0.8999999999999999 passes; fails only θ = 0.95
    ("12", 0.6),    # err 0.2 > 1 - 0.8 = 0.19999999999999996: fails from θ = 0.8 on
    ("15", 0.1),    # err 0.5 <= 1 - 0.5: only θ = 0.5
    ("4.9", 0.0),
    ("<answer>9.5</answer>", 1.0),
])
def test_mra_follows_the_official_boundary(output, expected):
    sample = {"id": "x", "answer": "10", "answer_type": "number", "question": "How far?",
              "meta": json.dumps({"scoring": {"metric": "mra_vsibench"}})}
    assert score_output(output, sample)[1] == pytest.approx(expected)


def test_official_and_paper_mra_differ_only_at_boundaries():
    assert mean_relative_accuracy(9.5, 10, inclusive=True) == 1.0 and mean_relative_accuracy(9.5, 10) == 0.9
    assert mean_relative_accuracy(3, 3, inclusive=True) == 1.0 and mean_relative_accuracy(2, 3, inclusive=True) == 0.4
    assert mean_relative_accuracy(0, 0, inclusive=True) == 1.0 and mean_relative_accuracy(1, 0, inclusive=True) == 0.0


@pytest.mark.parametrize("output, expected", [
    # Official: vsibench/utils.py::exact_match(fuzzy_matching(pred), gt): first word, trailing '.' dropped.
    ("B", 1.0), ("B.", 1.0), ("b", 1.0), ("B. table", 1.0), ("C", 0.0), ("A. chair", 0.0),
])
def test_multiple_choice_letters(output, expected):
    sample = {"id": "y", "answer": "B", "answer_type": "choice", "options": ["chair", "table", "sofa", "lamp"],
              "question": "Which is closest?", "meta": "{}"}
    assert score_output(output, sample)[1] == expected


def test_overall_is_the_official_macro_with_rel_direction_over_its_difficulties():
    # Rel. direction: easy 1/1, medium 0/2, hard 1/1 -> official (1 + 0 + 1) / 3 = 2/3 (pooled would be 1/2);
    # counting 1/2 -> overall = (2/3 + 1/2) / 2.
    def item(i, subtask, score, variant=None):
        return {"domain": "vsibench", "subtask": subtask, "id": i, "variant": variant,
                "B_S": score, "B_L": score, "DT_S": score, "DT_L": score}
    items = [item(0, "object_rel_direction", 1.0, "easy"), item(1, "object_rel_direction", 0.0, "medium"),
             item(2, "object_rel_direction", 0.0, "medium"), item(3, "object_rel_direction", 1.0, "hard"),
             item(4, "object_counting", 1.0), item(5, "object_counting", 0.0)]
    report = boundary_report(items, n_boot=20, aggregate={"vsibench": "macro"})
    by_task = {r["subtask"]: r for r in report["subtasks"]}
    assert by_task["object_rel_direction"]["B_S"] == pytest.approx(200 / 3)
    assert report["aggregates"][0]["B_S"] == pytest.approx((200 / 3 + 50) / 2)
    assert report["aggregate_kinds"] == {"vsibench": "macro"}
    assert boundary_report(items, n_boot=20)["aggregates"][0]["B_S"] == pytest.approx(50.0)  # default: pooled
    assert aggregate_weights(items, "weighted") is None


def test_encoding_uses_the_processor_video_path(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    from dualtune.data.encoding import encode_generation_batch, encode_train_example
    from dualtune.models.loading import load_processor
    from dualtune.scoring import strip_images

    cfg = compose("evaluate", ["domain=vsibench", f"domain.path={_snapshot(tmp_path)}", *VIDEO])
    sample = next(r for r in load_domain(cfg.domain, tmp_path / "cache")["test"] if r["id"] == "vsibench/0")
    processor = load_processor(random_tiny_ckpt)
    enc = encode_generation_batch(processor, [sample], "direct")
    assert "pixel_values" not in enc and enc["video_grid_thw"].tolist() == [[2, 4, 4]]  # 4 frames -> t = 2
    video_id = processor.tokenizer.convert_tokens_to_ids(processor.video_token)
    assert int((enc["input_ids"] == video_id).sum()) == 2 * 4 * 4 // 4
    assert enc["second_per_grid_ts"].tolist() == pytest.approx([2 / (4 / 8 * 4)])  # real timestamps: 4 of 8 frames
    train = encode_train_example(processor, sample, "cot")
    assert "pixel_values_videos" in train and int((train["input_ids"] == video_id).sum()) == 8
    text_only = encode_generation_batch(processor, [strip_images(sample)], "direct")
    assert "pixel_values_videos" not in text_only and int((text_only["input_ids"] == video_id).sum()) == 0


def test_evaluate_cli_path_on_the_snapshot(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    result, preds, evaluated = evaluate_snapshot(tmp_path, "vsibench", _snapshot(tmp_path), random_tiny_ckpt, *VIDEO)
    assert len(evaluated) == 10 * 2 and set(evaluated["mode"]) == {"direct", "cot"}
    assert len({r["subtask"] for r in result.per_subtask()}) == 8
    assert set(evaluated.loc[evaluated["subtask"] == "object_rel_direction", "variant"]) == {"easy", "medium", "hard"}
