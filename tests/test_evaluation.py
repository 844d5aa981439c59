"""Tests for the evaluation runner and the base-model eval cache (tiny real Qwen2.5-VL, hand-made data)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from dualtune.evaluation import EvalResult, cached_evaluate, eval_key_fields, evaluate_model, read_records, write_eval
from dualtune.prompting.answers import score_output
from dualtune.prompting.templates import DEFAULT_TEMPLATES

CORPUS = [
    "How many red circles are in the grid? Answer directly with a single number.",
    "Which color is the square in row 2, column 3? Options: A. red B. blue C. green D. yellow",
    "<think>Row 1 has two circles and row 3 has one, so there are 3.</think><answer>3</answer>",
    "Think step by step inside <think></think>, then give the option letter inside <answer></answer>.",
    "The triangle is left of the blue square. The answer is B.",
] * 4
BUDGET = {"direct": 4, "cot": 8}
METRIC = {"spatial": "mra"}


def _image(color) -> Image.Image:
    """A 112x112 image (16 visual tokens for the tiny model) with one colored quadrant."""
    img = Image.new("RGB", (112, 112), "white")
    img.paste(Image.new("RGB", (56, 56), color), (0, 0))
    return img


def _sample(i: int, kind: str, question: str | None = None) -> dict:
    """A schema-like sample: choice samples in domain 'multi', number samples in 'spatial' (MRA-scored)."""
    colors = ["red", "blue", "green"]
    if kind == "choice":
        return {"id": f"c{i}", "domain": "multi", "subtask": "color", "images": [_image(colors[i % 3])],
                "question": question or "Which color is in the top left?", "options": ["red", "blue", "green"],
                "answer": "ABC"[i % 3], "answer_type": "choice", "cot": ""}
    return {"id": f"n{i}", "domain": "spatial", "subtask": "count", "images": [_image(colors[i % 3])],
            "question": question or "How many colored squares are in the image?", "options": [],
            "answer": str(i + 1), "answer_type": "number", "cot": ""}


SAMPLES = [_sample(i, "choice") for i in range(3)] + [_sample(i, "number") for i in range(3)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model_path, model, processor) for a freshly built, randomly initialised tiny Qwen2.5-VL."""
    from dualtune.models.loading import load_model, load_processor
    from dualtune.models.tiny import build_tiny_checkpoint
    from tests.conftest import sharpen_weights

    path = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), CORPUS, vocab_size=300, hidden_size=64,
                                 layers=2, intermediate_size=128, vision_hidden=32, vision_depth=1)
    model = load_model(str(path), {"dtype": "float32"}, for_training=False)
    sharpen_weights(model)  # otherwise the padding test below would compare constants
    return path, model, load_processor(str(path))


@pytest.fixture(scope="module")
def evaluated(tiny):
    """Both modes over the six samples, batch size 4 (so one batch mixes subtasks and one is short)."""
    _, model, processor = tiny
    return evaluate_model(model, processor, SAMPLES, max_new_tokens=BUDGET, batch_size=4, numeric_metric=METRIC,
                          progress=False)


def _rec(sid, mode, score, domain="d", subtask="s", n_tokens=0, skipped=False) -> dict:
    """A hand-made record with the runner's fields."""
    return {"id": sid, "domain": domain, "subtask": subtask, "mode": mode, "output": "", "extracted": None,
            "answer": "A", "score": score, "truncated": False, "n_tokens": n_tokens, "skipped": skipped}


def test_records_cover_samples_times_modes_and_are_scored_consistently(evaluated):
    recs = evaluated.records
    assert len(recs) == len(SAMPLES) * 2
    assert {(r["id"], r["mode"]) for r in recs} == {(s["id"], m) for s in SAMPLES for m in ("direct", "cot")}
    by_id = {s["id"]: s for s in SAMPLES}
    for r in recs:
        sample = by_id[r["id"]]
        # Re-scoring the stored output with the shared scorer reproduces the stored score exactly.
        assert (r["extracted"], r["score"]) == score_output(r["output"], sample, METRIC.get(r["domain"], "exact"))
        if sample["answer_type"] == "choice":
            assert r["score"] in (0.0, 1.0)
        else:
            assert 0.0 <= r["score"] <= 1.0
        assert 0 <= r["n_tokens"] <= BUDGET[r["mode"]]
        if r["truncated"]:  # truncated means the token budget ran out
            assert r["n_tokens"] == BUDGET[r["mode"]]
        assert not r["skipped"] and r["answer"] == sample["answer"]
    assert evaluated.skipped == {"direct": 0, "cot": 0}
    assert set(evaluated.wall_time_s) == {"direct", "cot"}
    # The sharpened model's greedy outputs depend on the input (so comparisons below are not vacuous).
    assert len({r["output"] for r in recs if r["mode"] == "cot"}) >= 3


