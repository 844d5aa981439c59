"""Auto-think evaluation (mode ``auto``): the neutral prompt, the think rate, and evaluate.py end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import compose

SAMPLE = {"id": "q1", "domain": "spatial", "subtask": "count", "question": "How many red shapes?",
          "options": ["2", "3"], "answer": "A", "answer_type": "choice", "cot": "two red"}


def test_auto_prompt_is_neutral():
    from dualtune.prompting.templates import (
        AUTO_TEMPLATE, DEFAULT_TEMPLATES, budget_mode, eval_templates, prompt_text, target_text)

    auto = prompt_text(SAMPLE, "auto")
    assert auto == "How many red shapes?\nOptions:\nA. 2\nB. 3\nAnswer with the option letter."
    lowered = auto.lower()
    for forced in ("step by step", "think", "directly", "do not explain", "<answer>", "reason"):
        assert forced not in lowered, forced
    assert auto not in (prompt_text(SAMPLE, "direct"), prompt_text(SAMPLE, "cot"))
    # A config's templates (direct / cot only) get the default auto prompt; a configured one wins.
    filled = eval_templates(dict(DEFAULT_TEMPLATES), ["direct", "auto"])
    assert filled["auto"] == AUTO_TEMPLATE and filled["direct"] == DEFAULT_TEMPLATES["direct"]
    assert "auto" not in eval_templates(dict(DEFAULT_TEMPLATES), ["direct", "cot"])
    assert prompt_text(SAMPLE, "auto", {**DEFAULT_TEMPLATES, "auto": "{question} ({answer_hint})"}) == \
        "How many red shapes? (the option letter)"
    assert prompt_text(SAMPLE, "auto", dict(DEFAULT_TEMPLATES)) == auto
    # The CoT budget; no training target.
    assert budget_mode("auto") == "cot" and budget_mode("direct") == "direct"
    with pytest.raises(ValueError, match="no training target"):
        target_text(SAMPLE, "auto")
    with pytest.raises(ValueError, match="unknown answer mode"):
        prompt_text(SAMPLE, "sometimes")


@pytest.mark.parametrize("output, expected", [
    ("<think>2 red, 1 blue</think><answer>A</answer>", True),
    ("<think>counting the red ones", True),  # cut off by the budget: it was thinking
    ("A", False),
    ("<answer>A</answer>", False),
    ("<think></think><answer>A</answer>", False),  # chose not to think
    ("<think> \n </think>A", False),
    ("<think></think>x<think>then again</think>B", True),
    ("three green squares</think><answer>3</answer>", True),  # reasoning whose opener was not generated
    ("</think><answer>3</answer>", False),
    ("", False),
])
def test_thinks(output, expected):
    from dualtune.prompting.answers import thinks

    assert thinks(output) is expected


def test_think_rates_per_subtask_and_domain():
    from dualtune.evaluation.think_rate import think_rates

    def rec(subtask, output, mode="auto", skipped=False, domain="spatial"):
        return {"domain": domain, "subtask": subtask, "mode": mode, "output": output, "skipped": skipped}

    records = [rec("a", "<think>x</think>1"), rec("a", "1"), rec("a", "<think>y"), rec("a", "1"),
               rec("b", "2"), rec("b", "", skipped=True),  # a skipped prompt is not a completion
               rec("a", "<think>z</think>1", mode="cot"),  # forced modes are not counted
               rec("c", "<think>w</think>3", domain="math")]
    rows = {(r["domain"], r["subtask"]): r for r in think_rates(records)}
    assert rows[("spatial", "a")] == {"domain": "spatial", "subtask": "a", "n": 4, "n_think": 2, "think_rate": 50.0}
    assert rows[("spatial", "b")]["n"] == 1 and rows[("spatial", "b")]["think_rate"] == 0.0
    assert rows[("spatial", "ALL")]["n"] == 5 and rows[("spatial", "ALL")]["think_rate"] == pytest.approx(40.0)
    assert rows[("math", "c")]["think_rate"] == 100.0 and len(rows) == 5
    assert think_rates(records, mode="direct") == []


def test_auto_records_stay_out_of_the_boundary_and_configs_accept_auto():
    from dualtune.config_checks import ConfigError, check_config
    from dualtune.evaluation.runner import EvalResult

    base = {"domain": "d", "subtask": "s", "id": "i", "score": 1.0, "output": "1", "skipped": False, "n_tokens": 1}
    result = EvalResult.from_records([dict(base, mode=m, score=float(m == "cot")) for m in ("direct", "cot", "auto")])
    assert result.modes == ["direct", "cot", "auto"]
    assert result.to_items() == [{"domain": "d", "subtask": "s", "id": "i", "S": 0.0, "L": 1.0}]
    assert [r["think_rate"] for r in result.summary()["think_rate"]] == [0.0, 0.0]
    check_config(compose("evaluate", ["eval.modes=[auto]"]), "evaluate")
    check_config(compose("train", ["eval.modes=[direct,cot,auto]", "+mode.templates.auto='{question}'"]), "train")
    with pytest.raises(ConfigError, match="mode.train_modes"):
        check_config(compose("train", ["mode.train_modes=[auto]"]), "train")


def test_evaluate_py_auto_mode_end_to_end(tmp_path, random_tiny_ckpt):
    from dualtune.prompting.answers import thinks
    from dualtune.recipes.evaluate import evaluate

    out = tmp_path / "out"
    result = evaluate(compose("evaluate", [
        "domain=spatial", "domain.n_test_per_subtask=2", f"checkpoint={random_tiny_ckpt}", "limit=1",
        "eval.modes=[direct,auto]", "mode.max_new_tokens={direct: 2, cot: 5}", f"cache_dir={tmp_path / 'cache'}",
        f"output_dir={out}"]))
    preds = pd.read_json(out / "predictions.jsonl", lines=True)
    assert preds.groupby("mode").size().to_dict() == {"auto": 4, "direct": 4}
    # auto decodes with the CoT budget (5), not the direct one (2); the random model never stops early.
    assert preds[preds["mode"] == "auto"]["n_tokens"].max() == 5
    assert preds[preds["mode"] == "direct"]["n_tokens"].max() == 2
    summary = json.loads((out / "eval_summary.json").read_text())
    auto = preds[preds["mode"] == "auto"]
    rates = {(r["domain"], r["subtask"]): r for r in summary["think_rate"]}
    for subtask, group in auto.groupby("subtask"):
        row = rates[("spatial", subtask)]
        assert row["n"] == len(group)
        assert row["think_rate"] == pytest.approx(100.0 * sum(map(thinks, group["output"])) / len(group))
    assert rates[("spatial", "ALL")]["n"] == 4
    assert {r["mode"] for r in summary["per_subtask"]} == {"direct", "auto"}
    assert "auto think %" in (out / "eval_table.md").read_text()
    assert result.summary()["think_rate"] == summary["think_rate"]
