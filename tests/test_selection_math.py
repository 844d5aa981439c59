"""Hand-computed checks of the data-selection math (CDE, ACE, DRM, released code, baselines)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from dualtune.selection import (
    ALL_REASONS,
    ace_column_log_psi,
    ace_from_log_psi,
    ace_needed,
    ace_score,
    aggregate_flags,
    cde_gap,
    cde_keep,
    drm_replace,
    in_hard_band,
    pass_rate,
    rap_select,
    released_code_features,
    released_code_select,
    released_reward,
    resolve_budget,
    select_length,
    select_pass_rate,
    select_random,
)


def kept_ids(ids, kept):
    return {i for i, k in zip(ids, kept) if k}


# ----------------------------------------------------------------------------- CDE


def test_pass_rate_is_mean_of_binary_scores():
    scores = [[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [True] * 5]
    np.testing.assert_allclose(pass_rate(scores), [0.6, 0.0, 1.0])
    with pytest.raises(ValueError):
        pass_rate([[1, 0.5]])
    with pytest.raises(ValueError):
        pass_rate([1, 0, 1])


def test_cde_keep_is_strict_in_exact_arithmetic():
    gap = cde_gap([1.0, 0.9, 0.8, 0.7, 0.5], [0.4, 0.4, 0.3, 0.1999, np.nan])
    # gaps: 0.6, 0.5, 0.5, 0.5001, nan -> only > 0.5 passes, nan never passes
    assert cde_keep(gap, 0.5).tolist() == [True, False, False, True, False]
    noisy = cde_gap([0.8], [0.2])  # 0.6000000000000001
    assert not cde_keep(noisy, lam_c=0.6)[0]
    assert cde_keep(noisy, lam_c=0.6, eps=0.0)[0]  # raw float comparison
    with pytest.raises(ValueError):
        cde_gap([0.1, 0.2], [0.1])


# ----------------------------------------------------------------------------- ACE

# 1 head, L = 6; tokens 0-1 are the prompt, 2-5 the generated reasoning (rows sum to 1).
ATTN_6 = torch.tensor(
    [
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0, 0.0, 0.0],
        [0.2, 0.2, 0.6, 0.0, 0.0, 0.0],
        [0.1, 0.1, 0.5, 0.3, 0.0, 0.0],
        [0.1, 0.1, 0.4, 0.2, 0.2, 0.0],
        [0.1, 0.1, 0.3, 0.1, 0.2, 0.2],
    ],
    dtype=torch.float64,
).unsqueeze(0)


def test_ace_literal_formula_by_hand():
    # sigma = 2, rows i >= j within [2, 6):
    # psi_2 = 1.2 * 1.0 * 0.8 * 0.6 = 0.576 ; psi_3 = 0.6 * 0.4 * 0.2 = 0.048
    # psi_4 = 0.4 * 0.4 = 0.16 ; psi_5 = 0.4
    log_psi, n = ace_column_log_psi(ATTN_6, 2, 6, window=None)
    np.testing.assert_allclose(log_psi.exp().numpy(), [0.576, 0.048, 0.16, 0.4], rtol=1e-12)
    assert n.tolist() == [4, 3, 2, 1]
    res = ace_score(ATTN_6, 2, 6, window=None, min_rows=1)
    assert res.argmax_col == 2 and res.n_factors == 4 and res.n_columns == 4
    assert res.psi == pytest.approx(0.576) and res.log_psi == pytest.approx(math.log(0.576))
    assert res.flag
    assert not ace_score(ATTN_6, 2, 6, lam_a=0.6, window=None, min_rows=1).flag
    assert ace_score(ATTN_6, 2, 6, lam_a=0.5, window=None, min_rows=1).flag


def test_ace_window_and_min_rows():
    # window 2: psi_2 = 1.2 * 1.0 = 1.2, psi_3 = 0.6 * 0.4 = 0.24, psi_4 = 0.16, psi_5 = 0.4 (1 factor)
    log_psi, n = ace_column_log_psi(ATTN_6, 2, 6, window=2)
    np.testing.assert_allclose(log_psi.exp().numpy(), [1.2, 0.24, 0.16, 0.4], rtol=1e-12)
    assert n.tolist() == [2, 2, 2, 1]
    res = ace_score(ATTN_6, 2, 6, window=2, min_rows=2)
    assert res.psi == pytest.approx(1.2) and res.argmax_col == 2 and res.n_columns == 3
    # min_rows without window: only columns 2 and 3 have >= 3 factors -> 0.576
    res = ace_score(ATTN_6, 2, 6, window=None, min_rows=3)
    assert res.psi == pytest.approx(0.576) and res.n_columns == 2
    # min_rows=4 with window=3: no column has 4 factors -> nothing scored, no flag
    res = ace_score(ATTN_6, 2, 6, window=3, min_rows=4)
    assert res.argmax_col is None and res.n_columns == 0 and not res.flag
    assert res.log_psi == -math.inf and res.psi == 0.0


def test_ace_literal_fires_on_last_column_but_default_window_does_not():
    # Uniform causal attention A_ij = 1/(i+1), L = 16, generated [4, 16).
    L = 16
    attn = torch.tril(torch.ones(L, L, dtype=torch.float64)) / torch.arange(1, L + 1).unsqueeze(1)
    literal = ace_score(attn, 4, L, window=None, min_rows=1)
    # last column: 2 * 1/16 = 0.125 > 0.1; psi_14 = (2/15)(2/16) = 0.0167 is smaller
    assert literal.flag and literal.argmax_col == 15 and literal.psi == pytest.approx(0.125)
    default = ace_score(attn, 4, L)
    # window = min_rows = 8: columns 4..8; best psi_4 = 2^8 / (5*6*...*12) = 256 / 19958400
    assert not default.flag and default.argmax_col == 4 and default.n_columns == 5
    assert default.psi == pytest.approx(256 / 19958400, rel=1e-9)


def test_ace_default_flags_sustained_attention_to_one_token():
    # L = 12, generated [2, 12): rows 3..11 put 0.5 on token 3 and 0.5 on prompt token 0.
    attn = torch.zeros(12, 12)
    attn[:, 0] = 1.0
    attn[3:, 0] = 0.5
    attn[3:, 3] = 0.5
    res = ace_score(attn, 2, 12)
    # column 3, rows 3..10: (2 * 0.5)^8 = 1 > 0.1; columns 2 and 4 have zero factors
    assert res.flag and res.argmax_col == 3 and res.n_factors == 8 and res.n_columns == 3
    assert res.psi == pytest.approx(1.0)


def test_ace_head_mean_vs_max_and_renormalize():
    # head 1 row 1 = [0.8, 0.2], head 2 row 1 = [0.2, 0.8]; row 0 = [1, 0] in both.
    attn = torch.tensor([[[1.0, 0.0], [0.8, 0.2]], [[1.0, 0.0], [0.2, 0.8]]])
    # mean: row 1 = [0.5, 0.5] -> psi_0 = (2*1)(2*0.5) = 2.0
    assert ace_score(attn, 0, 2, head_agg="mean", window=None, min_rows=2).psi == pytest.approx(2.0)
    # max: row 1 = [0.8, 0.8] -> psi_0 = 2 * 1.6 = 3.2
    assert ace_score(attn, 0, 2, head_agg="max", window=None, min_rows=2).psi == pytest.approx(3.2)
    # max then OPERA-style row renormalisation: [0.8, 0.8] -> [0.5, 0.5] -> 2.0
    res = ace_score(attn, 0, 2, head_agg="max", window=None, min_rows=2, renormalize=True)
    assert res.psi == pytest.approx(2.0)
    with pytest.raises(ValueError):
        ace_score(attn, 0, 2, head_agg="median")


def test_ace_log_space_zeros_underflow_and_overflow():
    # zeros: psi_0 = 2*1 * 2*0 * ... = 0, psi_1 = 2*1 * 2*0 = 0, psi_2 = 2*0.5 = 1
    attn = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    log_psi, _ = ace_column_log_psi(attn, 0, 3, window=None)
    assert log_psi.tolist() == [-math.inf, -math.inf, 0.0]
    assert not torch.isnan(log_psi).any()
    res = ace_score(attn, 0, 3, window=None, min_rows=2)
    assert res.log_psi == -math.inf and res.psi == 0.0 and res.argmax_col == 0 and not res.flag
    # 1200 factors of 2 * 0.25 = 0.5: linear space underflows, log space is exact
    g = 1200
    quarter = torch.tril(torch.full((g, g), 0.25, dtype=torch.float64))
    res = ace_score(quarter.numpy(), 0, g, window=None, min_rows=g)
    assert res.log_psi == pytest.approx(-g * math.log(2)) and res.psi == 0.0 and not res.flag
    # 1200 factors of 2 * 1.0: psi overflows to inf, still flagged
    res = ace_score(torch.tril(torch.ones(g, g)), 0, g, window=None, min_rows=g)
    assert res.log_psi == pytest.approx(g * math.log(2)) and res.psi == math.inf and res.flag


def test_ace_input_validation_and_dtypes():
    assert ace_score(ATTN_6.to(torch.bfloat16), 2, 6, window=2, min_rows=2).psi == pytest.approx(1.2, rel=1e-2)
    with pytest.raises(ValueError):
        ace_score(ATTN_6, 4, 4)
    with pytest.raises(ValueError):
        ace_score(ATTN_6, 2, 7)
    with pytest.raises(ValueError):
        ace_score(-ATTN_6, 2, 6)
    with pytest.raises(ValueError):
        ace_from_log_psi([0.0, 1.0], [1], lam_a=0.1)


def test_aggregate_flags_rules():
    flags = [[True, False, False], [True, True, False], [False, False, False]]
    assert aggregate_flags(flags, "any").tolist() == [True, True, False]
    assert aggregate_flags(flags, "majority").tolist() == [False, True, False]
    assert aggregate_flags(flags, "first").tolist() == [True, True, False]


# ----------------------------------------------------------------------------- DRM

DRM_IDS = list("abcdefghij")
#            a    b    c    d    e    f    g    h    i    j
DRM_P = [1.0, 1.0, 0.6, 0.2, 0.4, 0.2, 0.0, 0.8, 0.2, 0.2]
DRM_KEPT = [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
DRM_FLAG = [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
# easy kept: a, b -> k = 2. Candidates (rejected, in band, clean): d .8, e .6, h .2, i .8, j .8
# (difficulties); f is ACE-flagged, g is all-wrong.


def test_hard_band_is_p_in_open_zero_to_one_minus_one_over_m():
    assert in_hard_band([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.9], 5).tolist() == [0, 1, 1, 1, 1, 0, 0]
    assert in_hard_band([0.0, 0.25, 0.75, 1.0], 4).tolist() == [0, 1, 1, 0]
    assert not in_hard_band([0.0, 0.5, 1.0], 1).any()
    assert in_hard_band([1 - 0.8], 5)[0]  # 0.19999999999999996 is still 1/5


def test_drm_topk_ties_by_id_and_default_k():
    kept, reasons = drm_replace(DRM_IDS, DRM_P, DRM_KEPT, DRM_FLAG, M=5)
    # top-2 by difficulty: d, i, j tie at 0.8 -> smallest ids d, i
    assert kept_ids(DRM_IDS, kept) == {"c", "d", "i"}
    assert reasons == [
        "dropped_easy_drm", "dropped_easy_drm", "kept_input", "added_drm", "not_selected",
        "dropped_input", "dropped_input", "not_selected", "added_drm", "not_selected",
    ]  # fmt: skip
    assert set(reasons) <= set(ALL_REASONS)
    # input order does not matter
    perm = [7, 3, 9, 0, 5, 2, 8, 1, 6, 4]
    kept_p, _ = drm_replace(
        [DRM_IDS[i] for i in perm], [DRM_P[i] for i in perm], [DRM_KEPT[i] for i in perm],
        [DRM_FLAG[i] for i in perm], M=5,
    )  # fmt: skip
    assert kept_ids([DRM_IDS[i] for i in perm], kept_p) == {"c", "d", "i"}


def test_drm_explicit_k_and_switches():
    pick = lambda **kw: kept_ids(DRM_IDS, drm_replace(DRM_IDS, DRM_P, DRM_KEPT, DRM_FLAG, M=5, **kw)[0])
    assert pick(k=3) == {"c", "d", "i", "j"}
    assert pick(k=4) == {"c", "d", "i", "j", "e"}
    assert pick(k=100) == {"c", "d", "i", "j", "e", "h"}  # capped at 5 candidates
    assert pick(k=0) == {"c"}
    assert pick(k=0.4) == {"c", "d", "i"}  # 0.4 of 5 candidates = 2
    assert pick(ace_filter=False, k=4) == {"c", "d", "f", "i", "j"}  # f now eligible, ties by id
    assert pick(remove_easy=False) == {"a", "b", "c"}  # nothing removed -> k = 0


def test_drm_random_rule_is_seeded_and_order_invariant():
    runs = [drm_replace(DRM_IDS, DRM_P, DRM_KEPT, DRM_FLAG, M=5, rule="random", seed=s)[0] for s in range(8)]
    for kept in runs:
        added = kept_ids(DRM_IDS, kept) - {"c"}
        assert len(added) == 2 and added <= {"d", "e", "h", "i", "j"}
    again = drm_replace(DRM_IDS, DRM_P, DRM_KEPT, DRM_FLAG, M=5, rule="random", seed=3)[0]
    assert again.tolist() == runs[3].tolist()
    assert len({tuple(k.tolist()) for k in runs}) > 1  # the seed matters
    rev = slice(None, None, -1)
    rev_kept = drm_replace(DRM_IDS[rev], DRM_P[rev], DRM_KEPT[rev], DRM_FLAG[rev], M=5, rule="random", seed=3)[0]
    assert kept_ids(DRM_IDS[rev], rev_kept) == kept_ids(DRM_IDS, runs[3])


def test_drm_pool_all_counts_already_kept_picks():
    ids, p, kept = ["x", "y", "z"], [1.0, 0.2, 0.4], [1, 1, 0]
    # x easy -> k = 1. rejected pool: z is the only candidate -> added.
    new, reasons = drm_replace(ids, p, kept, [0, 0, 0], M=5, pool="rejected")
    assert kept_ids(ids, new) == {"y", "z"} and reasons[2] == "added_drm"
    # whole dataset: hardest eligible is y (0.8 > 0.6), already kept -> nothing added.
    new, reasons = drm_replace(ids, p, kept, [0, 0, 0], M=5, pool="all")
    assert kept_ids(ids, new) == {"y"} and reasons == ["dropped_easy_drm", "kept_input", "not_selected"]
    with pytest.raises(ValueError):
        drm_replace(ids, p, kept, [0, 0, 0], M=5, pool="everything")


# ----------------------------------------------------------------------------- rap_select

RAP_IDS = list(range(11))
RAP_PMM = [1.0, 0.8, 0.6, 0.6, 0.2, 0.4, 0.2, 0.0, 1.0, 1.0, 0.4]
RAP_PTXT = [0.2, 0.2, 0.0, 0.2, 0.0, 0.4, 0.2, 0.0, 0.4, 1.0, 0.0]
RAP_ACE = [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
# gaps: .8 .6 .6 .4 .2 0 0 0 .6 0 .4 -> CDE (> .5) keeps 0, 1, 2, 8; ACE drops 2.
# DRM: easy 0, 8 removed (k = 2); candidates 3 (.4), 4 (.8), 5 (.6), 10 (.6) -> 4, then 5 (id < 10).


def test_rap_select_end_to_end():
    kept, reasons = rap_select(RAP_IDS, RAP_PMM, RAP_PTXT, RAP_ACE, M=5)
    assert kept_ids(RAP_IDS, kept) == {1, 4, 5}
    assert reasons == [
        "dropped_easy_drm", "kept_cde", "dropped_ace", "not_selected", "added_drm", "added_drm",
        "dropped_cde_gap", "dropped_cde_gap", "dropped_easy_drm", "dropped_cde_gap", "not_selected",
    ]  # fmt: skip


def test_rap_select_ablation_switches():
    kept, reasons = rap_select(RAP_IDS, RAP_PMM, RAP_PTXT, RAP_ACE, M=5, drm=False)
    assert kept_ids(RAP_IDS, kept) == {0, 1, 8} and reasons[2] == "dropped_ace"
    # no ACE: 2 survives; sample 6 (diff .8) becomes a candidate and ties with 4
    kept, _ = rap_select(RAP_IDS, RAP_PMM, RAP_PTXT, None, M=5)
    assert kept_ids(RAP_IDS, kept) == {1, 2, 4, 6}
    # lam_c = 0.3 admits the 0.4 gaps (3 and 10); easy 0, 8 -> k = 2 -> 4 (.8), 5 (.6)
    kept, _ = rap_select(RAP_IDS, RAP_PMM, RAP_PTXT, RAP_ACE, M=5, lam_c=0.3)
    assert kept_ids(RAP_IDS, kept) == {1, 3, 10, 4, 5}
    # CDE off: every non-flagged sample passes; easy 0, 8, 9 removed; rejected pool = flagged only
    kept, _ = rap_select(RAP_IDS, RAP_PMM, None, RAP_ACE, M=5, cde=False)
    assert kept_ids(RAP_IDS, kept) == {1, 3, 4, 5, 7, 10}
    kept, _ = rap_select(RAP_IDS, RAP_PMM, RAP_PTXT, RAP_ACE, M=5, rule="random", seed=1, k=1)
    assert len(kept_ids(RAP_IDS, kept) - {1}) == 1
    with pytest.raises(TypeError):
        rap_select(RAP_IDS, RAP_PMM, RAP_PTXT, RAP_ACE, M=5, drm=False, k=3)


def test_ace_needed_is_cde_survivors_plus_band():
    need = ace_needed(RAP_PMM, RAP_PTXT, M=5)
    assert set(np.flatnonzero(need).tolist()) == {0, 1, 2, 3, 4, 5, 6, 8, 10}


# ----------------------------------------------------------------------------- released code

R, A, W = released_reward(True, True), released_reward(True, False), 0.0  # 1.0, 0.9, 0.0


def rec(rid, img, txt):
    return {"id": rid, "img_rewards": img, "txt_rewards": txt}


def rate(k):  # k of 5 rollouts fully correct
    return [R] * k + [W] * (5 - k)


def test_released_reward_exact_values():
    assert R == 1.0 and A == 0.9 and released_reward(False, True) == pytest.approx(0.1)


def test_released_gap_float_edges_at_0_2():
    records = [
        rec("e1", rate(4), rate(3)),  # 0.8 - 0.6 = 0.20000000000000007
        rec("e2", rate(3), rate(2)),  # 0.6 - 0.4 = 0.19999999999999996
        rec("e3", rate(2), rate(1)),  # 0.4 - 0.2 = 0.2 exactly
        rec("e4", rate(3), rate(0)),  # 0.6
        rec("e5", rate(2), rate(0)),  # 0.4
    ]
    f = released_code_features(records)
    assert f.gap[0] > 0.2 and f.gap[1] < 0.2 and f.gap[2] == 0.2
    # mean_img = 2.8 / 5 = 0.56; s = 1 - (p - .56)^2 / .44^2, e.g. e1: 1 - .0576/.1936 = .7025
    assert f.mean_img == pytest.approx(0.56)
    np.testing.assert_allclose(f.similarity[:3], [1 - 0.0576 / 0.1936, 1 - 0.0016 / 0.1936, 1 - 0.0256 / 0.1936])
    kept, reasons = released_code_select(records)
    assert kept.tolist() == [False, False, False, True, True]  # exact 0.2 never passes "> 0.2"
    assert reasons[:3] == ["dropped_gap"] * 3
    raw, _ = released_code_select(records, gap_eps=0.0)  # the script's raw float comparison
    assert raw.tolist() == [True, False, False, True, True]


def test_released_similarity_easy_and_pool():
    records = [
        rec("a", [A, A, A, R, R], rate(0)),  # p .4 (0.9s are not "== 1"), easy (all >= .9)
        rec("b", rate(5), rate(0)),  # p 1 -> s = 0
        rec("c", rate(3), rate(0)),  # p .6, gap .6
        rec("d", rate(1), rate(0)),  # right1, p .2, gap .2
        rec("e", rate(0), rate(2)),  # p 0, gap -.4
        rec("f", rate(0), rate(0)),
        rec("g", rate(0), rate(0)),
    ]
    f = released_code_features(records)
    # mean_img = 2.2/7 = 11/35, 1 - mean = 24/35: s_a = 1 - (3/24)^2, s_c = 1 - (10/24)^2,
    # s_d = 1 - (4/24)^2 = 35/36 >= .85 (pool), s_b = 0, s_e..g = 1 - (11/24)^2
    np.testing.assert_allclose(
        f.similarity, [1 - (3 / 24) ** 2, 0.0, 1 - (10 / 24) ** 2, 35 / 36] + [1 - (11 / 24) ** 2] * 3
    )
    assert f.easy.tolist() == [True, True, False, False, False, False, False]
    assert f.right1.tolist() == [False, False, False, True, False, False, False]
    kept, reasons = released_code_select(records)
    assert kept.tolist() == [False, False, True, False, False, False, False]
    # pool = {d}; int(1 * 0.1) = 0 draws
    assert reasons == ["dropped_easy", "dropped_similarity", "kept_released_main", "not_selected"] + ["dropped_gap"] * 3


def test_released_readd_matches_script_random_draw():
    # 3 main-subset samples first, then 20 right1 pool members (p_img .2, p_txt 0).
    records = [rec(f"m{i}", rate(3), rate(0)) for i in range(3)]
    records += [rec(f"r{i}", rate(1), rate(0)) for i in range(20)]
    # mean_img = (1.8 + 4) / 23; right1 s = 1 - ((.2 - m)/(1 - m))^2 ~ .993 >= .85; pool = 20
    kept, reasons = released_code_select(records)
    state = random.getstate()
    random.seed(42)  # the script's global-RNG form
    expected = set(random.sample(list(range(3, 23)), int(20 * 0.1)))
    random.setstate(state)
    assert set(np.flatnonzero(kept).tolist()) == {0, 1, 2} | expected
    assert reasons.count("added_released_readd") == 2 and reasons.count("not_selected") == 18
    other_seed, _ = released_code_select(records, seed=7, readd_fraction=0.5)
    assert other_seed.sum() == 3 + 10


def test_released_degenerate_all_perfect():
    kept, reasons = released_code_select([rec("a", rate(5), rate(5)), rec("b", rate(5), rate(0))])
    assert not kept.any() and reasons == ["dropped_gap", "dropped_easy"]
    with pytest.raises(ValueError):
        released_code_select([rec("a", [], rate(1))])


# ----------------------------------------------------------------------------- baselines


def test_resolve_budget():
    assert resolve_budget(10, 0.25) == 3  # 2.5 rounds half up
    assert resolve_budget(10, 0.24) == 2
    assert resolve_budget(10, 1.0) == 10 and resolve_budget(10, 1) == 1
    assert resolve_budget(10, 50) == 10 and resolve_budget(10, 0) == 0
    for bad in (1.5, 0.0, -1):
        with pytest.raises(ValueError):
            resolve_budget(10, bad)
    for bad in (True, "10"):
        with pytest.raises(TypeError):
            resolve_budget(10, bad)


def test_select_random_seeded_nested_order_invariant():
    ids = [f"s{i:03d}" for i in range(100)]
    kept, reasons = select_random(ids, 0.1, seed=5)
    assert kept.sum() == 10 and reasons.count("kept_random") == 10
    assert select_random(ids, 10, seed=5)[0].tolist() == kept.tolist()
    assert kept_ids(ids, kept) <= kept_ids(ids, select_random(ids, 30, seed=5)[0])  # nested budgets
    shuffled = ids[::-1]
    assert kept_ids(shuffled, select_random(shuffled, 10, seed=5)[0]) == kept_ids(ids, kept)
    assert select_random(ids, 10, seed=6)[0].tolist() != kept.tolist()
    with pytest.raises(ValueError):
        select_random(["a", "a"], 1)


def test_select_pass_rate_presets_and_bounds():
    ids = list(range(10))
    p = [0.0, 0.02, 0.1, 0.18, 0.2, 0.5, 0.9, 0.92, 1.0, float("nan")]
    assert select_pass_rate(ids, p, "thinklite_sc")[0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert select_pass_rate(ids, p, "informative")[0].tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    kept, reasons = select_pass_rate(ids, p, "balanced")
    assert kept.tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0]
    assert reasons[0] == "dropped_pass_rate_low" and reasons[7] == "dropped_pass_rate_high"
    assert reasons[9] == "dropped_missing_score" and reasons[5] == "kept_pass_rate"
    # ThinkLite over 50 rollouts: 10/50 correct is exactly 0.2 -> excluded, 9/50 kept
    rates = pass_rate(np.array([[1] * 10 + [0] * 40, [1] * 9 + [0] * 41]))
    assert select_pass_rate([0, 1], rates, "thinklite_sc")[0].tolist() == [False, True]
    # explicit bounds on float noise: 0.1 + 0.2 = 0.30000000000000004 equals 0.3
    assert select_pass_rate([0], [0.1 + 0.2], high=0.3)[0][0]
    assert not select_pass_rate([0], [0.1 + 0.2], high=0.3, high_strict=True)[0][0]
    assert select_pass_rate(ids[:3], [0.4, 0.5, 0.6], low=0.5)[0].tolist() == [False, True, True]
    with pytest.raises(ValueError):
        select_pass_rate(ids, p, "balanced", low=0.2)
    with pytest.raises(ValueError):
        select_pass_rate(ids, p, "hardest")


def test_select_length():
    ids, lengths = list("abcde"), [10, 30, 20, 30, float("nan")]
    assert kept_ids(ids, select_length(ids, lengths, 2)[0]) == {"b", "d"}
    assert kept_ids(ids, select_length(ids, lengths, 1)[0]) == {"b"}  # tie -> smaller id
    assert kept_ids(ids, select_length(ids, lengths, 2, longest=False)[0]) == {"a", "c"}
    assert kept_ids(ids, select_length(ids, lengths, 0.4)[0]) == {"b", "d"}
    kept, reasons = select_length(ids, lengths, 5)
    assert kept_ids(ids, kept) == {"a", "b", "c", "d"} and reasons[4] == "dropped_missing_score"
    assert select_length(ids, lengths, 2)[1] == ["not_selected", "kept_length", "not_selected", "kept_length",
                                                 "dropped_missing_score"]  # fmt: skip
