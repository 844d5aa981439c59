"""GRPO through the train recipe (algo=grpo / sft_then_grpo, RL after Dual Tuning) and the RL report math."""

from __future__ import annotations

import csv
import json

import pytest

from dualtune.recipes.grpo import (
    curve_summary, filter_overlong_prompts, generation_budget, grpo_algo_cfg, merge_curve, rollout_mode)
from dualtune.rl_report import dual_tuning_report_path, rl_metrics, rl_row, rl_summary, rl_table
from tests.conftest import TEST_MODEL_OVERRIDES, compose

# Seconds-long runs: 4 spatial subtasks x 2 train / 1 test items, tiny generation budgets.
FAST = ["domain=spatial", "domain.n_train_per_subtask=2", "domain.n_test_per_subtask=1", "eval.n_boot=10",
        "eval.batch_size=8", "mode.max_new_tokens={direct: 4, cot: 8}", "logger=csv"]
FAST_GRPO = ["algo.max_steps=3", "algo.num_generations=2", "algo.batch_size=2"]


def run_train(cache_dir, out, *overrides):
    """Run `dualtune.recipes.train.train` on a composed config writing into ``out``; return the report."""
    from dualtune.recipes.train import train

    cfg = compose("train", [f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES, *FAST, f"output_dir={out}",
                            *overrides])
    return train(cfg)


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


# ----- RL report: pure math on hand-computed numbers ---------------------------------------------------
def test_rl_metrics_use_the_original_base_b_max():
    # B_max = max(40, 50) = 50: Gain^RL_DA = (55-50)/50*100 = 10, Gain^RL_CoT = (45-50)/50*100 = -10, GAP = -10.
    assert rl_metrics(40.0, 50.0, 55.0, 45.0) == pytest.approx(
        {"B_max": 50.0, "Gain_RL_DA": 10.0, "Gain_RL_CoT": -10.0, "GAP_RL_DT": -10.0, "gain_absolute": False})
    # Digest §2.2's VSI-Bench check: denominator B_S = 37.57 (> B_L), (43.26 - 37.57) / 37.57 * 100 = 15.1451.
    assert rl_metrics(37.57, 24.91, 30.0, 43.26)["Gain_RL_CoT"] == pytest.approx(15.1451, abs=1e-4)
    assert rl_metrics(0.0, 0.0, 25.0, 0.0)["Gain_RL_DA"] == 25.0  # B_max = 0: absolute points


def test_rl_row_regions_before_and_after_rl():
    # Dual Tuning: DT = (60, 40) vs B_max 50 -> Gain_DA 20, Gain_CoT -20, GAP_DT -20: direct region.
    # After RL: (52, 70) -> Gain^RL_DA 4, Gain^RL_CoT 40, GAP^RL_DT 18: cot region, so the verdict changed.
    row = rl_row(B_S=50.0, B_L=30.0, DT_RL_S=52.0, DT_RL_L=70.0, DT_S=60.0, DT_L=40.0)
    assert row["Gain_DA"] == pytest.approx(20.0) and row["Gain_CoT"] == pytest.approx(-20.0)
    assert row["Gain_RL_DA"] == pytest.approx(4.0) and row["Gain_RL_CoT"] == pytest.approx(40.0)
    assert row["GAP_DT"] == pytest.approx(-20.0) and row["GAP_RL_DT"] == pytest.approx(18.0)
    assert (row["region_DT"], row["region_RL"], row["same_region"]) == ("direct", "cot", False)
    alone = rl_row(50.0, 30.0, 52.0, 70.0)  # no Dual Tuning numbers: RL columns only
    assert alone["Gain_DA"] is None and alone["same_region"] is None and alone["region_RL"] == "cot"


