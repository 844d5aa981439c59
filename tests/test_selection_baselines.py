"""The papers' baselines on hand-built scores: ThinkLite MCTS-lite, LIMR, s1 (+ their selector wiring)."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from dualtune.scoring.selectors import apply_selector, quality_ok, scoring_needs
from dualtune.selection import (
    fill_trajectories,
    iterations_to_solve,
    limr_scores,
    select_limr,
    select_s1,
    select_thinklite,
    trajectories_from_records,
)

# ---------------------------------------------------------------- ThinkLite MCTS-lite
CORRECT = [[0, 0, 0, 0, 0, 0, 1, 0],   # a: K = 7
           [1, 0, 0, 0, 0, 0, 0, 0],   # b: K = 1
           [0, 0, 0, 0, 0, 0, 0, 0],   # c: unsolved, K = 9
           [0, 0, 0, 0, 0, 1, 1, 1],   # d: K = 6
           [0, 0, 0, 0, 1, 0, 0, 0]]   # e: K = 5
IDS5 = list("abcde")


def test_iterations_to_solve():
    assert iterations_to_solve(CORRECT).tolist() == [7, 1, 9, 6, 5]
    assert np.isnan(iterations_to_solve([[]])[0])
    with pytest.raises(ValueError, match="0/1"):
        iterations_to_solve([[0.5]])


def test_thinklite_keeps_late_solved_and_unsolved():
    k = iterations_to_solve(CORRECT)
    kept, reasons = select_thinklite(IDS5, k, max_iters=8, min_iters=5)
    assert kept.tolist() == [True, False, True, True, False]  # K > 5, or unsolved
    assert reasons == ["kept_mcts_hard", "dropped_mcts_easy", "kept_mcts_unsolved", "kept_mcts_hard",
                       "dropped_mcts_easy"]
    kept, reasons = select_thinklite(IDS5, k, 8, 5, keep_unsolved=False)
    assert kept.tolist() == [True, False, False, True, False] and reasons[2] == "dropped_mcts_unsolved"


def test_thinklite_budget_ranks_hardest_first():
    k = iterations_to_solve(CORRECT)
    kept, reasons = select_thinklite(IDS5, k, 8, 5, budget=2)
    assert kept.tolist() == [True, False, True, False, False] and reasons[3] == "dropped_budget"  # c (9), a (7)
    kept, reasons = select_thinklite(IDS5, k, 8, 5, budget=4)
    assert kept.tolist() == [True, False, True, True, True] and reasons[4] == "added_budget"  # e (K 5) before b (1)


# ---------------------------------------------------------------- LIMR
def test_limr_score_hand_computed():
    # avg curve (1/3, 2/3); denominator (2/3)^2 + (1/3)^2 = 5/9.
    # a: 1 - (1/9 + 1/9) / (5/9) = 0.6; b: 1 - (1/9 + 4/9) / (5/9) = 0; c: 1 - (4/9 + 1/9) / (5/9) = 0.
    r = [[0, 1], [0, 0], [1, 1]]
    np.testing.assert_allclose(limr_scores(r), [0.6, 0.0, 0.0], atol=1e-12)
    kept, reasons = select_limr(list("abc"), r, threshold=0.2)
    assert kept.tolist() == [True, False, False] and reasons == ["kept_limr", "dropped_limr", "dropped_limr"]
    kept, _ = select_limr(list("abc"), r, budget=2)
    assert kept.sum() == 2 and kept[0]
    np.testing.assert_allclose(limr_scores([[1, 1], [1, 1]]), [1.0, 1.0])  # avg = 1: zero denominator


def test_limr_trajectories_fill_and_average():
    filled = fill_trajectories([[np.nan, 1, np.nan], [0, np.nan, 1], [np.nan] * 3])
    np.testing.assert_array_equal(filled[:2], [[1, 1, 1], [0, 0, 1]])
    assert np.isnan(filled[2]).all()
    records = [{"id": "a", "epoch": 1, "reward": 1.0}, {"id": "a", "epoch": 1, "reward": 0.0},
               {"id": "a", "epoch": 2, "reward": 1.0}, {"id": "b", "epoch": 2, "reward": 0.0},
               {"id": "zz", "epoch": 3, "reward": 1.0}]
    traj = trajectories_from_records(["a", "b", "c"], records)
    np.testing.assert_array_equal(traj[0], [0.5, 1.0])
    assert np.isnan(traj[1, 0]) and traj[1, 1] == 0.0 and np.isnan(traj[2]).all()
    kept, reasons = select_limr(["a", "b", "c"], traj, threshold=-10)
    assert kept.tolist() == [True, True, False] and reasons[2] == "dropped_missing_score"


# ---------------------------------------------------------------- s1
S1_IDS = ["x1", "x2", "x3", "y1", "y2"]
S1_SUB = ["X", "X", "X", "Y", "Y"]
S1_P = [0.0, 0.0, 0.4, 0.0, 0.0]
S1_LEN = [10, 5, 7, 3, 9]
S1_OK = [True, True, True, True, False]


def test_s1_filters_and_fills():
    kept, reasons = select_s1(S1_IDS, S1_SUB, S1_P, S1_LEN, S1_OK, budget=None)
    assert kept.tolist() == [True, True, False, True, False]  # every difficult quality sample
    assert reasons == ["kept_s1", "kept_s1", "dropped_s1_easy", "kept_s1", "dropped_quality"]
    kept, reasons = select_s1(S1_IDS, S1_SUB, S1_P, S1_LEN, S1_OK, budget=4)
    assert kept.tolist() == [True, True, True, True, False] and reasons[2] == "added_budget"
    kept, _ = select_s1(S1_IDS, S1_SUB, S1_P, S1_LEN, S1_OK, budget=5)
    assert kept.sum() == 4  # a bad-quality sample is never kept


def test_s1_draw_is_domain_uniform_and_favours_long_traces():
    ids = [f"x{k}" for k in range(10)] + ["y0"]
    sub = ["X"] * 10 + ["Y"]
    lengths = [10, 5] + [1] * 8 + [1]
    picks = [S for S in (np.flatnonzero(select_s1(ids, sub, [0.0] * 11, lengths, [True] * 11, budget=1,
                                                   seed=s)[0])[0] for s in range(400))]
    share_y = np.mean([p == 10 for p in picks])
    share_longest = np.mean([p == 0 for p in picks]) / (1 - share_y)
    assert 0.4 < share_y < 0.6  # domain drawn uniformly (1/2), not by size (1/11)
    assert 0.42 < share_longest < 0.58  # 2^-rank: the longest of X has weight 1 / (2 - 2^-9) ~ 0.5


def test_quality_rule():
    assert quality_ok({"question": "q", "answer": "B", "options": ["1", "2"]})
    assert not quality_ok({"question": "q", "answer": "C", "options": ["1", "2"]})
    assert not quality_ok({"question": " ", "answer": "1"}) and not quality_ok({"question": "q", "answer": ""})


# ---------------------------------------------------------------- wiring
def test_selectors_wire_the_baselines():
    rows = [{"id": i, "subtask": s, "question": "q", "answer": "1", "cot": "w " * n}
            for i, s, n in zip(S1_IDS, S1_SUB, S1_LEN)]
    sel = OmegaConf.create({"name": "thinklite_mcts", "max_iters": 8, "min_iters": 5, "rollouts": {}})
    assert scoring_needs(sel) == {"conditions": ("mm",), "ace": False}
    kept, _, info = apply_selector(sel, rows, {"mm_correct": CORRECT}, seed=0)
    assert kept.tolist() == [True, False, True, True, False] and info["max_iters"] == 8
    assert info["columns"]["mcts_iterations"].tolist() == [7, 1, 9, 6, 5]

    sel = OmegaConf.create({"name": "limr", "threshold": 0.2, "rewards_file": "x.jsonl"})
    assert scoring_needs(sel) is None
    traj = [[0, 1], [0, 0], [1, 1], [0, 1], [0, 1]]
    kept, _, info = apply_selector(sel, rows, {"limr_trajectory": traj}, seed=0)
    assert kept.tolist() == [True, False, False, True, True] and info["epochs"] == 2

    sel = OmegaConf.create({"name": "s1", "budget": 0.8, "max_pass_rate": 0.0})
    kept, reasons, info = apply_selector(sel, rows, {"p_mm": np.array(S1_P)}, seed=0)
    assert info["resolved_budget"] == 4  # y2 passes quality here (answer "1"): four difficult samples
    assert reasons == ["kept_s1", "kept_s1", "dropped_s1_easy", "kept_s1", "kept_s1"]