def test_scoring_pipeline_with_known_outputs(monkeypatch):
    """Generation replaced by fixed outputs: batching, arguments and hand-computed accuracies."""
    import torch

    from dualtune.training import rollout

    outputs = {
        ("c0", "direct"): "A", ("c1", "direct"): "C", ("c2", "direct"): "C",  # 2/3 correct
        ("c0", "cot"): "<think>top left is red</think><answer>A</answer>",
        ("c1", "cot"): "<think>x</think><answer>B</answer>", ("c2", "cot"): "<think>never closed",  # 2/3
        ("n0", "direct"): "1", ("n1", "direct"): "2.5", ("n2", "direct"): "3",  # MRA 1 + 0.5 + 1
        ("n0", "cot"): "<answer>4</answer>", ("n1", "cot"): "<answer>2</answer>", ("n2", "cot"): "",  # 0 + 1 + 0
    }
    calls = []

    def fake_generate(model, processor, samples, mode, **kwargs):
        calls.append((mode, len(samples), kwargs["max_new_tokens"], kwargs["do_sample"], kwargs["num_generations"]))
        return [{"sample_id": s["id"], "mode": mode, "completion_text": outputs[(s["id"], mode)],
                 "completion_ids": torch.zeros(len(outputs[(s["id"], mode)]) + 1), "truncated": False}
                for s in samples]

    monkeypatch.setattr(rollout, "generate_completions", fake_generate)
    result = evaluate_model(torch.nn.Linear(1, 1), None, SAMPLES, max_new_tokens=BUDGET, batch_size=4,
                            numeric_metric=METRIC, progress=False)
    assert calls == [("direct", 4, 4, False, 1), ("direct", 2, 4, False, 1),
                     ("cot", 4, 8, False, 1), ("cot", 2, 8, False, 1)]
    acc = {(r["subtask"], r["mode"]): r["accuracy"] for r in result.per_subtask()}
    assert acc[("color", "direct")] == pytest.approx(200 / 3) and acc[("color", "cot")] == pytest.approx(200 / 3)
    assert acc[("count", "direct")] == pytest.approx(250 / 3) and acc[("count", "cot")] == pytest.approx(100 / 3)
    n1 = next(r for r in result.records if (r["id"], r["mode"]) == ("n1", "direct"))
    assert (n1["extracted"], n1["score"], n1["n_tokens"]) == ("2.5", 0.5, 4)
    # Without a per-domain metric numbers are scored exactly: 2.5 vs 2 is simply wrong.
    exact = evaluate_model(torch.nn.Linear(1, 1), None, SAMPLES, max_new_tokens=BUDGET, progress=False)
    assert {(r["subtask"], r["mode"]): r["accuracy"] for r in exact.per_subtask()}[("count", "direct")] == \
        pytest.approx(200 / 3)
    overall = {r["mode"]: r for r in result.aggregates() if r["domain"] == "all"}
    assert overall["direct"]["macro"] == pytest.approx((200 / 3 + 250 / 3) / 2)
    assert overall["cot"]["weighted"] == pytest.approx(100 * 3 / 6)


def test_per_subtask_accuracy_is_percent_of_record_scores(evaluated):
    rows = evaluated.per_subtask()
    assert [(r["domain"], r["subtask"], r["mode"]) for r in rows] == [
        ("multi", "color", "cot"), ("multi", "color", "direct"), ("spatial", "count", "cot"),
        ("spatial", "count", "direct")]
    for row in rows:
        scores = [r["score"] for r in evaluated.records
                  if (r["subtask"], r["mode"]) == (row["subtask"], row["mode"])]
        assert row["n"] == 3
        assert row["accuracy"] == pytest.approx(100.0 * sum(scores) / 3)
    # mean CoT length is over the generated tokens of the cot records only.
    lengths = {r["subtask"]: r["mean_tokens"] for r in evaluated.mean_cot_length()}
    cot_color = [r["n_tokens"] for r in evaluated.records if r["mode"] == "cot" and r["subtask"] == "color"]
    assert lengths["color"] == pytest.approx(sum(cot_color) / 3)


