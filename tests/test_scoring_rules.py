"""Per-sample scoring rules from a dataset adapter (meta.scoring): precision, accepted golds, metric."""

from __future__ import annotations

import json

import pytest

from dualtune.prompting.answers import score_output


def _sample(answer, answer_type="number", **rules):
    return {"id": "s", "answer": answer, "answer_type": answer_type, "options": [], "question": "Q?",
            "meta": json.dumps({"scoring": rules} if rules else {})}


def test_precision_rounds_the_prediction_before_comparing():
    # MathVista: round(float(pred), precision) as the official evaluator: 1.46 -> 1.5 == gold 1.5;
    # 1.45 -> 1.4 (a binary float just below the tie), so no credit; without the rule 1.46 is wrong.
    assert score_output("<answer>1.46</answer>", _sample("1.5", precision=1)) == ("1.5", 1.0)
    assert score_output("<answer>1.45</answer>", _sample("1.5", precision=1))[1] == 0.0
    assert score_output("<answer>1.46</answer>", _sample("1.5"))[1] == 0.0
    assert score_output("<answer>3.14159</answer>", _sample("3.14", precision=2))[1] == 1.0


def test_accepted_golds_each_score():
    sample = _sample("5", "text", accepted=["five", "5 meters"])
    assert score_output("five", sample)[1] == 1.0 and score_output("5 meters", sample)[1] == 1.0
    assert score_output("six", sample)[1] == 0.0


def test_metric_rule_overrides_the_domain_default():
    # VSI-Bench numeric questions: MRA. 9 vs 10 is within 1-theta for theta <= 0.85 -> 8 of 10 thresholds.
    assert score_output("9", _sample("10", metric="mra"), numeric_metric="exact")[1] == pytest.approx(0.8)
    assert score_output("9", _sample("10"), numeric_metric="exact")[1] == 0.0


def test_unknown_rule_is_an_error_naming_it():
    with pytest.raises(ValueError, match="unknown scoring rules \\['tolerance'\\]"):
        score_output("1", _sample("1", tolerance=3))
