"""The thinking-pattern study (issue 12 item 3, Dual Tuning Figs. 2-3): Gain_token definitions (hand-checked),
a teacher-free condensed CoT source over several seeds, the study's tables from hand-built runs, and the fig2_3
sweep file run for real (own rationales vs the condensed source) through `python -m dualtune.reproduce` and
`python -m dualtune.studies.thinking_patterns`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dualtune.gains import GAIN_TOKEN, gain_token, per_100_tokens, per_log_tokens, per_token, register_gain_token
from tests.conftest import CONF_DIR, TEST_MODEL_OVERRIDES, compose

ROOT = Path(CONF_DIR).parent
TEACHER = [o.replace("model.", "teacher.", 1) for o in TEST_MODEL_OVERRIDES]  # the test tiny model: its tokenizer
DOMAIN = ["domain=math", "domain.n_train_per_subtask=4", "domain.n_test_per_subtask=2"]


# ----------------------------------------------------------------------------- Gain_token (pure)
def test_gain_token_per_100_tokens_is_hand_checked():
    # Gain_CoT 3.65 % over a mean CoT of 187 tokens: 3.65 * 100 / 187 = 1.95187... % per 100 tokens.
    assert per_100_tokens(3.65, 187.0) == pytest.approx(1.9518716578, abs=1e-9)
    assert gain_token(-6.0, 300.0) == pytest.approx(-2.0)  # the default definition; a loss stays a loss
    assert per_token(3.65, 187.0) == pytest.approx(0.019518716578)
    assert per_log_tokens(8.0, 255.0) == pytest.approx(1.0)  # log2(256) = 8
    assert gain_token(8.0, 255.0, "per_log_tokens") == pytest.approx(1.0)


def test_gain_token_reproduces_the_digests_ratio_sanity():
    """Digest §2.2: Gain_CoT / Gain_token = 1.87, 4.33, 2.12, 7.17 for the original data = mean length / 100 under
    the hypothesis; with those lengths the paper's printed Gain_token (Fig. 3, ±0.01 reading) comes back."""
    paper = {"Comm.": (3.65, 1.95), "Arithmetic": (2.08, 0.48), "Statistical": (3.29, 1.56),
             "Algebraic": (8.82, 1.23)}
    ratios = {"Comm.": 1.87, "Arithmetic": 4.33, "Statistical": 2.12, "Algebraic": 7.17}
    for task, (cot, token) in paper.items():
        length = 100 * ratios[task]
        value = gain_token(cot, length)
        assert cot / value == pytest.approx(length / 100)  # the identity, exactly
        assert value == pytest.approx(token, abs=0.015)  # the printed bar, within reading + ratio rounding


def test_gain_token_rejects_bad_input_and_double_registration():
    with pytest.raises(ValueError, match="unknown Gain_token definition 'nope'"):
        gain_token(1.0, 10.0, "nope")
    for tokens in (0.0, -3.0):
        with pytest.raises(ValueError, match="> 0 tokens"):
            gain_token(1.0, tokens)
    with pytest.raises(ValueError, match="finite"):
        gain_token(math.nan, 10.0)
    with pytest.raises(ValueError, match="already registered"):
        register_gain_token("per_100_tokens")(lambda g, n: g)
    assert {"per_100_tokens", "per_token", "per_log_tokens"} <= set(GAIN_TOKEN)


# ----------------------------------------------------------------------------- the study from hand-built runs
def _run(path, source, seed, regions, gains, tokens, base_tokens=20.0):
    """A collected run (no prediction files): boundary rows for subtasks a, b (+ ALL) and CoT lengths."""
    from dualtune.reproduce.collect import Run, identity_of

    config = {"seed": seed, "model": {"name": "tiny"}, "mode": {"name": "dual"},
              "domain": {"name": "math", "cot_source": source}}
    rows = [{"domain": "math", "subtask": s, "n": 10, "Gain_DA": da, "Gain_CoT": cot, "GAP_DT": cot - da,
             "region": reg, "uncertain": False} for s, reg, (da, cot) in zip("ab", regions, gains)]
    agg = [{"domain": "math", "subtask": "ALL", "n": 20, "Gain_DA": 0.0, "Gain_CoT": 1.0, "GAP_DT": 1.0,
            "region": "cot", "uncertain": False}]
    lengths = [{"domain": "math", "subtask": s, "n": n, "mean_tokens": t} for s, n, t in zip("ab", (10, 30), tokens)]
    run = Run(path=Path(path), config=config, overrides=[], seed=seed, boundary={"subtasks": rows, "aggregates": agg},
              eval_tuned={"mean_cot_length": lengths},
              eval_base={"mean_cot_length": [dict(x, mean_tokens=base_tokens) for x in lengths]})
    run.identity = identity_of(config)
    run.label = f"domain.cot_source={source}"
    return run