def test_macro_vs_weighted_aggregates_on_unbalanced_subtasks():
    # Domain A: a1 = [1, 1, 1, 0] -> 75 %, a2 = [0] -> 0 %; domain B: b1 = [1, 0.5] -> 75 % (MRA-like).
    recs = [_rec(f"a1_{i}", "direct", s, "A", "a1") for i, s in enumerate([1, 1, 1, 0])]
    recs += [_rec("a2_0", "direct", 0, "A", "a2")]
    recs += [_rec("b1_0", "direct", 1, "B", "b1"), _rec("b1_1", "direct", 0.5, "B", "b1")]
    agg = {r["domain"]: r for r in EvalResult.from_records(recs).aggregates()}
    assert agg["A"]["macro"] == pytest.approx(37.5)  # (75 + 0) / 2
    assert agg["A"]["weighted"] == pytest.approx(60.0)  # 3 / 5
    assert agg["B"]["macro"] == pytest.approx(75.0) and agg["B"]["weighted"] == pytest.approx(75.0)
    assert agg["all"]["macro"] == pytest.approx(50.0)  # (75 + 0 + 75) / 3
    assert agg["all"]["weighted"] == pytest.approx(100 * 4.5 / 7)
    assert (agg["all"]["n"], agg["all"]["n_subtasks"], agg["A"]["n"]) == (7, 3, 5)


def test_eval_aggregates_equal_the_boundary_reports_all_rows():
    """One definition of macro / weighted: evaluation's aggregates and the boundary report's ALL rows agree,
    with variants (weighted pools items: A is 1/4, not the variant mean 1/2) and a subtask name shared by
    two domains (macro over all = mean of 3 subtasks, not 2). Before: 50 vs 25 and 50 vs 33.3."""
    from dualtune.boundary import boundary_report

    recs = []
    for sid, domain, subtask, score, variant in [(1, "A", "dir", 1.0, "easy"), (2, "A", "dir", 0.0, "hard"),
                                                 (3, "A", "dir", 0.0, "hard"), (4, "A", "dir", 0.0, "hard"),
                                                 (5, "B", "dir", 1.0, None), (6, "B", "cnt", 0.0, None)]:
        for mode in ("direct", "cot"):
            recs.append({**_rec(sid, mode, score, domain, subtask), "variant": variant})
    result = EvalResult.from_records(recs)
    items = [{**it, "B_S": it["S"], "B_L": it["L"], "DT_S": it["S"], "DT_L": it["L"]} for it in result.to_items()]
    evaluated = {(r["domain"], r["mode"]): r for r in result.aggregates()}
    for kind in ("macro", "weighted"):
        for row in boundary_report(items, n_boot=5, aggregate=kind)["aggregates"]:
            assert evaluated[(row["domain"], "direct")][kind] == pytest.approx(row["B_S"]), (kind, row["domain"])
    assert evaluated[("A", "direct")]["weighted"] == pytest.approx(25.0)
    assert evaluated[("all", "direct")]["macro"] == pytest.approx((50 + 100 + 0) / 3)


def test_to_items_pairs_direct_and_cot_scores():
    recs = [_rec("x", "direct", 1), _rec("x", "cot", 0), _rec("y", "cot", 1), _rec("y", "direct", 0)]
    items = {it["id"]: it for it in EvalResult.from_records(recs).to_items()}
    assert items["x"] == {"domain": "d", "subtask": "s", "id": "x", "S": 1.0, "L": 0.0}
    assert (items["y"]["S"], items["y"]["L"]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="unpaired"):
        EvalResult.from_records(recs + [_rec("z", "direct", 1)]).to_items()


def test_write_eval_files_round_trip(evaluated, tmp_path):
    paths = write_eval(evaluated, tmp_path, prefix="base_")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "base_eval_summary.json", "base_eval_table.md", "base_predictions.jsonl"]
    assert read_records(paths["predictions"]) == evaluated.records
    summary = json.loads(paths["summary"].read_text())
    assert summary["per_subtask"] == evaluated.per_subtask()
    assert summary["aggregates"] == evaluated.aggregates()
    assert summary["skipped"] == {"direct": 0, "cot": 0} and summary["n_records"] == 12
    table = paths["table"].read_text()
    assert "| multi | color | 3 |" in table and "*macro*" in table and "*weighted*" in table