def test_rl_table_joins_reports_and_flags_base_mismatch():
    def report_row(subtask, b_s, b_l, dt_s, dt_l):
        return {"domain": "spatial", "subtask": subtask, "n": 10, "B_S": b_s, "B_L": b_l, "DT_S": dt_s,
                "DT_L": dt_l, "ci": {"Gain_DA": [1, 2], "Gain_CoT": [3, 4], "GAP_DT": [5, 6]}, "uncertain": False}

    rl = {"subtasks": [report_row("count", 20.0, 40.0, 30.0, 60.0), report_row("color", 50.0, 50.0, 45.0, 40.0)],
          "aggregates": [report_row("ALL", 35.0, 45.0, 37.5, 50.0)]}
    # The dual-tuning report's stored gains (from unrounded accuracies) win over a recomputation from
    # its rounded accuracies when both runs saw the same base: -12.49 stays -12.49, not -12.5.
    stored = {"Gain_DA": -12.49, "Gain_CoT": 30.01, "GAP_DT": 17.0, "region": "cot", "uncertain": True}
    dt = {"subtasks": [{**report_row("count", 20.0, 40.0, 35.0, 52.0), **stored},
                       {**report_row("color", 50.0, 60.0, 55.0, 45.0), **stored, "region": "direct"}],
          "aggregates": []}
    rows = {r["subtask"]: r for r in rl_table(rl, dt)}
    count = rows["count"]  # B_max 40: DT (35, 52) -> -12.5 / 30 (stored -12.49 / 30.01); RL (30, 60) -> -25 / 50
    assert (count["DT_S"], count["DT_L"], count["DT_RL_S"], count["DT_RL_L"]) == (35.0, 52.0, 30.0, 60.0)
    assert (count["Gain_DA"], count["Gain_CoT"], count["uncertain_DT"]) == (-12.49, 30.01, True)
    assert count["Gain_RL_DA"] == pytest.approx(-25.0) and count["Gain_RL_CoT"] == pytest.approx(50.0)
    assert count["GAP_RL_DT"] == pytest.approx(30.0) and count["same_region"] and not count["base_mismatch"]
    assert count["ci_RL"] == {"Gain_RL_DA": [1, 2], "Gain_RL_CoT": [3, 4], "GAP_RL_DT": [5, 6]}
    # color: the dual-tuning run saw another base (B_L 60 vs 50) -> flagged; its stored gains are ignored
    # and the metrics are recomputed with the RL run's B_max 50: (55 - 50) / 50 * 100 = 10.
    assert rows["color"]["base_mismatch"] and rows["color"]["Gain_DA"] == pytest.approx(10.0)
    assert rows["color"]["region_DT"] == "direct" and rows["color"]["region_RL"] == "negative"
    assert rows["ALL"]["row_type"] == "aggregate" and rows["ALL"]["DT_S"] is None  # not in the DT report
    summary = rl_summary(list(rows.values()))
    assert summary["n_compared"] == 2 and summary["n_same_region"] == 1
    assert summary["changed"] == ["spatial/color: direct -> negative"] and summary["base_mismatch"] == ["spatial/color"]


# ----- recipe helpers ----------------------------------------------------------------------------
def test_grpo_config_views_and_curve_helpers():
    cfg = compose("train", ["algo=grpo", "mode=dual"])
    assert grpo_algo_cfg(cfg.algo) is cfg.algo and cfg.algo.loss_type == "dapo" and cfg.algo.beta == 0.0
    assert rollout_mode(cfg.mode) == "dual" and rollout_mode(compose("train", ["mode=cot"]).mode) == "cot"
    assert generation_budget(cfg.algo, cfg.mode) == {"direct": 16, "cot": 160}  # the mode's budgets
    cold = compose("train", ["algo=sft_then_grpo", "algo.grpo.max_new_tokens=12"])
    sft = compose("train", ["algo=sft"]).algo
    assert cold.algo.name == "sft_then_grpo" and cold.algo.epochs == sft.epochs and cold.algo.lr == sft.lr
    assert grpo_algo_cfg(cold.algo).name == "grpo"
    assert generation_budget(grpo_algo_cfg(cold.algo), cold.mode) == {"cot": 12, "direct": 12}
    rows = [{"step": i + 1, "reward": r} for i, r in enumerate([0.0, 0.2, 0.4, 0.6, 1.0])]
    assert curve_summary(rows, window=2) == pytest.approx(
        {"first": 0.1, "last": 0.8, "delta": 0.7, "steps": 5, "window": 2})
    assert [r["step"] for r in merge_curve(rows, [{"step": 3, "reward": 0.9}])] == [1, 2, 3]


