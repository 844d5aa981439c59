"""Training and evaluation data configured separately: `train.py domain=<train set> eval.domains=[...]`
evaluates base and tuned models on each benchmark's test split; the report has one block per benchmark."""

from __future__ import annotations

import json

import pytest

from tests.conftest import compose
from tests.test_adapter_mathvista import _snapshot


def test_train_on_lab_evaluate_on_a_published_benchmark(tmp_path, hf_datasets_cache, random_tiny_ckpt):
    from dualtune.recipes.train import train

    snapshot = _snapshot(tmp_path)
    cfg = compose("train", [f"model.path={random_tiny_ckpt}", "domain=math", "domain.n_train_per_subtask=2",
                            "domain.n_test_per_subtask=1", "eval.domains=[mathvista]",
                            f"+eval.paths.mathvista={snapshot}", f"cache_dir={tmp_path / 'cache'}",
                            f"output_dir={tmp_path / 'out'}", "logger=none", "algo.max_steps=1", "algo.batch_size=4",
                            "eval.n_boot=10", "mode.max_new_tokens.direct=2", "mode.max_new_tokens.cot=3"])
    report = train(cfg)
    saved = json.loads((tmp_path / "out/thinking_boundary.json").read_text())
    assert {r["domain"] for r in saved["subtasks"]} == {"mathvista"}
    assert {r["subtask"] for r in report["subtasks"]} == {"Arithmetic", "Scientific", "Logical", "Statistical"}
    lines = (tmp_path / "out/eval_tuned/predictions.jsonl").read_text().splitlines()
    assert sum('"status": "evaluated"' in line for line in lines) == 8  # 4 MathVista items x 2 modes, no lab items


def test_unknown_eval_domain_is_named(tmp_path):
    from dualtune.data.benchmarks import load_eval_rows

    cfg = compose("train", ["eval.domains=[mathvistaa]", f"cache_dir={tmp_path}"])
    with pytest.raises(ValueError, match=r"eval.domains: unknown domain 'mathvistaa'; available: \[.*'mathvista'"):
        load_eval_rows(cfg, {"test": []}, {})
