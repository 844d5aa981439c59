"""Per-item 0..1 score of a metric value from an evaluation kit's per-sample file (`dualtune.evaluation.kits`).

:func:`value_score`, by the value's type: bool -> 1/0; a number in [0, 1] as is; a string ``true``/``false``
or a number in [0, 1]; a list -> the mean of its elements' scores (several samples per item: mean accuracy,
not pass@k); a dict -> its first field among :data:`CORRECTNESS_FIELDS` (e.g. MathVista's ``true_false``,
a judge's ``score``), else, when it has ``parsed_pred`` and ``answer`` (lmms-eval's ``mmmu_acc``),
:func:`mmmu_score`. Anything else, or a number outside [0, 1], raises ValueError.
"""
from __future__ import annotations

import math

from dualtune.prompting.numbers import number_value
from dualtune.prompting.rules import round_to_precision

CORRECTNESS_FIELDS = ("true_false", "score", "correct", "hit", "acc")


def _open_match(candidate, gold) -> bool:
    """MMMU open-question match of one parsed candidate against one gold answer (see :func:`mmmu_score`)."""
    def number(v):  # commas removed, rounded to 2 decimals as Python's round (MMMU's rule)
        return None if isinstance(v, bool) else round_to_precision(number_value(str(v).strip()), 2)
    gold_num = number(gold)
    if gold_num is not None:
        return number(candidate) == gold_num
    if not isinstance(candidate, str):
        return False
    gold_s, cand = str(gold).strip().lower(), candidate.lower()
    if len(gold_s) == 1:
        cand = f" {cand.strip()} " if len(cand.strip()) == 1 else cand
        return f" {gold_s}" in cand or f"{gold_s} " in cand
    return gold_s in cand


def mmmu_score(entry: dict) -> float:
    """Score of an MMMU-style dict ``{question_type, answer, parsed_pred}`` (lmms-eval's ``mmmu_acc``).

    Multiple choice: a response is correct when ``parsed_pred`` equals the answer exactly (or one of the
    answers when ``answer`` is a list). Open: ``parsed_pred`` is the list of normalised candidates of one
    response (or a list of such lists, one per response); a response is correct when a candidate matches:
    a numeric answer (commas removed) equals a numeric candidate after rounding both to 2 decimals; a text
    answer, lower-cased, is a substring of a text candidate, a one-character answer only with a space
    before or after it (a one-character candidate counts as space-padded). Several responses: the mean.
    This follows the MMMU rule lmms-eval applies; it does not re-parse responses.
    """
    preds, gold = entry["parsed_pred"], entry["answer"]
    golds = gold if isinstance(gold, list) else [gold]
    if entry.get("question_type") == "multiple-choice":
        responses = preds if isinstance(preds, list) else [preds]
        hits = [any(p == g for g in golds) for p in responses]
    else:
        nested = isinstance(preds, list) and preds and all(isinstance(p, list) for p in preds)
        responses = preds if nested else [preds]
        hits = [any(_open_match(c, g) for c in (r if isinstance(r, list) else [r]) for g in golds)
                for r in responses]
    if not hits:
        raise ValueError("empty parsed_pred")
    return sum(hits) / len(hits)


def value_score(value) -> float:
    """Per-item 0..1 score of a metric value (module docstring); ValueError when it has none."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        score = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return float(text == "true")
        try:
            score = float(text)
        except ValueError:
            raise ValueError(f"text {value!r} is not a score") from None
    elif isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("an empty list has no score")
        return sum(value_score(v) for v in value) / len(value)
    elif isinstance(value, dict):
        for key in CORRECTNESS_FIELDS:
            if key in value:
                return value_score(value[key])
        if "parsed_pred" in value and "answer" in value:
            return mmmu_score(value)
        raise ValueError(f"a dict without a correctness field ({', '.join(CORRECTNESS_FIELDS)}) or "
                         f"parsed_pred + answer; its keys: {sorted(value)}")
    else:
        raise ValueError(f"a {type(value).__name__} is not a score")
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError(f"{score} is outside [0, 1] (a per-item correctness metric is needed)")
    return score
