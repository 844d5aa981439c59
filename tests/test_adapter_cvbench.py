"""CV-Bench in its published layout (``test_2d.parquet`` + ``test_3d.parquet``, README configs default / 2D /
3D) through the real loader and `evaluate.py domain=cvbench`; letter scoring and the Cambrian aggregate
follow the official code."""

from __future__ import annotations

import json

import pytest
import yaml
from datasets import Dataset, Features, Image, Sequence, Value

from dualtune.boundary import boundary_report
from dualtune.data.sources import load_domain
from dualtune.evaluation.runner import EvalResult
from dualtune.prompting.answers import score_output
from dualtune.schema import decode_image
from tests.conftest import compose
from tests.published import evaluate_snapshot, png_bytes

FEATURES = Features({
    "idx": Value("int64"), "type": Value("string"), "task": Value("string"), "image": Image(),
    "question": Value("string"), "choices": Sequence(Value("string")), "answer": Value("string"),
    "prompt": Value("string"), "filename": Value("string"), "source": Value("string"),
    "source_dataset": Value("string"), "source_filename": Value("string"), "target_class": Value("string"),
    "target_size": Value("int64"), "bbox": Sequence(Value("float64")),
})


def _row(idx, kind, task, source, answer, choices=("0", "1", "2", "3")):
    question = f"How many objects ({idx})?"
    return {"idx": idx, "type": kind, "task": task, "image": {"bytes": png_bytes("blue"), "path": None},
            "question": question, "choices": list(choices), "answer": answer,
            "prompt": question + " Select from the following choices.", "filename": f"img/{kind}/{task}/{idx}.png",
            "source": source, "source_dataset": source, "source_filename": f"{idx}.jpg", "target_class": "chair",
            "target_size": 100, "bbox": [0.0, 0.0, 1.0, 1.0]}


ROWS_2D = [_row(0, "2D", "Count", "ADE20K", "(C)"), _row(1, "2D", "Count", "COCO", "(A)"),
           _row(2, "2D", "Relation", "COCO", "(B)", ("left", "right")),
           _row(3, "2D", "Count", "ADE20K", "C")]  # gold not in "(X)" form: counted skip
ROWS_3D = [_row(10, "3D", "Depth", "Omni3D", "(A)", ("the lamp", "the chair")),
           _row(11, "3D", "Distance", "Omni3D", "(B)", ("the lamp", "the chair")),
           _row(12, "3D", "Depth", "Omni3D", "(E)", ("the lamp", "the chair"))]  # gold beyond the choices


def _snapshot(tmp_path):
    root = tmp_path / "CV-Bench"
    root.mkdir()
    Dataset.from_list(ROWS_2D, features=FEATURES).to_parquet(str(root / "test_2d.parquet"))
    Dataset.from_list(ROWS_3D, features=FEATURES).to_parquet(str(root / "test_3d.parquet"))
    both = ["test_2d.parquet", "test_3d.parquet"]
    configs = [{"config_name": "default", "data_files": [{"split": "test", "path": both}]},
               {"config_name": "2D", "data_files": [{"split": "test", "path": "test_2d.parquet"}]},
               {"config_name": "3D", "data_files": [{"split": "test", "path": "test_3d.parquet"}]}]
    (root / "README.md").write_text(f"---\n{yaml.safe_dump({'configs': configs}, sort_keys=False)}---\n# CV-Bench\n")
    return root


def test_rows_map_to_four_tasks_with_type_and_source(tmp_path, hf_datasets_cache, caplog):
    cfg = compose("evaluate", ["domain=cvbench", f"domain.path={_snapshot(tmp_path)}"])
    with caplog.at_level("WARNING"):
        rows = {r["id"]: r for r in load_domain(cfg.domain, tmp_path / "cache")["test"]}
    assert "adapter skipped 2 rows" in caplog.text and "answer is not '(X)'" in caplog.text
    assert sorted(rows) == ["cvbench/0", "cvbench/1", "cvbench/10", "cvbench/11", "cvbench/2"]
    assert {r["subtask"] for r in rows.values()} == {"Count", "Relation", "Depth", "Distance"}
    assert rows["cvbench/0"]["answer"] == "C" and rows["cvbench/0"]["options"] == ["0", "1", "2", "3"]
    assert json.loads(rows["cvbench/1"]["meta"])["group"] == ["2D", "COCO"]
    assert json.loads(rows["cvbench/11"]["meta"])["group"] == ["3D", "Omni3D"]
    assert decode_image(rows["cvbench/0"]["images"][0]).size == (28, 28)
    only_3d = compose("evaluate", ["domain=cvbench", f"domain.path={tmp_path / 'CV-Bench'}", "domain.subsets=3D"])
    assert {r["subtask"] for r in load_domain(only_3d.domain, tmp_path / "cache3")["test"]} == {"Depth", "Distance"}


