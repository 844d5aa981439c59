"""Data-refinement validation (Dual Tuning Figs. 5-7): the split rules and the tagger on hand-built reports, the
agreement and bootstrap math on hand-built numbers, selection=refine, and one real path on the tiny model (main
job -> a selection=refine retraining -> the study command)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dualtune.config_checks import ConfigError, check_config
from dualtune.curation_split import (keyword_tagger, predicted_gain, refine_problems, sign, split_tasks,
                                     tag_rows)
from dualtune.studies.refinement import agreement, bootstrap_agreement, measured_gain
from tests.conftest import TEST_MODEL_OVERRIDES, compose

# Hand-built report rows: (Gain_DA, Gain_CoT) and the parts worked out by hand.
REPORT = [{"domain": "d", "subtask": "A", "Gain_DA": 10.0, "Gain_CoT": -5.0, "region": "direct"},
          {"domain": "d", "subtask": "B", "Gain_DA": -3.0, "Gain_CoT": -1.0, "region": "negative"},
          {"domain": "d", "subtask": "C", "Gain_DA": 0.0, "Gain_CoT": -2.0, "region": "tie"},
          {"domain": "d", "subtask": "D", "Gain_DA": -4.0, "Gain_CoT": 6.0, "region": "cot"}]


def test_sign_split_rules_by_hand():
    parts = {s: split_tasks(REPORT, s) for s in ("gain_da", "gain_cot", "q3")}
    assert parts["gain_da"] == {("d", "A"): "positive", ("d", "B"): "negative", ("d", "C"): "positive",  # 0: not < 0
                                ("d", "D"): "negative"}
    assert parts["gain_cot"] == {("d", "A"): "negative", ("d", "B"): "negative", ("d", "C"): "negative",
                                 ("d", "D"): "positive"}
    assert parts["q3"] == {("d", "A"): "rest", ("d", "B"): "q3", ("d", "C"): "rest", ("d", "D"): "rest"}  # strict
    assert [predicted_gain(r, "q3") for r in REPORT] == [10.0, -1.0, 0.0, 6.0]
    assert [sign(predicted_gain(r, "q3")) for r in REPORT] == [1, -1, 0, 1]


def test_median_rule_cuts_ranked_halves():
    assert split_tasks(REPORT, "gain_da", "median") == {  # ranked 10 (A), 0 (C), -3 (B), -4 (D)
        ("d", "A"): "positive", ("d", "C"): "positive", ("d", "B"): "negative", ("d", "D"): "negative"}
    five = REPORT + [{"domain": "d", "subtask": "E", "Gain_DA": -3.5, "Gain_CoT": 0.0}]
    assert split_tasks(five, "gain_da", "median")[("d", "B")] == "positive"  # upper ceil(5/2) = 3: A, C, B
    with pytest.raises(ValueError, match="median"):
        split_tasks(REPORT, "q3", "median")


def always_physics(row, tasks):
    """A custom tagger for the test: every row is mmmu/Physics."""
    return [("mmmu", "Physics")]


def test_tags_from_data_then_tagger_with_counted_skips():
    tasks = [("mmmu", "Art"), ("mmmu", "Art_Theory"), ("mmmu", "Basic_Medical_Science"), ("mmmu", "Physics"),
             ("mathvista", "physics")]
    rows = [{"domain": "mmmu", "subtask": "Art", "question": "physics"},  # own (domain, subtask)
            {"domain": "o", "subtask": "choice", "meta": json.dumps({"subject": "Basic Medical Science"})},
            {"domain": "o", "subtask": "choice", "question": "In art theory, which school is this?"},
            {"domain": "o", "subtask": "choice", "question": "What is shown?"},
            {"domain": "o", "subtask": "choice", "question": "Art or Basic-Medical-Science?"},
            {"domain": "o", "subtask": "Physics", "question": "x"}]  # the name of two domains' tasks
    tags, how = tag_rows(rows, tasks)
    assert tags == [("mmmu", "Art"), ("mmmu", "Basic_Medical_Science"), ("mmmu", "Art_Theory"), None, None, None]
    assert how == ["data", "data", "tagger", "untagged", "ambiguous_tag", "ambiguous_tag"]
    assert keyword_tagger({"question": "artistic"}, tasks) == []  # whole words only
    tags, how = tag_rows(rows[3:4], tasks, "tests.test_refinement:always_physics")
    assert (tags, how) == ([("mmmu", "Physics")], ["tagger"])
    assert tag_rows(rows[2:3], tasks, "none") == ([None], ["untagged"])


def _report_dir(tmp_path, rows=REPORT):
    (tmp_path / "report").mkdir(exist_ok=True)
    (tmp_path / "report" / "thinking_boundary.json").write_text(json.dumps({"subtasks": rows}))
    return tmp_path / "report"


def test_selection_refine_keeps_the_part(tmp_path, cache_dir):
    from dualtune.recipes.select import select_training_rows

    report = _report_dir(tmp_path)
    rows = [{"id": f"{t}{i}", "domain": "d", "subtask": t, "cot": "", "question": "q"} for t in "ABCDX" for i in (0, 1)]
    cfg = compose("train", [f"cache_dir={cache_dir}", "selection=refine", f"selection.report={report}",
                            "selection.split=gain_cot", "selection.part=negative", "mode=cot"])
    check_config(cfg, "train")
    kept = select_training_rows(cfg, rows, tmp_path)
    assert [r["id"] for r in kept] == ["A0", "A1", "B0", "B1", "C0", "C1"]
    summary = json.loads((tmp_path / "selection.json").read_text())
    assert summary["counts_by_reason"] == {"dropped_refine_other_part": 2, "dropped_refine_untagged": 2,
                                           "kept_refine_part": 6}
    assert summary["details"]["matching_mode"] == "cot" and summary["details"]["tasks_in_part"] == ["d/A", "d/B", "d/C"]
    assert summary["details"]["tagged"] == {"data": 8, "untagged": 2}
    with pytest.raises(ValueError, match="holds no task"):  # no Q3 task when no row has both gains < 0
        cfg2 = compose("train", [f"cache_dir={cache_dir}", "selection=refine", "selection.split=q3",
                                 "selection.part=q3", f"selection.report={_report_dir(tmp_path, REPORT[:1])}"])
        select_training_rows(cfg2, rows, tmp_path)
    bad = compose("train", [f"cache_dir={cache_dir}", "selection=refine", "selection.split=q3",
                            "selection.part=positive", f"selection.report={tmp_path / 'nowhere'}"])
    with pytest.raises(ConfigError, match="no thinking_boundary.json there") as err:
        check_config(bad, "train")
    assert "split q3 has parts" in str(err.value)
    with pytest.raises(ValueError, match="needs selection.report"):  # the shipped default (null) fails at selection
        select_training_rows(compose("train", [f"cache_dir={cache_dir}", "selection=refine"]), rows, tmp_path)
    assert refine_problems({"report": str(tmp_path / "nowhere"), "split": "gain_da", "part": "q3"})[0].endswith(
        "no thinking_boundary.json there (run the Dual Tuning job first)")


def test_measured_gain_and_agreement_by_hand():
    assert measured_gain(50, 60, 55, 58, "gain_da") == 5 and measured_gain(50, 60, 55, 58, "gain_cot") == -2
    assert measured_gain(50, 60, 55, 58, "q3") == 5  # dual: the better mode
    assert measured_gain(50, 60, 55, 58, "gain_da", "boundary") == pytest.approx(-25 / 3)  # (55 - 60) / 60
    assert measured_gain(50, 60, 55, 58, "q3", "boundary") == pytest.approx(-10 / 3)
    assert agreement([1, -1, 0, 1], [2.0, -1.0, 5.0, 0.0]) == (2, 3)  # pred 0 not counted; measured 0 disagrees


def _task(pred, b, dt):
    """A task whose DA scores are ``b`` (base) and ``dt`` (tuned) per item; CoT scores all 0."""
    zeros = [0.0] * len(b)
    return {"pred_sign": pred, "B_S": b, "B_L": zeros, "DT_S": dt, "DT_L": zeros}


def test_bootstrap_agreement_by_hand():
    sure = [_task(1, [0, 0], [1, 1]), _task(-1, [1, 1], [0, 0])]  # +100 and -100 points in every draw
    out = bootstrap_agreement(sure, "gain_da", n_boot=200)
    assert out["rate"] == 1.0 and out["ci"] == (1.0, 1.0) and out["task_ci"] == [(100.0, 100.0), (-100.0, -100.0)]
    # One task, tuned DA scores [1, 0] over a base of [0, 0]: a draw's gain is 0 (P 1/4), 50 or 100 points.
    coin = bootstrap_agreement([_task(1, [0, 0], [1, 0])], "gain_da", n_boot=2000, seed=1)
    assert coin["rate"] == 1.0 and coin["ci"] == (0.0, 1.0) and coin["task_ci"] == [(0.0, 100.0)]
    # Two fixed tasks, one agreeing: redrawing tasks gives 0, 0.5 or 1 (P 1/4, 1/2, 1/4).
    half = bootstrap_agreement([_task(1, [0], [1]), _task(1, [1], [0])], "gain_da", n_boot=2000, resample="tasks")
    assert half["rate"] == 0.5 and half["ci"] == (0.0, 1.0)
    assert bootstrap_agreement([_task(0, [0], [1])], "gain_da", n_boot=10)["rate"] is None
    with pytest.raises(ValueError):
        bootstrap_agreement(sure, "gain_da", resample="subjects")


SMALL = ["experiment=smoke", "logger=csv", "domain=multidiscipline", "domain.n_train_per_subtask=2",
         "domain.n_test_per_subtask=2", "mode.max_new_tokens={direct: 4, cot: 12}", "eval.n_boot=20",
         "algo.batch_size=8"]


def test_main_job_then_refine_part_then_study(cache_dir, tiny_model_path, tmp_path):
    from dualtune.recipes.train import train
    from dualtune.studies.refinement import main

    base = [f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES, *SMALL]
    report = train(compose("train", [*base, f"output_dir={tmp_path / 'main'}"]))
    first = report["subtasks"][0]
    part = "negative" if first["Gain_CoT"] < 0 else "positive"
    part_dir = tmp_path / "sweep" / "part"
    cfg = compose("train", [*base, f"output_dir={part_dir}", "selection=refine", "mode=cot", "selection.split=gain_cot",
                            f"selection.report={tmp_path / 'main'}", f"selection.part={part}"])
    train(cfg)
    (part_dir / ".hydra").mkdir()  # what Hydra writes next to every job: the study finds the runs by it
    (part_dir / ".hydra" / "config.yaml").write_text(json.dumps({"seed": 0}))
    selection = json.loads((part_dir / "selection.json").read_text())
    tasks_in_part = selection["details"]["tasks_in_part"]
    assert f"multidiscipline/{first['subtask']}" in tasks_in_part
    assert selection["n_kept"] == 2 * len(tasks_in_part) and selection["details"]["tagged"] == {"data": 10}
    assert main([str(tmp_path / "main"), str(tmp_path / "sweep"), "--out", str(tmp_path / "study"),
                 "--n-boot", "50"]) == 0
    import pandas as pd

    rows = pd.read_csv(tmp_path / "study" / "refinement_tasks.csv")
    assert sorted(rows["subtask"]) == sorted(t.split("/")[1] for t in tasks_in_part)
    assert set(rows["part"]) == {part} and set(rows["split"]) == {"gain_cot"}
    tuned = json.loads((part_dir / "thinking_boundary.json").read_text())["subtasks"]
    by_task = {r["subtask"]: r["DT_L"] - r["B_L"] for r in tuned}
    for r in rows.to_dict("records"):  # measured = the part run's own CoT accuracy change
        assert r["measured_gain"] == pytest.approx(by_task[r["subtask"]])
    summary = pd.read_csv(tmp_path / "study" / "refinement_summary.csv")
    assert list(summary["part"]) == ["all", "positive", "negative"]
    assert (tmp_path / "study" / "fig6_gain_cot.png").stat().st_size > 0
    assert not (tmp_path / "study" / "fig5_gain_da.png").exists()  # no gain_da part run
