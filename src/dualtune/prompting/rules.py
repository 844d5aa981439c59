"""Per-sample scoring rules: how a benchmark's official evaluator compares a prediction with its gold.

A dataset adapter (``dualtune.data.adapters``) writes them into the sample's ``meta`` JSON under
``"scoring"``; `dualtune.prompting.answers.score_output` applies them. Without rules a sample is scored
by its ``answer_type`` alone. Keys (all optional):

* ``metric``: ``"exact"`` | ``"mra"`` — numbers: exact value, or VSI-Bench mean relative accuracy
  (overrides the domain's ``numeric_metric``);
* ``precision``: int — numbers: the prediction is rounded to this many decimals before comparing,
  with Python's ``round`` as in MathVista's official evaluator (its ``precision`` field);
* ``accepted``: list of str — further golds that also score 1 (MMMU open questions list several);
* ``multi``: bool — choice: the gold is a set of letters ("A, C") and the prediction must name exactly
  that set (LogicVista);
* ``judge``: ``"rule"`` — where the official evaluator uses an LLM judge, dualtune scores with the
  rule-based extractor; recorded so outputs say so.
"""

from __future__ import annotations

import json

RULE_KEYS = ("metric", "precision", "accepted", "multi", "judge")


def scoring_rules(sample: dict) -> dict:
    """The ``meta["scoring"]`` rules of ``sample`` ({} when none); unknown keys are an error naming them."""
    meta = sample.get("meta") or {}
    if isinstance(meta, str):
        meta = json.loads(meta) if meta.strip() else {}
    rules = dict(meta.get("scoring") or {})
    unknown = sorted(set(rules) - set(RULE_KEYS))
    if unknown:
        raise ValueError(f"sample {sample.get('id')!r}: unknown scoring rules {unknown}; known: {list(RULE_KEYS)}")
    if rules.get("metric") not in (None, "exact", "mra"):
        raise ValueError(f"sample {sample.get('id')!r}: scoring.metric must be exact or mra, got {rules['metric']!r}")
    return rules


def round_to_precision(value, precision: int | None):
    """``value`` (a Fraction / number) rounded to ``precision`` decimals as MathVista's official evaluator
    does (Python's ``round(float(x), precision)``: binary floats, ties to even); None precision: as is."""
    if precision is None or value is None:
        return value
    from fractions import Fraction

    return Fraction(repr(round(float(value), int(precision))))
