"""Shared answer extraction and scoring for evaluation, RAP scoring and GRPO rewards.

Everything here is pure and deterministic. Extraction turns a raw model output into a normalized
prediction (an option letter, a canonical number string, SQuAD-normalized text, or a math string);
scoring compares a prediction with the gold answer and returns a value in [0, 1].
"""

from __future__ import annotations

import math
import re
import string
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from dualtune.schema import OPTION_LETTERS

MRA_THRESHOLDS = tuple(round(0.50 + 0.05 * i, 2) for i in range(10))  # 0.50, 0.55, ..., 0.95
_MAX_MATH_CHARS = 400  # math-verify runs without a timeout, so never hand it runaway strings

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_ANSWER_PREFIX = re.compile(
    r"^\s*(?:the\s+)?(?:final\s+)?answer\b\s*(?:is\b)?\s*[:\-]?\s*", re.IGNORECASE
)
_BARE_LETTER = re.compile(r"^\(?([A-Za-z])\)?[.:)]?$")
_EXPLICIT_LETTER = re.compile(
    r"\b(?i:answer|option|choice)\s*(?:(?i:is)\s*)?[:\-]?\s*(?:(?i:option)\s*)?\(?([A-Z])\b\)?"
)
_LEADING_LETTER = re.compile(r"^\s*\(?([A-Z])(?:\)|[.:]\s|\s+is\b)")
# A sign counts only when it does not follow a word, so "2-3 m" reads as 2 and 3, not 2 and -3.
_SIGN = r"(?:(?<![\w).])[-+])?"
_NUMBER = rf"{_SIGN}(?:(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_TOKEN = re.compile(rf"({_NUMBER})(?:\s*/\s*({_NUMBER}))?")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{\s*([-+]?[\d.]+)\s*\}\{\s*([-+]?[\d.]+)\s*\}")
_WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}


def strip_thinking(text: str) -> str:
    """Remove `<think>...</think>` blocks, a prefilled leading thought ending in a lone `</think>`,
    and an unclosed `<think>` (cut up to a following `<answer>` or to the end)."""
    if not text:
        return ""
    text = _THINK_BLOCK.sub("", text)
    # Prefilled prompt: the output starts inside the thought, so only `</think>` appears.
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    # Truncated thought: `<think>` opened and never closed.
    if "<think>" in text:
        head, tail = text.split("<think>", 1)
        answer_at = tail.find("<answer>")
        text = head + (tail[answer_at:] if answer_at >= 0 else "")
    return text.strip()


