"""Number answers: tokens ("1,234.5", "-3", "2e3", "3/4", "\\frac{3}{4}", "seven"), exact values, the
canonical string an extracted number is reported as, and the mean relative accuracy (MRA) of a number
against its gold (VSI-Bench). Used by `answers`; pure and linear-time."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

import numpy as np

# A sign counts only when it does not follow a word, so "2-3 m" reads as 2 and 3, not 2 and -3.
_SIGN = r"(?:(?<![\w).])[-+])?"
_NUMBER = rf"{_SIGN}(?:(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_TOKEN = re.compile(rf"({_NUMBER})(?:\s*/\s*({_NUMBER}))?")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{\s*([-+]?[\d.]+)\s*\}\{\s*([-+]?[\d.]+)\s*\}")
_WORD_NUMBERS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
FULL_NUMBER = re.compile(rf"\s*(?:{_NUMBER})\s*")  # a string that is one plain number

# Numbers beyond 1e±100 are not answers. Sampled junk like "4e99999999" would otherwise build a
# gigantic exact integer (minutes of CPU, uninterruptible) or overflow float conversion.
MAX_EXPONENT = 100

MRA_THRESHOLDS = tuple(round(0.50 + 0.05 * i, 2) for i in range(10))  # 0.50, 0.55, ..., 0.95
# VSI-Bench's official evaluator (thinking-in-space / lmms-eval ``vsibench/utils.py::mean_relative_accuracy``):
# θ = numpy.linspace(.5, .95, 10) in float64 and a hit is ``err <= 1 - θ`` (inclusive, float arithmetic).
VSI_MRA_THRESHOLDS = tuple(float(t) for t in np.linspace(0.50, 0.95, 10))


def number_value(token: str) -> Fraction | None:
    """Exact value of one number token ("1,234.5", "-3", "2e3"), or None (also for |exponent| > 100)."""
    try:
        dec = Decimal(token.replace(",", ""))
        if not dec.is_finite() or abs(dec.adjusted()) > MAX_EXPONENT:
            return None
        return Fraction(dec)
    except (InvalidOperation, ValueError):
        return None


def parse_number(text: str) -> Fraction | None:
    """Value of the ONE number in ``text`` (simple fractions "3/4" and words "five" included), or None.

    Several distinct values ("12 or 13", "12, 13", "2-3 m") are not an answer. A worked equation
    counts by its result: only the text after the last "=" (or "≈") is read, so "2 x 3 = 6" is 6.
    """
    text = _LATEX_FRAC.sub(r"\1/\2", text.replace("−", "-"))  # \frac{3}{4} -> 3/4
    text = text[max(text.rfind("="), text.rfind("≈")) + 1:]
    values, seen = set(), set()
    for match in _NUMBER_TOKEN.finditer(text):
        if match.groups() in seen:
            continue
        seen.add(match.groups())
        value = number_value(match.group(1))
        if match.group(2) is not None:
            bottom = number_value(match.group(2))
            value = value / bottom if value is not None and bottom else None
        values.add(value)
        if None in values or len(values) > 1:
            return None
    if not seen:
        words = {w for w in re.findall(r"[a-z]+", text.lower()) if w in _WORD_NUMBERS}
        return Fraction(_WORD_NUMBERS[words.pop()]) if len(words) == 1 else None
    return values.pop()


def canonical_number(value: Fraction) -> str:
    """Canonical string: integers without a decimal point, others in shortest float form."""
    if value.denominator == 1:
        return str(value.numerator)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return format(exact.normalize(), "f") if Fraction(exact) == value else repr(float(value))


def mean_relative_accuracy(pred: float, gt: float, thresholds=None, inclusive: bool = False) -> float:
    """VSI-Bench MRA: mean over θ of 1[|pred-gt|/|gt| < 1-θ] (the paper's formula); gt == 0 requires an
    exact match. ``inclusive=True`` is the official evaluator's rule: ``err <= 1 - θ`` in plain float
    arithmetic over `VSI_MRA_THRESHOLDS` (so 9.5 vs 10 scores 1.0 and 9 vs 10 scores 0.9 there)."""
    default = VSI_MRA_THRESHOLDS if inclusive else MRA_THRESHOLDS
    thresholds = default if thresholds is None else tuple(thresholds)
    pred, gt = float(pred), float(gt)
    if not (math.isfinite(pred) and math.isfinite(gt)) or not thresholds:
        return 0.0
    if gt == 0:  # the official code divides by zero here; VSI-Bench has no zero gold
        return 1.0 if pred == 0 else 0.0
    error = abs(pred - gt) / abs(gt)
    if inclusive:
        return sum(error <= 1 - theta for theta in thresholds) / len(thresholds)
    # The epsilon keeps exact boundary cases (error 0.05 at θ=0.95) strict despite float rounding.
    return sum(error < (1.0 - theta) - 1e-9 for theta in thresholds) / len(thresholds)
