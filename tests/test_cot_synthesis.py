"""CoT synthesis (issue 11 item 3): `python cot.py` rejection-samples rationales with a teacher, stores them as a
CoT source with provenance (resumable), and `python train.py domain.cot_source=<name>` trains on them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dualtune.data.cot_sources import CotSourceStore, apply_cot_source, condense, content_digest, summarize
from dualtune.prompting.answers import score_output
from dualtune.recipes.cot import judge, thought_of
from tests.conftest import CONF_DIR, TEST_MODEL_OVERRIDES, compose

ROOT = Path(CONF_DIR).parent
# The test tiny model, pretrained a little longer: it writes the <think>/<answer> format, and gets some answers.
TEACHER = [o.replace("model.", "teacher.", 1) for o in TEST_MODEL_OVERRIDES] + [
    "teacher.pretrain.n_samples=768", "teacher.pretrain.lr=3e-3"]
STUDENT = [o.replace("teacher.", "model.", 1) for o in TEACHER]  # the same model config: one cached build
DOMAIN = ["domain=spatial", "domain.n_train_per_subtask=4", "domain.n_test_per_subtask=1"]
SYNTH = [*DOMAIN, "cot.tries=8", "cot.temperature=0.5", "cot.batch_size=8"]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1")


# ----------------------------------------------------------------------------- pure rules
def test_condense_keeps_the_last_sentences():
    assert condense("red: 3. blue: 2. 3 + 2 = 5.") == "3 + 2 = 5."
    assert condense("red: 3. blue: 2. 3 + 2 = 5.", 2) == "blue: 2. 3 + 2 = 5."
    assert condense("Count rows\nrow 1: 2\nrow 2: 3") == "row 2: 3"
    assert condense("Is it 2? Yes! So 2.") == "So 2."
    assert condense("3.5 + 1 = 4.5") == "3.5 + 1 = 4.5"  # a decimal point is no sentence end
    assert condense("one sentence", 3) == "one sentence" and condense("") == ""
    with pytest.raises(ValueError):
        condense("a. b.", 0)


def test_judge_accepts_only_a_well_formed_correct_completion():
    sample = {"id": "s", "question": "How many?", "answer": "5", "answer_type": "number", "options": []}
    assert judge("<think> 3 + 2 = 5. </think><answer>5</answer>", sample, "exact") == ("3 + 2 = 5.", 1.0, None)
    assert judge("<think>3 + 3 = 6.</think><answer>6</answer>", sample, "exact")[2] == "wrong_answer"
    assert judge("<think>so 5</think>5", sample, "exact")[2] == "bad_format"
    assert judge("<think> </think><answer>5</answer>", sample, "exact")[2] == "empty_thought"
    assert judge("<think>a<think>b</think><answer>5</answer>", sample, "exact")[2] == "bad_format"
    # Without the format rule, the text before the answer block is the rationale.
    assert judge("so it is 5 <answer>5</answer>", sample, "exact", require_format=False)[0] == "so it is 5"
    assert judge("<think>4</think><answer>4</answer>", sample, "mra")[2] == "wrong_answer"  # partial credit: 0.8
    assert thought_of("<think>x</think> <answer>y</answer>\n") == "x" and thought_of("x") is None


def test_summarize_counts_by_subtask():
    def rec(sub, ok, tokens=0, tries=4, reason=None, origin=None):
        return {"domain": "d", "subtask": sub, "accepted": ok, "n_tokens": tokens, "tries_used": tries,
                "reject_reason": reason, "origin": origin}

    s = summarize([rec("a", True, 10, 1, origin="teacher"), rec("a", False, reason="bad_format"),
                   rec("b", True, 4, 3, origin="teacher"),
                   rec("b", False, 7, reason="wrong_answer", origin="original")])
    assert (s["n"], s["accepted"], s["rejected"], s["kept_original"]) == (4, 2, 2, 1)
    assert s["accept_rate"] == 0.5 and s["mean_rationale_tokens"] == 7.0 and s["mean_tries_accepted"] == 2.0
    assert s["reject_reasons"] == {"bad_format": 1, "wrong_answer": 1}
    assert [(p["subtask"], p["accept_rate"], p["mean_rationale_tokens"]) for p in s["per_subtask"]] == [
        ("a", 0.5, 10.0), ("b", 0.5, 4.0)]


# ----------------------------------------------------------------------------- the join (no model)
def test_apply_cot_source_joins_by_id_and_content(cache_dir, tmp_path):
    from dualtune.data.sources import load_domain

    rows = load_domain(compose("train", [f"cache_dir={cache_dir}", *DOMAIN]).domain, cache_dir)["train"][::4][:3]
    planted = dict(rows[0], meta=json.dumps({"cot_answer": "99", "note": 1}))
    changed = dict(rows[1], answer="12345")  # the source was written for other content
    store = CotSourceStore(tmp_path / "src")
    store.init({"version": 1})
    store.write_part([{"id": r["id"], "digest": content_digest(r), "rationale": f"new {r['id']}", "origin": "teacher"}
                      for r in rows[:2]])
    kept = apply_cot_source([planted, changed, rows[2]], str(tmp_path / "src"), cache_dir, "keep")
    assert kept[0]["cot"] == f"new {rows[0]['id']}" and json.loads(kept[0]["meta"]) == {"note": 1}
    assert kept[1]["cot"] == rows[1]["cot"] and kept[2]["cot"] == rows[2]["cot"]  # stale digest, absent: own
    skipped: list = []
    dropped = apply_cot_source([planted, changed, rows[2]], str(tmp_path / "src"), cache_dir, "drop", skipped)
    assert [r["id"] for r in dropped] == [rows[0]["id"]]
    assert skipped == [{"id": r["id"], "reason": "no_cot_source_rationale"} for r in rows[1:3]]
    kept_own = CotSourceStore(tmp_path / "own")  # cot.on_reject=keep_original: the planted cot_answer stays
    kept_own.init({"version": 1})
    kept_own.write_part([{"id": rows[0]["id"], "digest": content_digest(rows[0]), "rationale": "own one",
                          "origin": "original"}])
    joined = apply_cot_source([planted], str(tmp_path / "own"), cache_dir)[0]
    assert joined["cot"] == "own one" and joined["meta"] == planted["meta"]
    with pytest.raises(FileNotFoundError, match="no CoT source"):
        apply_cot_source(rows, "never_synthesized", cache_dir)


def test_train_config_rejects_a_missing_source(cache_dir):
    from dualtune.config_checks import ConfigError, check_config

    with pytest.raises(ConfigError, match="domain.cot_source='nope'.*python cot.py"):
        check_config(compose("train", [f"cache_dir={cache_dir}", "domain.cot_source=nope"]), "train")
    with pytest.raises(ConfigError, match="cot.tries=0"):
        check_config(compose("cot", [f"cache_dir={cache_dir}", "cot.tries=0"]), "cot")


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def synthesized(cache_dir, tmp_path_factory):
    """`python cot.py` on a few spatial samples: (run dir, source dir, stdout + stderr)."""
    out = tmp_path_factory.mktemp("cot_run")
    run = subprocess.run([sys.executable, "cot.py", *SYNTH, *TEACHER, "cot.source_name=spatial_test",
                          f"cache_dir={cache_dir}", f"output_dir={out}"], cwd=ROOT, env=ENV, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return out, Path(cache_dir) / "cot_sources" / "spatial_test", run.stdout + run.stderr


def test_cli_stores_correct_rationales_with_provenance(synthesized, cache_dir):
    from dualtune.data.sources import load_domain

    out, source, log = synthesized
    df = pd.read_parquet(source / "rationales.parquet")
    samples = {r["id"]: r for r in load_domain(compose("cot", [f"cache_dir={cache_dir}", *SYNTH]).domain,
                                               cache_dir)["train"]}
    assert sorted(df["id"]) == sorted(samples) and len(df) == 16  # 4 subtasks x 4
    accepted = df[df["accepted"]]
    assert 1 <= len(accepted) < len(df)  # the tiny teacher gets some right, not all
    for row in accepted.to_dict("records"):  # every stored rationale is the thought of a completion scored correct
        sample = samples[row["id"]]
        assert score_output(row["completion"], sample, "mra")[1] == 1.0
        assert thought_of(row["completion"]) == row["rationale"] == row["rationale_full"] and row["origin"] == "teacher"
        assert 1 <= row["tries_used"] <= 8 and row["n_tokens"] > 0 and row["digest"] == content_digest(sample)
    rejected = df[~df["accepted"]]
    assert rejected["rationale"].isna().all() and (rejected["tries_used"] == 8).all()  # on_reject=drop
    summary = json.loads((source / "summary.json").read_text())
    assert summary == json.loads((out / "cot_summary.json").read_text())
    assert (summary["n"], summary["accepted"], summary["rejected"]) == (16, len(accepted), len(rejected))
    assert sum(summary["reject_reasons"].values()) == len(rejected)
    assert sum(p["accepted"] for p in summary["per_subtask"]) == len(accepted) and len(summary["per_subtask"]) == 4
    assert f"{len(accepted)}/16 accepted" in log
    prov = json.loads((source / "provenance.json").read_text())
    assert prov["teacher"]["name"] == "tiny" and len(prov["teacher"]["fingerprint"]) > 8 and prov["model_path"]
    assert prov["decoding"] == {"temperature": 0.5, "top_p": 1.0, "max_new_tokens": 160, "do_sample": True}
    assert (prov["tries"], prov["seed"], prov["generation_backend"], prov["variant"]) == (8, 0, "hf", "full")
    for key in ("created", "git_sha", "dualtune_version", "hash", "prompt_template"):
        assert key in prov
    assert not list((source / "parts").glob("*.parquet"))  # merged


def test_rerun_resumes_and_refuses_other_settings(synthesized, cache_dir, monkeypatch, tmp_path):
    from dualtune.recipes import cot as recipe

    _, source, _ = synthesized
    before = pd.read_parquet(source / "rationales.parquet")
    monkeypatch.setattr(recipe, "load_teacher", lambda *a: pytest.fail("nothing is left: no teacher is loaded"))
    cfg = compose("cot", [*SYNTH, *TEACHER, "cot.source_name=spatial_test", f"cache_dir={cache_dir}",
                          f"output_dir={tmp_path}"])
    assert recipe.cot(cfg)["n"] == 16
    assert pd.read_parquet(source / "rationales.parquet").equals(before)
    with pytest.raises(RuntimeError, match=r"other settings \(\['tries'\]\)"):
        recipe.cot(compose("cot", [*SYNTH, *TEACHER, "cot.tries=2", "cot.source_name=spatial_test",
                                   f"cache_dir={cache_dir}", f"output_dir={tmp_path}"]))


def test_train_cli_trains_on_the_synthesized_rationales(synthesized, cache_dir, tmp_path):
    from dualtune.data.encoding import encode_train_example
    from dualtune.data.sources import load_domain
    from dualtune.models.base import resolve_model_path
    from dualtune.models.loading import load_processor

    _, source, _ = synthesized
    df = pd.read_parquet(source / "rationales.parquet")
    rationale = dict(zip(df["id"], df["rationale"]))
    accepted = set(df[df["accepted"]]["id"])
    overrides = [*DOMAIN, "mode=cot", "domain.cot_source=spatial_test", "domain.cot_source_missing=drop",
                 f"cache_dir={cache_dir}", *STUDENT]
    run = subprocess.run([sys.executable, "train.py", *overrides, "eval.enabled=false", "algo.max_steps=2",
                          "algo.batch_size=1", "trainer.log_batch_ids=true", "logger=none", f"output_dir={tmp_path}"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    trained = {i for line in (tmp_path / "batch_ids.jsonl").read_text().splitlines() for i in json.loads(line)["ids"]}
    trained = {i.rsplit("/", 1)[0] for i in trained}  # "<id>/<mode>"
    assert trained and trained <= accepted  # cot_source_missing=drop: only samples with a synthesized rationale
    assert f"{len(accepted)}/16 training samples take its rationale" in run.stdout + run.stderr
    # The SFT target of a joined sample is <think>{synthesized rationale}</think><answer>{gold}</answer>.
    cfg = compose("train", overrides)
    rows = load_domain(cfg.domain, cache_dir)["train"]
    assert {r["id"] for r in rows} == accepted
    processor = load_processor(resolve_model_path(cfg.model, cache_dir))
    for row in rows:
        ex = encode_train_example(processor, row, "cot")
        target = processor.tokenizer.decode(ex["labels"][ex["labels"] != -100])
        assert row["cot"] == rationale[row["id"]] and f"<think>{rationale[row['id']]}</think>" in target
