"""Per-sample scoring rules: how a benchmark's official evaluator compares a prediction with its gold.

A dataset adapter (``dualtune.data.adapters``) writes them into the sample's ``meta`` JSON under
``"scoring"``; `dualtune.prompting.answers.score_output` applies them. Without rules a sample is scored
by its ``answer_type`` alone. Keys (all optional):

* ``metric``: ``"exact"`` | ``"mra"`` | ``"mra_vsibench"`` — numbers: exact value, or VSI-Bench mean relative
  accuracy (the paper's strict formula, or the official evaluator's inclusive float boundary)
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

import re

from dualtune.schema import OPTION_LETTERS, sample_meta

RULE_KEYS = ("metric", "precision", "accepted", "multi", "judge")


def scoring_rules(sample: dict) -> dict:
    """The ``meta["scoring"]`` rules of ``sample`` ({} when none); unknown keys are an error naming them."""
    rules = dict(sample_meta(sample).get("scoring") or {})
    unknown = sorted(set(rules) - set(RULE_KEYS))
    if unknown:
        raise ValueError(f"sample {sample.get('id')!r}: unknown scoring rules {unknown}; known: {list(RULE_KEYS)}")
    if rules.get("metric") not in (None, "exact", "mra", "mra_vsibench"):
        raise ValueError(f"sample {sample.get('id')!r}: scoring.metric must be exact, mra or mra_vsibench, "
                         f"got {rules['metric']!r}")
    return rules


def round_to_precision(value, precision: int | None):
    """``value`` (a Fraction / number) rounded to ``precision`` decimals as MathVista's official evaluator
    does (Python's ``round(float(x), precision)``: binary floats, ties to even); None precision: as is."""
    if precision is None or value is None:
        return value
    from fractions import Fraction

    return Fraction(repr(round(float(value), int(precision))))


# Between the letters of a set: commas, "and", "&", "/", "+", whitespace, and the words option(s)/choice(s).
_SET_SEPARATORS = re.compile(r"\s*(?:[,;&/+]|\b(?:and|options?|choices?)\b|\s)\s*", re.IGNORECASE)
_AFTER_ANSWER_PHRASE = re.compile(r"\b(?:answers?|options?|choices?)\b\s*(?:(?:is|are)\b)?\s*[:\-]?\s*([^\n]*)",
                                  re.IGNORECASE)


def _set_of_labels(span: str, options) -> set[str] | None:
    """The letters named by ``span`` when it is nothing but option labels (a letter, or an option whose
    text is the label, e.g. "3"), else None: "A, C" / "C and A" / "(A) & (C)"; "A or C" is None (hedge)."""
    labels = [str(o).strip().lower() for o in options or []]
    valid = OPTION_LETTERS[: len(labels) or len(OPTION_LETTERS)]
    letters = set()
    for token in _SET_SEPARATORS.split(span.strip().rstrip(".")):
        token = token.strip("()[]{}.:*'\"")
        if not token:
            continue
        if len(token) == 1 and token.upper() in valid:
            letters.add(token.upper())
        elif token.lower() in labels and labels.count(token.lower()) == 1:
            letters.add(OPTION_LETTERS[labels.index(token.lower())])
        else:
            return None
    return letters or None


def letter_set(text: str | None, options=None) -> str | None:
    """The set of option letters ``text`` names, as sorted "A, C", for the ``multi`` rule; None when it
    names none or also says something else. Tried in order: the whole text, its last non-empty line, the
    text after its last "answer(s) (is/are)" / "option(s)" phrase. Order and repeats do not matter:
    "C and A" == "A, C"; "A" alone is the set {A}."""
    if not text or not text.strip():
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    spans = [text, lines[-1], *_AFTER_ANSWER_PHRASE.findall(text)[-1:]]
    for span in spans:
        letters = _set_of_labels(span, options)
        if letters:
            return ", ".join(sorted(letters))
    return None