def test_overlong_prompts_are_skipped_or_raise(tiny_model_path):
    from dualtune.data.encoding import OverlongError
    from dualtune.models.loading import load_processor

    processor = load_processor(tiny_model_path)
    row = {"id": "q", "question": "How many circles?", "options": [], "answer": "3", "answer_type": "number",
           "images": []}
    budget = {"cot": 100, "direct": 4}
    assert filter_overlong_prompts(processor, [row], ["direct"], None, budget, None) == ([row], 0)
    assert filter_overlong_prompts(processor, [row], ["direct"], None, budget, 400) == ([row], 0)
    # The same prompt no longer fits once the CoT budget (100 tokens) is reserved in a small window.
    assert filter_overlong_prompts(processor, [row], ["direct", "cot"], None, budget, 110) == ([], 1)
    with pytest.raises(OverlongError):
        filter_overlong_prompts(processor, [row], ["cot"], None, budget, 110, on_overlong="raise")


# ----- train.py-level runs --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dual_tuning_run(cache_dir, tiny_model_path, tmp_path_factory):
    """A small Dual Tuning (SFT, mode=dual) run dir with model/ and thinking_boundary.json."""
    out = tmp_path_factory.mktemp("dual_tuning")
    run_train(cache_dir, out, "algo=sft", "algo.epochs=1", "algo.batch_size=4")
    return out


def test_rl_after_dual_tuning_writes_model_curve_and_rl_report(cache_dir, dual_tuning_run, tmp_path):
    out = tmp_path / "rl"
    report = run_train(cache_dir, out, "algo=grpo", "mode=dual", *FAST_GRPO, f"init_from={dual_tuning_run}/model")
    assert (out / "model" / "config.json").exists() and (out / "checkpoints" / "last.ckpt").exists()
    curve = read_csv(out / "reward_curve.csv")
    assert [int(r["step"]) for r in curve] == [1, 2, 3] and (out / "reward_curve.png").stat().st_size > 0
    assert all(0.0 <= float(r["reward"]) <= 2.0 for r in curve)  # accuracy + format, each in [0, 1]
    assert {"modes/cot/reward", "modes/direct/reward", "rewards/accuracy/mean"} <= set(curve[0])
    assert (out / "csv" / "metrics.csv").exists()  # the Lightning logger got the TRL-named metrics
    # The RL report joins the dual-tuning run's DT numbers with this run's RL numbers, per subtask.
    assert dual_tuning_report_path(f"{dual_tuning_run}/model") == dual_tuning_run / "thinking_boundary.json"
    rl = json.loads((out / "rl_boundary.json").read_text())
    before = {r["subtask"]: r for r in json.loads((dual_tuning_run / "thinking_boundary.json").read_text())["subtasks"]}
    after = {r["subtask"]: r for r in report["subtasks"]}
    rows = [r for r in rl["rows"] if r["row_type"] == "subtask"]
    assert sorted(r["subtask"] for r in rows) == sorted(after)
    for row in rows:
        assert (row["DT_S"], row["DT_L"]) == (before[row["subtask"]]["DT_S"], before[row["subtask"]]["DT_L"])
        assert row["DT_RL_S"] == pytest.approx(after[row["subtask"]]["DT_S"], abs=0.005)
        assert row["B_max"] == pytest.approx(max(after[row["subtask"]]["B_S"], after[row["subtask"]]["B_L"]), abs=0.005)
        assert row["base_mismatch"] is False  # both runs evaluated the same original base on the same items
    assert rl["summary"]["n_compared"] == len(rows) and rl["dual_tuning_report"].endswith("thinking_boundary.json")
    assert "Gain^RL_CoT" in (out / "rl_boundary.md").read_text()
    assert len(read_csv(out / "rl_boundary.csv")) == len(rl["rows"])


