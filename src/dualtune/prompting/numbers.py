"""Number answers: tokens ("1,234.5", "-3", "2e3", "3/4", "\\frac{3}{4}", "seven"), exact values, and
the canonical string an extracted number is reported as. Used by `answers`; pure and linear-time."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

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