def _last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` in ``text`` (nested braces handled), or None."""
    start = text.rfind("\\boxed{")
    while start >= 0:
        depth = 0
        for pos in range(start + len("\\boxed"), len(text)):
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            if depth == 0:
                return text[start + len("\\boxed{"): pos].strip()
        start = text.rfind("\\boxed{", 0, start)  # unbalanced: try an earlier one
    return None


def _answer_candidate(output: str) -> str:
    """The span of ``output`` that holds the answer, following the documented priority order."""
    # 1. Last complete, non-empty <answer> block (an echoed prompt may contain an empty one).
    blocks = [b.strip() for b in _ANSWER_BLOCK.findall(output) if b.strip()]
    tail = output.rsplit("<answer>", 1)[1] if "<answer>" in output else ""
    tail = tail.replace("</answer>", "").strip()
    if blocks:
        candidate = blocks[-1]
    # 2. <answer> opened but never closed (truncated generation).
    elif tail:
        candidate = tail
    # 3./4. The text after the thought (its last \boxed{} is unwrapped below); only when nothing
    # follows the thought, a \boxed{} inside it.
    else:
        candidate = strip_thinking(output) or _last_boxed(output) or ""
    # A boxed value inside the chosen span is the answer itself.
    boxed = _last_boxed(candidate)
    return (boxed if boxed is not None else candidate).strip()


def normalize_text(text: str) -> str:
    """SQuAD-style normalization: lowercase, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _letter_if_valid(letter: str, n_options: int) -> str | None:
    """Upper-cased ``letter`` if it indexes one of ``n_options`` options, else None."""
    letter = letter.upper()
    return letter if OPTION_LETTERS.index(letter) < n_options else None


def _choice_from_span(span: str, option_norms: list[str], n_options: int) -> str | None:
    """Letter from a short span: a bare letter, an exact option text, or a one-line "B) red"."""
    bare = _BARE_LETTER.match(span)
    if bare and _letter_if_valid(bare.group(1), n_options):
        return bare.group(1).upper()
    norm = normalize_text(span)
    if norm and option_norms.count(norm) == 1:
        return OPTION_LETTERS[option_norms.index(norm)]
    leading = _LEADING_LETTER.match(span) if "\n" not in span else None
    return _letter_if_valid(leading.group(1), n_options) if leading else None


def _parse_choice(candidate: str, options: list[str] | None) -> str | None:
    """Option letter named by ``candidate``, or None when unknown, out of range or ambiguous."""
    option_norms = [normalize_text(o) for o in options or []]
    n_options = len(option_norms) or len(OPTION_LETTERS)
    text = _ANSWER_PREFIX.sub("", candidate).strip()
    picked = _choice_from_span(text, option_norms, n_options)
    if picked or _BARE_LETTER.match(text):  # a bare but out-of-range letter is simply invalid
        return picked
    # Explicit phrases anywhere: "The answer is (C)", "Answer: B", "option D" (last one wins).
    explicit = _EXPLICIT_LETTER.findall(candidate)
    if explicit:
        return _letter_if_valid(explicit[-1], n_options)
    # The last non-empty line, which skips a prompt echoed before the answer.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        last_line = _ANSWER_PREFIX.sub("", lines[-1]).strip()
        picked = _choice_from_span(last_line, option_norms, n_options)
        if picked:
            return picked
    # Option text contained in the answer; drop matches that are substrings of another match.
    norm = normalize_text(text)
    hits = [i for i, o in enumerate(option_norms) if o and re.search(rf"\b{re.escape(o)}\b", norm)]
    hits = [i for i in hits if not any(j != i and option_norms[i] in option_norms[j] for j in hits)]
    return OPTION_LETTERS[hits[0]] if len(hits) == 1 else None


# Numbers beyond 1e±100 are not answers. Sampled junk like "4e99999999" would otherwise build a
# gigantic exact integer (minutes of CPU, uninterruptible) or overflow float conversion.
MAX_EXPONENT = 100


def _number_value(token: str) -> Fraction | None:
    """Exact value of one number token ("1,234.5", "-3", "2e3"), or None (also for |exponent| > 100)."""
    try:
        dec = Decimal(token.replace(",", ""))
        if not dec.is_finite() or abs(dec.adjusted()) > MAX_EXPONENT:
            return None
        return Fraction(dec)
    except (InvalidOperation, ValueError):
        return None


def _parse_number(text: str) -> Fraction | None:
    """Value of the LAST number in ``text`` (simple fractions "3/4" and words "five" included)."""
    text = _LATEX_FRAC.sub(r"\1/\2", text.replace("−", "-"))  # \frac{3}{4} -> 3/4
    matches = list(_NUMBER_TOKEN.finditer(text))
    if not matches:
        words = [w for w in re.findall(r"[a-z]+", text.lower()) if w in _WORD_NUMBERS]
        return Fraction(_WORD_NUMBERS[words[-1]]) if words else None
    numerator, denominator = matches[-1].group(1), matches[-1].group(2)
    value = _number_value(numerator)
    if denominator is not None:
        bottom = _number_value(denominator)
        value = value / bottom if value is not None and bottom else None
    return value


def _canonical_number(value: Fraction) -> str:
    """Canonical string: integers without a decimal point, others in shortest float form."""
    if value.denominator == 1:
        return str(value.numerator)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return format(exact.normalize(), "f") if Fraction(exact) == value else repr(float(value))


def extract_answer(output: str, answer_type: str, options: list[str] | None = None) -> str | None:
    """Normalized prediction from a raw model ``output`` for ``answer_type``, or None.

    Span priority: last complete `<answer>` block > unclosed `<answer>` tail > text after `</think>`
    (or the whole output), where its last `\\boxed{}` wins > a `\\boxed{}` inside the thought.
    A truncated thought (unclosed `<think>`, no answer, no box) yields None.
    Then: choice -> option letter, number -> canonical last number, text -> SQuAD-normalized,
    math -> the candidate string (checked later with math-verify).
    """
    if not output or not output.strip():
        return None
    candidate = _answer_candidate(output)
    if not candidate:
        return None
    if answer_type == "choice":
        return _parse_choice(candidate, options)
    if answer_type == "number":
        value = _parse_number(candidate)
        return _canonical_number(value) if value is not None else None
    if answer_type == "text":
        return normalize_text(_ANSWER_PREFIX.sub("", candidate)) or None
    if answer_type == "math":
        return _ANSWER_PREFIX.sub("", candidate).strip().strip("$").strip() or None
    raise ValueError(f"unknown answer_type {answer_type!r}")


def mean_relative_accuracy(pred: float, gt: float, thresholds=None) -> float:
    """VSI-Bench MRA: mean over θ of 1[|pred-gt|/|gt| < 1-θ]; gt == 0 requires an exact match."""
    thresholds = MRA_THRESHOLDS if thresholds is None else tuple(thresholds)
    pred, gt = float(pred), float(gt)
    if not (math.isfinite(pred) and math.isfinite(gt)) or not thresholds:
        return 0.0
    if gt == 0:
        return 1.0 if pred == 0 else 0.0
    relative_error = abs(pred - gt) / abs(gt)
    # The epsilon keeps exact boundary cases (error 0.05 at θ=0.95) strict despite float rounding.
    passed = sum(relative_error < (1.0 - theta) - 1e-9 for theta in thresholds)
    return passed / len(thresholds)


def _math_parse(expression: str):
    """math-verify parse of ``expression`` without signal-based timeouts; [] when it fails."""
    from math_verify import parse

    # Prose ("so x is 3") and already-delimited strings go to math-verify's own extractors.
    prose = re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", " ", expression))
    if "$" in expression or "\\boxed" in expression or prose:
        return parse(expression, parsing_timeout=None)
    # Bare LaTeX parses reliably only inside $...$ ("2\\sqrt{2}" alone parses as 2).
    return parse(f"${expression}$", parsing_timeout=None) or parse(expression, parsing_timeout=None)


def _math_equal(pred: str, gold: str) -> bool:
    """Mathematical equivalence via math-verify, falling back to exact numbers / compact strings."""
    from math_verify import verify

    if len(pred) <= _MAX_MATH_CHARS and len(gold) <= _MAX_MATH_CHARS:
        try:
            gold_parsed, pred_parsed = _math_parse(gold), _math_parse(pred)
            if gold_parsed and pred_parsed:
                if verify(gold_parsed, pred_parsed, timeout_seconds=None):
                    return True
        except Exception:  # noqa: BLE001 - a parser failure means "not verified", never a crash
            pass
    # Fallback: both are plain numbers, or identical after removing $, spaces and case.
    full_number = re.compile(rf"\s*(?:{_NUMBER})\s*")
    if full_number.fullmatch(pred) and full_number.fullmatch(gold):
        return _number_value(pred.strip()) == _number_value(gold.strip())
    compact = lambda s: re.sub(r"[\s$]", "", s).lower()  # noqa: E731
    return bool(compact(pred)) and compact(pred) == compact(gold)


def score_prediction(pred: str | None, answer: str, answer_type: str, options=None,
                     numeric_metric: str = "exact", rel_tol: float = 1e-6) -> float:
    """Score in [0, 1] of ``pred`` against the gold ``answer``; None predictions score 0.

    choice: letter equality; number: |pred-gt| <= rel_tol*max(1,|gt|) ("exact") or MRA ("mra");
    text: normalized equality; math: math-verify equivalence with plain fallbacks.
    """
    if numeric_metric not in ("exact", "mra"):
        raise ValueError(f"unknown numeric_metric {numeric_metric!r}; expected 'exact' or 'mra'")
    if pred is None or not str(pred).strip():
        return 0.0
    pred, answer = str(pred).strip(), str(answer).strip()
    if answer_type == "choice":
        gold = answer.upper() if len(answer) == 1 else _parse_choice(answer, options)
        return float(gold is not None and _parse_choice(pred, options) == gold)
    if answer_type == "number":
        pred_value, gold_value = _parse_number(pred), _parse_number(answer)
        if pred_value is None or gold_value is None:
            return 0.0
        if numeric_metric == "mra":
            return mean_relative_accuracy(float(pred_value), float(gold_value))
        tolerance = rel_tol * max(1.0, abs(float(gold_value)))
        return float(abs(float(pred_value - gold_value)) <= tolerance)
    if answer_type == "text":
        return float(normalize_text(pred) == normalize_text(answer) != "")
    if answer_type == "math":
        return float(_math_equal(pred, answer))
    raise ValueError(f"unknown answer_type {answer_type!r}")


def score_output(
    output: str, sample: dict, numeric_metric: str = "exact"
) -> tuple[str | None, float]:
    """Extract the prediction from ``output``, score it against ``sample``; return (pred, score)."""
    options = sample.get("options")
    pred = extract_answer(output, sample["answer_type"], options)
    score = score_prediction(pred, sample["answer"], sample["answer_type"], options, numeric_metric)
    return pred, score


def cot_format_ok(output: str, prefilled_think: bool = False) -> bool:
    """True iff ``output`` is exactly `<think>…</think>` then a non-empty `<answer>…</answer>`.

    With ``prefilled_think=True`` the prompt already opened the thought, so the output must start
    inside it (no `<think>` of its own) and close it with exactly one `</think>`.
    """
    if not output:
        return False
    opener = "" if prefilled_think else r"\s*<think>"
    match = re.fullmatch(opener + r"(.*?)</think>\s*<answer>(.*?)</answer>\s*", output, re.DOTALL)
    if not match:
        return False
    thought, answer = match.groups()
    tags = ("<think>", "</think>", "<answer>", "</answer>")
    return bool(answer.strip()) and not any(t in thought or t in answer for t in tags)