def test_study_tables_from_hand_built_runs(tmp_path):
    from dualtune.reproduce.collect import group_runs
    from dualtune.studies.thinking_patterns import sweep_studies, write_study

    runs = [_run("own0", None, 0, ("cot", "direct"), ((1.0, 10.0), (5.0, -1.0)), (100.0, 40.0)),
            _run("own1", None, 1, ("cot", "direct"), ((3.0, 20.0), (7.0, 1.0)), (200.0, 60.0)),
            _run("c0", "/x/condensed", 0, ("direct", "direct"), ((4.0, 2.0), (6.0, 0.0)), (10.0, 20.0)),
            _run("c1", "/x/condensed", 1, ("direct", "direct"), ((6.0, 4.0), (8.0, 2.0)), (30.0, 20.0))]
    studies = sweep_studies(group_runs(runs))
    assert [(s.name, [name for name, _ in s.sources]) for s in studies] == [("domain=math", ["own", "condensed"])]
    files, text = write_study(studies, tmp_path, paper=True)
    for name in ("fig2_region_shift.md", "fig2_region_shift.csv", "fig3_gain_token.md", "fig3_gain_token.csv",
                 "fig2_region_shift_domain=math.png", "fig3_gain_token_domain=math.png"):
        assert (tmp_path / name).stat().st_size > 0 and tmp_path / name in files, name
    shift = pd.read_csv(tmp_path / "fig2_region_shift.csv").set_index("subtask")
    assert list(shift.index) == ["a", "b"]  # ALL rows are not points of Fig. 2
    assert (shift.loc["a", "own region"], shift.loc["a", "condensed region"], shift.loc["a", "shifted"]) == (
        "cot", "direct", True)
    assert not shift.loc["b", "shifted"] and shift.loc["a", "own Gain_CoT"] == pytest.approx(15.0)
    assert "1/2 subtasks change region" in text and "| cot → direct |" in text
    tokens = pd.read_csv(tmp_path / "fig3_gain_token.csv").set_index(["source", "subtask"])
    own_a = tokens.loc[("own", "a")]
    assert (own_a["Gain_CoT"], own_a["cot_tokens"], own_a["n_seeds"]) == (15.0, 150.0, 2)
    assert own_a["Gain_CoT_std"] == pytest.approx(math.sqrt(50.0)) and own_a["base_cot_tokens"] == 20.0
    assert own_a["Gain_token"] == pytest.approx(15.0 * 100 / 150.0)  # the seed means, per 100 tokens
    assert own_a["regions_per_seed"] == "cot;cot" and own_a["region"] == "cot"  # no predictions: of the means
    # ALL: the item-weighted length over the subtasks (a: 10 items, b: 30): (10*150 + 30*50) / 40 = 75.
    assert tokens.loc[("own", "ALL"), "cot_tokens"] == pytest.approx(75.0)
    assert tokens.loc[("condensed", "a"), "Gain_token"] == pytest.approx(3.0 * 100 / 20.0)
    assert "Paper Fig. 3" in text and "| Algebraic | 8.82 | 1.23 | 6.61 | 1.37 | 717 | 482 |" in text
    write_study(studies, tmp_path / "log", "per_log_tokens")  # another definition, chosen by name
    logs = pd.read_csv(tmp_path / "log" / "fig3_gain_token.csv").set_index(["source", "subtask"])
    assert logs.loc[("own", "a"), "Gain_token"] == pytest.approx(15.0 / math.log2(151.0))
    assert write_study([], tmp_path / "none") == ([], "")


# ----------------------------------------------------------------------------- a teacher-free source
def _build_source(cache_dir, out, seed, name="math_condensed"):
    from dualtune.recipes.cot import cot

    return cot(compose("cot", [*DOMAIN, *TEACHER, f"cache_dir={cache_dir}", f"output_dir={out}", f"seed={seed}",
                               "cot.from_dataset=true", "cot.variant=condensed", f"cot.source_name={name}"]))


@pytest.fixture(scope="module")
def condensed_source(cache_dir, tiny_model_path, tmp_path_factory):
    """The condensed source of the math lab domain for seeds 0 and 1 (one store): its directory."""
    for seed in (0, 1):
        summary = _build_source(cache_dir, tmp_path_factory.mktemp(f"cot{seed}"), seed)
        assert (summary["n"], summary["accepted"]) == (16, 16)  # every lab sample has a rationale
    return Path(cache_dir) / "cot_sources" / "math_condensed"