def test_sft_then_grpo_cold_start(cache_dir, tiny_model_path, tmp_path):
    out = tmp_path / "cold"
    run_train(cache_dir, out, "algo=sft_then_grpo", "mode=cot", "eval.enabled=false", "algo.epochs=1",
              "algo.batch_size=4", "algo.grpo.max_steps=2", "algo.grpo.num_generations=2", "algo.grpo.batch_size=3",
              "algo.grpo.mu=2")
    assert (out / "sft" / "model" / "config.json").exists() and (out / "model" / "config.json").exists()
    curve = read_csv(out / "reward_curve.csv")
    # algo.grpo.max_steps counts rollout batches; with mu=2 each one takes two optimizer steps.
    assert [(int(r["step"]), int(r["global_step"])) for r in curve] == [(1, 2), (2, 4)]
    assert "rewards/format/mean" in curve[0] and not (out / "rl_boundary.json").exists()


def test_grpo_resume_continues_step_count_and_curve(cache_dir, tiny_model_path, tmp_path):
    out = tmp_path / "resume"
    common = ["algo=grpo", "mode=direct", "eval.enabled=false", "algo.num_generations=2", "algo.batch_size=2",
              "trainer.checkpoint_every_n_steps=1"]
    run_train(cache_dir, out, *common, "algo.max_steps=2")
    assert (out / "checkpoints" / "last.ckpt").exists()
    # The curve rows live in the checkpoint: a resume keeps them even when reward_curve.csv was never written
    # (a kill -9 before the end), and a restart from step 0 would redo them.
    path = out / "reward_curve.csv"
    first = read_csv(path)
    path.unlink()
    run_train(cache_dir, out, *common, "algo.max_steps=3", "ckpt_path=last")  # one more rollout batch
    curve = read_csv(path)
    assert [(int(r["step"]), int(r["global_step"])) for r in curve] == [(1, 1), (2, 2), (3, 3)]
    assert curve[:2] == first and float(curve[2]["reward"]) <= 2.0
    # The per-sample reward log (LIMR's trajectories) also lives in the checkpoint: steps 1-2 once, then 3.
    records = [json.loads(line) for line in (out / "sample_rewards.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 1, 2, 2, 3, 3]  # batch_size=2 prompts a rollout step
    for row in curve:  # equal completions per prompt: the step's mean reward is the mean of the prompt means
        step_records = [r for r in records if r["step"] == int(row["step"])]
        assert sum(r["reward"] for r in step_records) / 2 == pytest.approx(float(row["reward"]), abs=1e-5)
        assert all(r["mode"] == "direct" and 0.0 <= r["accuracy"] <= 1.0 for r in step_records)
    from dualtune.scoring.trajectories import read_reward_log
    from dualtune.selection.limr import trajectories_from_records

    ids = sorted({r["id"] for r in records})
    traj = trajectories_from_records(ids, read_reward_log(out), epoch_key="step", reward_key="accuracy")
    assert traj.shape == (len(ids), 3)
    for r in records:  # one record per (id, step) here: the trajectory holds it as logged
        assert traj[ids.index(r["id"]), r["step"] - 1] == pytest.approx(r["accuracy"])


@pytest.mark.parametrize("algo", ["grpo", "sft"])
def test_eval_steps_curve_ends_at_the_tuned_evaluation(cache_dir, tiny_model_path, tmp_path, algo):
    out = tmp_path / algo
    extra = ["algo.num_generations=2"] if algo == "grpo" else []
    report = run_train(cache_dir, out, f"algo={algo}", "mode=dual", "algo.max_steps=2", "algo.batch_size=2",
                       "algo.eval_steps=1", *extra)
    assert report is not None
    rows = read_csv(out / "eval_steps.csv")
    assert [(int(r["step"]), r["mode"]) for r in rows] == [(1, "direct"), (1, "cot"), (2, "direct"), (2, "cot")]
    # The last point is the policy that was saved: the tuned evaluation (same items, greedy) gives the same numbers.
    tuned = json.loads((out / "eval_tuned" / "eval_summary.json").read_text())
    overall = {a["mode"]: (a["weighted"], a["n"]) for a in tuned["aggregates"] if a["domain"] == "all"}
    for row in rows[2:]:
        assert (float(row["accuracy"]), int(row["n"])) == pytest.approx(overall[row["mode"]], abs=1e-6)
