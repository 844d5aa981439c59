"""selection.budget: the trim / fill rule on hand-built RAP and pass-rate cases, match_budget_of, exactness."""

from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from dualtune.scoring.selectors import apply_selector, budget_target
from dualtune.selection import fit_to_budget, rap_budget_orders, rap_select, tie_ranks

IDS = ["a", "b", "c", "d", "e", "f"]
P_MM = np.array([0.8, 1.0, 0.6, 0.2, 0.4, 0.0])
P_TXT = np.array([0.0, 0.0, 0.0, 0.0, 0.4, 0.0])
NO_FLAGS = np.zeros(6, dtype=bool)


def _rap(budget):
    """Apply RAP (M = 5, lambda_c = 0.5, DRM k = #easy) then the budget rule through the selector."""
    sel = OmegaConf.create({"name": "rap", "budget": budget, "rollouts": {"num_generations": 5},
                            "cde": {"lam_c": 0.5}, "ace": {"enabled": False}, "drm": {}})
    scores = {"p_mm": P_MM, "p_txt": P_TXT, "ace_log_psi": np.full(6, np.nan)}
    rows = [{"id": i} for i in IDS]
    kept, reasons, info = apply_selector(sel, rows, scores, seed=0)
    return [i for i, k in zip(IDS, kept) if k], reasons, info


def test_rap_without_budget_is_algorithm_1():
    # Hand check: CDE keeps a (gap .8), b (1.0), c (.6); DRM drops easy b and adds the hardest in-band
    # rejected sample d (p .2) over e (p .4); f (p 0) is out of band.
    kept, reasons = rap_select(IDS, P_MM, P_TXT, NO_FLAGS, 5, lam_c=0.5)
    assert [i for i, k in zip(IDS, kept) if k] == ["a", "c", "d"]
    assert reasons == ["kept_cde", "dropped_easy_drm", "kept_cde", "added_drm", "not_selected", "dropped_cde_gap"]
    assert _rap(None)[0] == ["a", "c", "d"]


@pytest.mark.parametrize("budget, expected", [
    (3, ["a", "c", "d"]),              # already at budget: unchanged
    (2, ["a", "c"]),                   # trim: the DRM addition d goes first
    (1, ["a"]),                        # then the CDE keep with the smallest gap (c: .6 < a: .8)
    (4, ["a", "c", "d", "e"]),         # fill: tier 0 (not flagged, not easy) e, f both gap 0; e is in band
    (5, ["a", "c", "d", "e", "f"]),    # then f
    (6, ["a", "b", "c", "d", "e", "f"]),  # the easy b is last (tier 1)
    (0.5, ["a", "c", "d"]),            # fraction: round(0.5 * 6) = 3
    (0.34, ["a", "c"]),                # round(2.04) = 2
])
def test_rap_budget_trims_and_fills_in_the_documented_order(budget, expected):
    kept, reasons, info = _rap(budget)
    assert kept == expected
    assert info["n_before_budget"] == 3 and info["resolved_budget"] == len(expected)
    assert reasons.count("dropped_budget") == max(0, 3 - len(expected))
    assert reasons.count("added_budget") == max(0, len(expected) - 3)


def test_ace_flagged_samples_are_filled_after_clean_ones():
    flags = np.array([False, False, False, False, True, False])  # e flagged: f (clean, out of band) comes first
    kept, reasons = rap_select(IDS, P_MM, P_TXT, flags, 5, lam_c=0.5)
    drop, fill = rap_budget_orders(IDS, kept, reasons, P_MM, P_MM - P_TXT, flags, 5)
    assert [IDS[i] for i in fill] == ["f", "b", "e"]  # tier 1 (easy b, flagged e) by gap: b 1.0, e 0.0
    assert [IDS[i] for i in drop] == ["d", "c", "a"]


def test_ties_use_a_seeded_rank_independent_of_input_order():
    ids = [f"s{k:02d}" for k in range(20)]
    ranks = dict(zip(ids, tie_ranks(ids, seed=3)))
    shuffled = list(reversed(ids))
    assert dict(zip(shuffled, tie_ranks(shuffled, seed=3))) == ranks
    assert sorted(ranks.values()) == list(range(20)) and ranks != dict(zip(ids, tie_ranks(ids, seed=4)))


def test_fit_is_exact_for_every_target():
    rng = np.random.default_rng(0)
    ids = [str(k) for k in range(40)]
    p = rng.integers(0, 6, 40) / 5
    txt = rng.integers(0, 6, 40) / 5
    flags = rng.random(40) < 0.2
    kept, reasons = rap_select(ids, p, txt, flags, 5, lam_c=0.2)
    for target in range(41):
        out, _ = fit_to_budget(kept, reasons, target, *rap_budget_orders(ids, kept, reasons, p, p - txt, flags, 5))
        assert out.sum() == target
        if target <= kept.sum():
            assert not (out & ~kept).any()  # trimming never adds
        else:
            assert not (kept & ~out).any()  # filling never drops


def test_pass_rate_budget_trims_far_from_the_band_centre():
    sel = OmegaConf.create({"name": "pass_rate", "preset": "informative", "budget": 2})
    p = np.array([0.0, 0.2, 0.5, 0.8, 1.0, 0.4])
    kept, reasons, _ = apply_selector(sel, [{"id": str(k)} for k in range(6)], {"p_mm": p}, seed=0)
    assert kept.tolist() == [False, False, True, False, False, True]  # .2 and .8 are .3 from the centre .5
    assert reasons.count("dropped_budget") == 2


def test_random_control_matches_a_runs_count(tmp_path):
    (tmp_path / "selection.json").write_text(json.dumps({"n_kept": 4, "n_total": 10}))
    rows = [{"id": str(k)} for k in range(10)]
    sel = OmegaConf.create({"name": "random", "budget": 0.1, "match_budget_of": str(tmp_path)})
    kept, _, info = apply_selector(sel, rows, None, seed=1)
    assert kept.sum() == 4 and info["budget_source"] == str(tmp_path)
    with pytest.raises(ValueError, match="selected from 10 samples, this run has 9"):
        budget_target(sel, 9)
    with pytest.raises(FileNotFoundError, match="no selection.json"):
        budget_target(OmegaConf.create({"name": "random", "match_budget_of": str(tmp_path / "nope")}), 10)
    assert budget_target(OmegaConf.create({"name": "rap", "budget": None}), 10) is None