def test_teacher_free_condensed_source_covers_every_seed(condensed_source, cache_dir):
    from dualtune.data.cot_sources import condense
    from dualtune.data.sources import load_domain

    df = pd.read_parquet(condensed_source / "rationales.parquet")
    assert len(df) == 32 and (df["origin"] == "dataset").all()  # 16 ids x 2 seeds' contents
    prov = json.loads((condensed_source / "provenance.json").read_text())
    assert prov["from_dataset"] and prov["variant"] == "condensed" and "seed" not in prov and "decoding" not in prov
    for seed in (0, 1):
        plain = load_domain(compose("train", [*DOMAIN, f"cache_dir={cache_dir}"]).domain, cache_dir, seed=seed)
        joined = load_domain(compose("train", [*DOMAIN, f"cache_dir={cache_dir}", "domain.cot_source=math_condensed",
                                               "domain.cot_source_missing=drop"]).domain, cache_dir, seed=seed)
        assert [r["id"] for r in joined["train"]] == [r["id"] for r in plain["train"]]  # nothing dropped
        for own, new in zip(plain["train"], joined["train"]):
            assert new["cot"] == condense(own["cot"]) and len(new["cot"]) <= len(own["cot"])
            assert new["meta"] == own["meta"]  # the data's own rationale: a planted cot_answer stays
        assert sum(n["cot"] != o["cot"] for o, n in zip(plain["train"], joined["train"])) >= 8
    resumed = _build_source(cache_dir, condensed_source.parent / "rerun", 0)
    assert resumed["n"] == 16 and len(pd.read_parquet(condensed_source / "rationales.parquet")) == 32


# ----------------------------------------------------------------------------- the sweep, for real
@pytest.fixture(scope="module")
def sweep(condensed_source, cache_dir, tmp_path_factory):
    """The fig2_3 sweep file, math domain, seed 0: own rationales vs the condensed source (2 real runs)."""
    out = tmp_path_factory.mktemp("fig2_3")
    cmd = [sys.executable, "train.py", "--config-dir", "sweeps/dual_tuning", "--config-name", "fig2_3",
           "domain=math", "seed=0", "second_cot_source=math_condensed", f"cache_dir={cache_dir}",
           *TEST_MODEL_OVERRIDES, "experiment=smoke", "eval.n_boot=10", "algo.max_steps=2",
           f"hydra.sweep.dir={out}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_reproduce_writes_figs_2_3_from_a_real_sweep(sweep, capsys):
    from dualtune.reproduce.__main__ import main

    runs = {p.name: p for p in sweep.iterdir() if (p / "thinking_boundary.json").is_file()}
    assert sorted(runs) == ["tiny_math_cot-None_dual_seed0", "tiny_math_cot-math_condensed_dual_seed0"]
    assert main([str(sweep), "--paper-numbers"]) == 0
    out = sweep / "reproduce"
    assert "Fig. 2: the region shift" in capsys.readouterr().out
    for name in ("fig2_region_shift.csv", "fig3_gain_token.csv", "fig2_region_shift_domain=math.png",
                 "fig3_gain_token_domain=math.png"):
        assert (out / name).stat().st_size > 0, name
    reports = {k: json.loads((p / "thinking_boundary.json").read_text()) for k, p in runs.items()}
    own, new = (reports[f"tiny_math_cot-{s}_dual_seed0"] for s in ("None", "math_condensed"))
    shift = pd.read_csv(out / "fig2_region_shift.csv").set_index("subtask")
    for row in own["subtasks"]:
        other = next(r for r in new["subtasks"] if r["subtask"] == row["subtask"])
        got = shift.loc[row["subtask"]]
        assert (got["own region"], got["math_condensed region"]) == (row["region"], other["region"])
        assert got["shifted"] == (row["region"] != other["region"])
        assert got["own Gain_DA"] == pytest.approx(row["Gain_DA"])
    tokens = pd.read_csv(out / "fig3_gain_token.csv").set_index(["source", "subtask"])
    summary = json.loads((runs["tiny_math_cot-math_condensed_dual_seed0"] / "eval_tuned/eval_summary.json").read_text())
    records = [json.loads(line) for line in
               (runs["tiny_math_cot-math_condensed_dual_seed0"] / "eval_tuned/predictions.jsonl").read_text().splitlines()]
    for entry in summary["mean_cot_length"]:  # the length is the mean of the recorded per-item token counts
        items = [r["n_tokens"] for r in records if r.get("mode") == "cot" and r["subtask"] == entry["subtask"]]
        row = tokens.loc[("math_condensed", entry["subtask"])]
        assert row["cot_tokens"] == pytest.approx(entry["mean_tokens"]) == pytest.approx(sum(items) / len(items))
        assert row["Gain_token"] == pytest.approx(row["Gain_CoT"] * 100 / row["cot_tokens"])


def test_study_cli_on_two_run_dirs(sweep, tmp_path):
    from dualtune.studies.thinking_patterns import main

    own, new = (sweep / f"tiny_math_cot-{s}_dual_seed0" for s in ("None", "math_condensed"))
    assert main([str(own), str(new), "--labels", "Data1", "Data2", "--out", str(tmp_path)]) == 0
    shift = pd.read_csv(tmp_path / "fig2_region_shift.csv")
    assert {"Data1 region", "Data2 region"} <= set(shift.columns) and len(shift) == 4  # 4 math subtasks
    assert set(pd.read_csv(tmp_path / "fig3_gain_token.csv")["source"]) == {"Data1", "Data2"}
    with pytest.raises(SystemExit):
        main([str(own)])
