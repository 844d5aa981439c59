"""RAP scoring plumbing: rollout cache, score store (shards / resume / atomicity), provenance reuse,
selectors via the recipe. Generation is scripted here (fast, deterministic); the real tiny model runs
in tests/test_score_cli.py."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dualtune.curation import write_manifest
from dualtune.data.sources import load_domain, sample_meta
from dualtune.recipes.select import TRAIN_MODE_KEY, run_selection, select_training_rows
from dualtune.scoring import (
    RolloutCache, RolloutSettings, ScoreStore, apply_selector, collect_rollouts, shard_of, update_selection_cost)
from dualtune.utils.hashing import sample_digest
from dualtune.scoring.store import write_parquet_atomic
from dualtune.selection import RELEASED_REASONS, released_code_select
from tests.conftest import TEST_MODEL_OVERRIDES, compose


class ShortcutBackend:
    """Scripted stand-in for a model that exploits textual shortcuts (the tiny base model cannot).

    With the image it answers correctly with probability ``p_see``; without it, only when the question
    itself states the answer (the lab's planted language-prior cue), with the same probability.
    """

    def __init__(self, p_see: float = 0.75):
        self.p_see = p_see
        self.calls: list[tuple[str, int, int]] = []  # (condition, n samples, n per sample)

    def generate(self, samples, condition, settings, n, seed):
        self.calls.append((condition, len(samples), n))
        rng = np.random.default_rng(seed)
        out = []
        for s in samples:
            sees = condition == "mm"
            assert bool(s["images"] or s["video"]) == sees  # text-only inputs carry no image at all
            can = sees or sample_meta(s).get("language_prior", False)
            answers = [s["answer"] if can and rng.random() < self.p_see else "zzz" for _ in range(n)]
            out.append([{"text": f"<think>look</think><answer>{a}</answer>", "token_ids": [1, 2, 3, 4, 5],
                         "truncated": False} for a in answers])
        return out

    @property
    def generated(self) -> int:
        return sum(k * n for _, k, n in self.calls)


def _cfg(cache_dir, tmp_path, *overrides, scores_dir=None, selection="rap"):
    """Score config with a per-test score store root and rollout cache (the lab and model are shared).

    RAP runs here use M = 4 and no ACE (scripted generators have no attention; ACE runs in test_score_cli).
    """
    rap = ["selection.rollouts.num_generations=4", "selection.ace.enabled=false"] if selection == "rap" else []
    return compose("score", [f"cache_dir={cache_dir}", f"output_dir={tmp_path}", *TEST_MODEL_OVERRIDES,
                             "domain=all", "domain.n_train_per_subtask=6", f"selection={selection}", *rap,
                             "score.batch_size=16", "score.plots=false", f"score.rollout_cache_dir={tmp_path}/rollouts",
                             f"selection.scores_dir={scores_dir or tmp_path / 'scores'}", *overrides])


@pytest.fixture(scope="module")
def rows(cache_dir, tiny_model_path):
    return load_domain(_cfg(cache_dir, Path("/tmp")).domain, cache_dir)["train"]


def test_shards_partition_ids_by_stable_hash():
    ids = [f"s{i}" for i in range(50)]
    expected = {i: int(hashlib.sha256(json.dumps(i).encode()).hexdigest()[:16], 16) % 3 for i in ids}
    assert {i: shard_of(i, 3) for i in ids} == expected
    assert {shard_of(i, 1) for i in ids} == {0}
    assert all(sum(shard_of(i, 3) == k for k in range(3)) == 1 for i in ids)


def test_rollout_cache_serves_prefixes_and_extends(tmp_path, rows):
    samples, backend, stats = rows[:5], ShortcutBackend(), {}
    settings = RolloutSettings(num_generations=2, max_new_tokens=8)
    cache = RolloutCache(tmp_path, "k")
    first = collect_rollouts(backend, cache, samples, "mm", settings, stats)
    assert backend.calls == [("mm", 5, 2)] and stats["generated_tokens"] == 5 * 2 * 5
    # A fresh process sees the same rollouts; M=2 again generates nothing, M=3 only one more each.
    cache = RolloutCache(tmp_path, "k")
    assert cache.load({s["id"]: sample_digest(s) for s in samples}) == 5
    again = collect_rollouts(backend, cache, samples, "mm", settings, stats)
    assert [[r["text"] for r in x] for x in again] == [[r["text"] for r in x] for x in first]
    three = collect_rollouts(backend, cache, samples, "mm", RolloutSettings(num_generations=3, max_new_tokens=8),
                             stats)
    assert backend.calls[1:] == [("mm", 5, 1)] and all(len(x) == 3 for x in three)
    assert [x[:2] for x in three] == again
    assert stats["rollouts_cached"] == 5 * 2 + 5 * 2 and stats["rollouts_generated"] == 10 + 5


def test_cde_drops_planted_language_prior_samples(cache_dir, tmp_path, rows):
    cfg = _cfg(cache_dir, tmp_path, "score.plots=true")
    result = run_selection(cfg, rows, tmp_path, backend=ShortcutBackend())
    table = result.table
    prior = table["language_prior"].to_numpy(dtype=bool)
    cde_drop = (table["cde_gap"] <= 0.5 + 1e-9).to_numpy()
    assert prior.sum() >= 8 and (~prior).sum() >= 40
    # Prior samples are answerable without the image: gap ~ 0, almost all rejected by CDE; others mostly pass.
    assert cde_drop[prior].mean() >= 0.9 and cde_drop[~prior].mean() <= 0.5
    # CDE-rejected samples are dropped unless DRM re-adds them from the hard band (reviewer 4's caveat).
    assert set(table["reason"][cde_drop]) <= {"dropped_cde_gap", "not_selected", "added_drm"}
    assert set(table["reason"][~cde_drop]) <= {"kept_cde", "dropped_easy_drm"}
    assert table["p_txt"][prior].mean() > 0.5 and table["p_txt"][~prior].max() == 0.0
    np.testing.assert_allclose(table["cde_gap"], table["p_mm"] - table["p_txt"])
    np.testing.assert_allclose(table["difficulty"], 1 - table["p_mm"])
    assert not (table["kept"] & (table["p_mm"] == 1.0)).any()  # DRM removed every easy sample
    summary = json.loads((tmp_path / "selection.json").read_text())
    assert summary["n_kept"] == int(table["kept"].sum()) == len(result.rows) == len(summary["kept_ids"])
    assert sum(summary["counts_by_reason"].values()) == len(rows)
    assert sum(v["kept"] for v in summary["by_subtask"].values()) == summary["n_kept"]
    assert summary["cost"]["scoring"]["total"]["generated_tokens"] == pytest.approx(len(rows) * 2 * 4 * 5)
    for name in ("scores.parquet", "provenance.json", "plots/score_histograms.png", "plots/kept_by_subtask.png"):
        assert (tmp_path / name).is_file()


def test_resume_after_interrupt_loses_nothing_and_duplicates_nothing(cache_dir, tmp_path, rows):
    cfg = _cfg(cache_dir, tmp_path, "score.batch_size=5")
    subset = rows[:23]

    def crash(k, _rows):
        if k == 1:
            raise KeyboardInterrupt("simulated kill after 2 batches")

    with pytest.raises(KeyboardInterrupt):
        run_selection(cfg, subset, tmp_path / "a", backend=ShortcutBackend(), on_batch=crash)
    store = next(ScoreStore(p.parent) for p in (tmp_path / "scores").glob("*/provenance.json"))
    assert len(store.read()) == 10
    # A kill during a write leaves only a temp file; a replayed part duplicates ids: both are harmless.
    (store.parts_dir / ".part-s0000-x.parquet.123.tmp").write_bytes(b"garbage")
    shutil.copy(next(store.parts_dir.glob("part-*.parquet")), store.parts_dir / "part-s0000-zzz.parquet")
    backend = ShortcutBackend()
    result = run_selection(cfg, subset, tmp_path / "b", backend=backend)
    assert backend.calls == [("mm", 5, 4), ("txt", 5, 4), ("mm", 5, 4), ("txt", 5, 4), ("mm", 3, 4), ("txt", 3, 4)]
    merged = store.read([store.merged_path])
    assert sorted(merged["id"]) == sorted(r["id"] for r in subset) and merged["id"].is_unique
    assert list(store.parts_dir.glob("part-*.parquet")) == []
    assert result.summary["cost"]["scoring"]["this_run"]["samples"] == 13


def test_shards_score_disjoint_ids_and_last_one_selects(cache_dir, tmp_path, rows):
    subset = rows[:20]
    base = ["score.num_shards=2"]
    first = run_selection(_cfg(cache_dir, tmp_path, *base, "score.shard_id=0"), subset, tmp_path / "s0",
                          backend=ShortcutBackend())
    assert first is None  # shard 1 not scored yet: nothing selected
    backend = ShortcutBackend()
    second = run_selection(_cfg(cache_dir, tmp_path, *base, "score.shard_id=1"), subset, tmp_path / "s1",
                           backend=backend)
    n_shard1 = sum(shard_of(r["id"], 2) == 1 for r in subset)
    assert backend.calls[0] == ("mm", n_shard1, 4) and second.summary["n_total"] == 20
    assert set(second.table["shard"]) == {0, 1}
    assert all(s == shard_of(i, 2) for i, s in zip(second.table["id"], second.table["shard"]))


def test_provenance_match_reuses_mismatch_rescores(cache_dir, tmp_path, rows):
    subset = rows[:12]
    run_selection(_cfg(cache_dir, tmp_path), subset, tmp_path / "r1", backend=ShortcutBackend())
    again = ShortcutBackend()
    r2 = run_selection(_cfg(cache_dir, tmp_path), subset, tmp_path / "r2", backend=again)
    assert again.calls == [] and r2.summary["cost"]["scoring"]["reused_store"] is True
    colder = ShortcutBackend()
    r3 = run_selection(_cfg(cache_dir, tmp_path, "selection.rollouts.temperature=0.7"), subset,
                       tmp_path / "r3", backend=colder)
    assert colder.generated == 2 * 12 * 4 and r3.summary["provenance_hash"] != r2.summary["provenance_hash"]
    # Pointing scores_dir at a run dir with another provenance scores into a fresh store under it.
    moved = ShortcutBackend()
    r4 = run_selection(_cfg(cache_dir, tmp_path, "selection.rollouts.top_p=0.9", scores_dir=tmp_path / "r1"),
                       subset, tmp_path / "r4", backend=moved)
    assert moved.generated == 2 * 12 * 4 and r4.summary["scores_store"].startswith(str(tmp_path / "r1") + "/")
    # ...and at a run dir with the same provenance reuses its scores.parquet.
    same = ShortcutBackend()
    run_selection(_cfg(cache_dir, tmp_path, scores_dir=tmp_path / "r2"), subset, tmp_path / "r5", backend=same)
    assert same.calls == []


def test_released_code_variant_and_rollout_reuse_across_estimators(cache_dir, tmp_path, rows):
    subset = rows[:30]
    run_selection(_cfg(cache_dir, tmp_path), subset, tmp_path / "paper", backend=ShortcutBackend())
    backend = ShortcutBackend()
    result = run_selection(_cfg(cache_dir, tmp_path, "selection.variant=released_code"), subset,
                           tmp_path / "rel", backend=backend)
    assert backend.calls == []  # same conditions, no ACE: the paper run's score store is reused
    t = result.table
    records = [{"id": i, "img_rewards": list(a), "txt_rewards": list(b)}
               for i, a, b in zip(t["id"], t["mm_rewards"], t["txt_rewards"])]
    kept, reasons = released_code_select(records)
    assert list(t["kept"]) == list(kept) and list(t["reason"]) == reasons
    assert set(reasons) <= set(RELEASED_REASONS) and "rel_similarity" in t
    # Pass-rate band with M = 5 reuses the 4 cached multimodal rollouts and generates one more each.
    more = ShortcutBackend()
    run_selection(_cfg(cache_dir, tmp_path, "selection.rollouts.num_generations=5", selection="pass_rate"),
                  subset, tmp_path / "pr", backend=more)
    assert more.calls == [("mm", 16, 1), ("mm", 14, 1)]  # two batches of score.batch_size=16


def test_selection_is_deterministic_and_order_free(cache_dir, tmp_path, rows):
    subset = rows[:40]
    cfg = _cfg(cache_dir, tmp_path, "selection.drm.rule=random", "selection.cde.lam_c=0.2")
    a = run_selection(cfg, subset, tmp_path / "a", backend=ShortcutBackend())
    b = run_selection(cfg, subset, tmp_path / "b", backend=ShortcutBackend())
    assert a.summary["kept_ids"] == b.summary["kept_ids"]
    order = np.random.default_rng(0).permutation(len(subset))
    table = a.table.set_index("id").loc[[subset[i]["id"] for i in order]].reset_index()
    scores = {c: table[c].to_numpy() for c in table.columns}
    for sel in (cfg.selection, compose("score", ["selection=random", "selection.budget=7"]).selection):
        kept, _, _ = apply_selector(sel, [subset[i] for i in order], scores, seed=3)
        kept_a, _, _ = apply_selector(sel, subset, {c: a.table[c].to_numpy() for c in a.table.columns}, seed=3)
        assert {subset[i]["id"] for i, k in zip(order, kept) if k} == {r["id"] for r, k in zip(subset, kept_a) if k}


def test_baseline_selectors_hand_computed():
    rows = [{"id": f"x{i}", "cot": " ".join(["w"] * n), "domain": "d", "subtask": "t"}
            for i, n in enumerate([3, 9, 1, 5])]
    scores = {"p_mm": np.array([0.0, 0.5, 1.0, 0.25]), "mm_tokens": np.array([10.0, 2.0, 7.0, 30.0])}
    sel = compose("score", ["selection=pass_rate"]).selection  # informative: 0 < p < 1
    assert list(apply_selector(sel, rows, scores)[0]) == [False, True, False, True]
    sel = compose("score", ["selection=length", "selection.budget=2"]).selection
    assert list(apply_selector(sel, rows, scores)[0]) == [False, True, False, True]  # 9 and 5 words
    sel = compose("score", ["selection=length", "selection.budget=2", "selection.longest=false",
                            "selection.source=rollouts"]).selection
    assert list(apply_selector(sel, rows, scores)[0]) == [False, True, True, False]  # 2 and 7 tokens


def test_boundary_routes_rows_with_train_mode(tmp_path, cache_dir):
    rows = [{"id": i, "domain": "d", "subtask": "t", "cot": ""} for i in ("a", "b", "c", "d")]
    write_manifest({"routes": {"reasoning": ["a"], "direct": ["c"], "drop": ["b"]}}, tmp_path / "curation")
    cfg = compose("train", [f"cache_dir={cache_dir}", "selection=boundary",
                            f"selection.manifest={tmp_path / 'curation'}"])
    kept = select_training_rows(cfg, rows, tmp_path)
    assert [(r["id"], r[TRAIN_MODE_KEY]) for r in kept] == [("a", "cot"), ("c", "direct")]
    summary = json.loads((tmp_path / "selection.json").read_text())
    assert summary["counts_by_reason"] == {"dropped_boundary": 1, "dropped_unrouted": 1,
                                           "kept_boundary_direct": 1, "kept_boundary_reasoning": 1}
    assert summary["details"]["train_modes"] == {"a": "cot", "c": "direct"}


def test_update_selection_cost_adds_training(tmp_path):
    import pandas as pd

    from dualtune.scoring.outputs import scoring_cost, summarize, write_outputs

    df = pd.DataFrame({"id": ["a", "b"], "domain": ["d", "d"], "subtask": ["t", "u"], "kept": [True, False],
                       "reason": ["kept_random", "not_selected"], "cost_wall_s": [1.5, 2.0],
                       "cost_generated_tokens": [10.0, 30.0]})
    summary = summarize(df, "random", {}, {}, scoring_cost(df, {"wall_s": 3.5}), {})
    write_outputs(tmp_path, df, summary, None, {})
    out = update_selection_cost(tmp_path, training_wall_s=6.5, training_tokens=1000)
    assert out["cost"]["scoring"]["total"] == {"wall_s": 3.5, "generated_tokens": 40}
    assert out["cost"]["total"] == {"wall_s": 10, "generated_tokens": 40, "training_tokens": 1000}
    assert json.loads((tmp_path / "selection.json").read_text()) == out


def test_atomic_parquet_write_leaves_old_file_on_failure(tmp_path):
    import pandas as pd

    path = tmp_path / "x.parquet"
    write_parquet_atomic(pd.DataFrame({"a": [1]}), path)

    class Boom(pd.DataFrame):
        def to_parquet(self, *a, **k):
            raise OSError("disk full")

    with pytest.raises(OSError):
        write_parquet_atomic(Boom({"a": [2]}), path)
    assert list(pd.read_parquet(path)["a"]) == [1] and [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


def test_cde_and_ace_summaries_hand_computed():
    import pandas as pd

    from dualtune.scoring.outputs import ace_summary, cde_by_language_prior

    df = pd.DataFrame({"language_prior": [True, True, False, False, False],
                       "p_mm": [1.0, 0.5, 1.0, 0.75, 0.0], "p_txt": [1.0, 0.5, 0.0, 0.5, 0.0],
                       "cde_gap": [0.0, 0.0, 1.0, 0.25, 0.0], "ace_n_columns": [3, 0, -1, 5, 2],
                       "ace_psi": [0.01, 0.0, float("nan"), 0.5, 0.2], "ace_flag": [False, False, False, True, True]})
    assert cde_by_language_prior(df, 0.5) == {
        "language_prior": {"n": 2, "p_mm": 0.75, "p_txt": 0.75, "cde_rejected": 1},
        "rest": {"n": 3, "p_mm": 0.5833, "p_txt": 0.1667, "cde_rejected": 0.6667}}
    assert ace_summary(df) == {"scored": 3, "flagged": 2, "max_psi": 0.5}


def test_rollout_count_is_never_silently_replaced():
    from dualtune.scoring.selectors import rollouts_for

    def m(*overrides):
        return rollouts_for(compose("score", list(overrides)).selection)

    assert (m("selection=rap"), m("selection=rap", "selection.rollouts.num_generations=3")) == (5, 3)
    assert m("selection=pass_rate") == 8 and m("selection=pass_rate", "selection.preset=thinklite_sc") == 50
    for bad in ("0", "-2"):  # 0 used to become 5 (`m or 5`)
        with pytest.raises(ValueError, match="selection.rollouts.num_generations"):
            m("selection=rap", f"selection.rollouts.num_generations={bad}")