def test_choices_given_as_one_string_are_a_counted_skip(tmp_path, hf_datasets_cache, caplog):
    from dualtune.data.adapters import AdapterContext, SkipRow
    from dualtune.data.adapters.cvbench import to_sample

    row = dict(_row(5, "2D", "Count", "COCO", "(A)"), choices="['0', '1']")
    with pytest.raises(SkipRow, match="choices must be a non-empty list of strings, got str"):
        to_sample(row, AdapterContext(root=None, subset=None, split="test", domain="cvbench"))


@pytest.mark.parametrize("output, expected", [
    # Official verdicts: lmms-eval cv_bench/utils.py::cv_bench_process_results, gold "(C)" stripped to "C",
    # prediction = _extract_answer_letter(response) (leading "(", letter, ")" / "." / spaces).
    ("(C)", 1.0), ("C", 1.0), ("C. 2", 1.0), ("c", 1.0), ("(C) 2", 1.0), ("(B)", 0.0), ("A", 0.0),
])
def test_letter_scoring_matches_the_official_verdicts(output, expected):
    sample = {"id": "cv", "answer": "C", "answer_type": "choice", "options": ["0", "1", "2", "3"],
              "question": "How many chairs?", "meta": json.dumps({"group": ["2D", "ADE20K"]})}
    assert score_output(output, sample)[1] == expected


def test_cambrian_aggregate_is_the_mean_of_2d_and_3d():
    # ADE20K 1/1, COCO 0/3, Omni3D 1/2: Cambrian ((1 + 0) / 2 + 1/2) / 2 = 50 %; sample-weighted 2/6.
    def item(i, subtask, group, score):
        return {"domain": "cvbench", "subtask": subtask, "id": i, "group": group,
                "B_S": score, "B_L": score, "DT_S": score, "DT_L": score}
    items = [item(0, "Count", ["2D", "ADE20K"], 1.0), *(item(i, "Count", ["2D", "COCO"], 0.0) for i in (1, 2, 3)),
             item(4, "Depth", ["3D", "Omni3D"], 1.0), item(5, "Distance", ["3D", "Omni3D"], 0.0)]
    assert boundary_report(items, n_boot=20, aggregate="cvbench")["aggregates"][0]["B_S"] == pytest.approx(50.0)
    assert boundary_report(items, n_boot=20)["aggregates"][0]["B_S"] == pytest.approx(100 / 3)
    assert boundary_report(items, n_boot=20, aggregate="macro")["aggregates"][0]["B_S"] == pytest.approx(
        (25 + 100 + 0) / 3)
    records = [{"id": it["id"], "domain": "cvbench", "subtask": it["subtask"], "mode": "direct", "group": it["group"],
                "score": it["B_S"]} for it in items]
    agg = EvalResult(records=records).aggregates()[0]
    assert agg["cvbench"] == pytest.approx(50.0) and agg["weighted"] == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="needs every item's group"):
        boundary_report([dict(items[0], group=None)], n_boot=5, aggregate="cvbench")


def test_evaluate_cli_path_on_the_snapshot(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    result, preds, _ = evaluate_snapshot(tmp_path, "cvbench", _snapshot(tmp_path), random_tiny_ckpt)
    assert (preds["status"] == "evaluated").sum() == 5 * 2
    summary = json.loads((tmp_path / "out/eval_summary.json").read_text())
    assert {"cvbench", "macro", "weighted"} <= set(summary["aggregates"][0])
    assert {r["subtask"] for r in result.per_subtask()} == {"Count", "Relation", "Depth", "Distance"}


def test_unknown_aggregate_is_a_named_config_error():
    from dualtune.config_checks import ConfigError, check_config

    with pytest.raises(ConfigError, match=r"domain.aggregate='median': expected one of \['weighted', 'macro'"):
        check_config(compose("evaluate", ["domain=cvbench", "domain.aggregate=median"]), "evaluate")