def test_cache_hit_skips_fn_and_template_change_misses(tiny, tmp_path):
    path = tiny[0]
    calls = []
    records = [_rec("x", "direct", 1, n_tokens=2), _rec("x", "cot", 0.5, n_tokens=7)]

    def fn():
        calls.append(1)
        return EvalResult.from_records(records, wall_time_s={"direct": 1.0})

    fields = eval_key_fields(SAMPLES, ("direct", "cot"), None, BUDGET, METRIC)
    first = cached_evaluate(tmp_path, path, fields, fn)
    second = cached_evaluate(tmp_path, path, fields, fn)
    assert len(calls) == 1 and not first.cached and second.cached
    assert second.records == records
    # `None` templates and the explicit defaults are the same key.
    same = eval_key_fields(SAMPLES, ("direct", "cot"), dict(DEFAULT_TEMPLATES), BUDGET, METRIC)
    cached_evaluate(tmp_path, path, same, fn)
    assert len(calls) == 1
    # Changed templates, budgets or gold answers each miss.
    other = dict(DEFAULT_TEMPLATES, direct="{question}{options}\nJust the answer ({answer_hint}).")
    cached_evaluate(tmp_path, path, eval_key_fields(SAMPLES, ("direct", "cot"), other, BUDGET, METRIC), fn)
    cached_evaluate(tmp_path, path, eval_key_fields(SAMPLES, ("direct", "cot"), None, {"cot": 99}, METRIC), fn)
    relabelled = [dict(s, answer="9") if s["id"] == "n0" else s for s in SAMPLES]
    cached_evaluate(tmp_path, path, eval_key_fields(relabelled, ("direct", "cot"), None, BUDGET, METRIC), fn)
    assert len(calls) == 4
    # A corrupted entry is recomputed, not trusted.
    entry = next((tmp_path / "eval").iterdir())
    (entry / "records.jsonl").write_text("{not json\n")
    assert len(cached_evaluate(tmp_path, path, json.loads(json.dumps(fields)), fn).records) == 2
    assert list((tmp_path / "eval").glob("*/.*.tmp")) == []


def test_left_padding_matches_alone_and_overlong_prompt_is_skipped(tiny):
    _, model, processor = tiny
    short = _sample(0, "choice")
    long = _sample(1, "number", question="How many colored squares are in the image? " * 6)
    alone = evaluate_model(model, processor, [short], max_new_tokens=BUDGET, progress=False)
    batched = evaluate_model(model, processor, [long, short], max_new_tokens=BUDGET, batch_size=2,
                             numeric_metric=METRIC, progress=False)
    for mode in ("direct", "cot"):
        solo = next(r for r in alone.records if r["mode"] == mode)
        in_batch = next(r for r in batched.records if r["mode"] == mode and r["id"] == short["id"])
        assert in_batch["output"] == solo["output"] and in_batch["n_tokens"] == solo["n_tokens"]

    # A limit between the two prompt lengths skips only the long prompt: scored 0, counted, not truncated.
    from dualtune.data.encoding import encode_generation_batch

    n_short = int(encode_generation_batch(processor, [short], "cot")["attention_mask"].sum())
    n_long = int(encode_generation_batch(processor, [long], "direct")["attention_mask"].sum())
    assert n_long > n_short + 20
    limited = evaluate_model(model, processor, [long, short], max_new_tokens=BUDGET, batch_size=2,
                             numeric_metric=METRIC, progress=False, max_prompt_length=n_short)
    assert limited.skipped == {"direct": 1, "cot": 1}
    for r in limited.records:
        if r["id"] == long["id"]:
            assert (r["skipped"], r["score"], r["output"], r["n_tokens"]) == (True, 0.0, "", 0)
        else:
            assert not r["skipped"]
            assert r["output"] == next(a["output"] for a in alone.records if a["mode"] == r["mode"])
    assert len(limited.records) == 4
    assert {r["subtask"]: r["accuracy"] for r in limited.per_subtask() if r["mode"] == "cot"}["count"] == 0.0
