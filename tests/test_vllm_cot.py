"""CoT synthesis with generation=vllm (issue 11 item 3), in the vLLM environment (`make vllm-env`; run by .ci/vllm).

Skipped where vllm is not importable (the main venv). The teacher is the test tiny model with head_dim 32 (vLLM's
CPU attention has no kernel for head_dim 16: teacher.tiny.heads=2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

import pandas as pd  # noqa: E402

from tests.conftest import TEST_MODEL_OVERRIDES, compose  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEACHER = [o.replace("model.", "teacher.", 1) for o in TEST_MODEL_OVERRIDES] + ["teacher.tiny.heads=2"]
DOMAIN = ["domain=spatial", "domain.n_train_per_subtask=2", "domain.n_test_per_subtask=1"]


def test_cot_cli_synthesizes_through_the_vllm_engine(cache_dir, tmp_path):
    """`python cot.py generation=vllm ...`: every sample gets a row, accepted rationales are thoughts of completions
    scored correct, rejected ones used every try, and the provenance names the engine."""
    from dualtune.data.cot_sources import content_digest
    from dualtune.data.sources import load_domain
    from dualtune.prompting.answers import score_output
    from dualtune.recipes.cot import thought_of

    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled")
    run = subprocess.run([sys.executable, "cot.py", "generation=vllm", *DOMAIN, *TEACHER, "cot.tries=2",
                          "cot.max_new_tokens=48", "cot.source_name=spatial_vllm", f"cache_dir={cache_dir}",
                          f"output_dir={tmp_path}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "vLLM engine on" in run.stdout + run.stderr
    source = Path(cache_dir) / "cot_sources" / "spatial_vllm"
    df = pd.read_parquet(source / "rationales.parquet")
    samples = {r["id"]: r for r in load_domain(compose("cot", [f"cache_dir={cache_dir}", *DOMAIN]).domain,
                                               cache_dir)["train"]}
    assert sorted(df["id"]) == sorted(samples) and len(df) == 8
    for row in df.to_dict("records"):
        sample = samples[row["id"]]
        assert row["digest"] == content_digest(sample)
        if row["accepted"]:
            assert score_output(row["completion"], sample, "mra")[1] == 1.0
            assert thought_of(row["completion"]) == row["rationale"]
        else:
            assert row["tries_used"] == 2 and row["rationale"] is None and row["reject_reason"]
    summary = json.loads((source / "summary.json").read_text())
    assert (summary["n"], summary["accepted"]) == (8, int(df["accepted"].sum()))
    prov = json.loads((source / "provenance.json").read_text())
    assert prov["generation_backend"] == "vllm" and prov["decoding"]["max_new_tokens"] == 48
