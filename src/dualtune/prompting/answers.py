"""Shared answer extraction and scoring for evaluation, RAP scoring and GRPO rewards.

Extraction is deterministic and linear in the output length (sampled completions can be
megabytes of repeated tags). Extraction turns a raw model output into a normalized prediction (an
option letter, a canonical number string, SQuAD-normalized text, or a math string); scoring compares
a prediction with the gold answer and returns a value in [0, 1]. Math equivalence goes through
`mathcheck` (math-verify in a bounded worker process).

No credit for hedging: a number answer naming several distinct values ("12 or 13", "12, 13", a range
"2-3") and a choice answer naming several letters ("A or B", "B) red or C) green") extract to None.
"""

from __future__ import annotations

import re
import string

from dualtune.prompting.mathcheck import math_verify_equal
from dualtune.prompting.numbers import (  # noqa: F401  (MRA names re-exported: their old home)
    FULL_NUMBER, MRA_THRESHOLDS, VSI_MRA_THRESHOLDS, canonical_number, mean_relative_accuracy, number_value,
    parse_number)
from dualtune.prompting.rules import letter_set, round_to_precision, scoring_rules
from dualtune.schema import OPTION_LETTERS

NUMERIC_METRICS = ("exact", "mra", "mra_vsibench")

_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)
_BOX_OR_BRACE = re.compile(r"\\boxed\{|[{}]")
_ANSWER_PREFIX = re.compile(
    r"^\s*(?:the\s+)?(?:final\s+)?answer\b\s*(?:is\b)?\s*[:\-]?\s*", re.IGNORECASE
)
_BARE_LETTER = re.compile(r"^\(?([A-Za-z])\)?[.:)]?$")
_EXPLICIT_LETTER = re.compile(
    r"\b(?i:answer|option|choice)\s*(?:(?i:is)\s*)?[:\-]?\s*(?:(?i:option)\s*)?\(?([A-Z])\b\)?"
)
# "B) red", "B. red", "B is ...", and "B:red" (MathVerse writes its choices "A:40°", no space).
_LEADING_LETTER = re.compile(r"^\s*\(?([A-Z])(?:\)|[.:]\s|:(?=\S)|\s+is\b)")
# Two letters joined as alternatives ("A or B", "A, B", "(A)/(B)"), or option markers "B)" / "(B)".
_LETTER_ALTERNATIVES = re.compile(
    r"(?<![A-Za-z])\(?([A-Z])\)?(?=\s*(?:[,/&;]|\bor\b|\band\b)\s*\(?([A-Z])\)?(?![A-Za-z]))")
_LETTER_MARKER = re.compile(r"(?<![A-Za-z])\(?([A-Z])\)")


def _blocks(text: str, opener: str, closer: str) -> tuple[list[str], str]:
    """(contents of the `opener…closer` blocks, ``text`` without them), matched leftmost-shortest
    like the lazy regex `opener(.*?)closer`, but in linear time (no rescan from every opener)."""
    contents, kept, pos = [], [], 0
    while (start := text.find(opener, pos)) >= 0:
        end = text.find(closer, start + len(opener))
        if end < 0:  # no closer after this opener, hence none after any later one either
            break
        contents.append(text[start + len(opener):end])
        kept.append(text[pos:start])
        pos = end + len(closer)
    kept.append(text[pos:])
    return contents, "".join(kept)


def strip_thinking(text: str) -> str:
    """Remove `<think>...</think>` blocks, a prefilled leading thought ending in a lone `</think>`,
    and an unclosed `<think>` (cut up to a following `<answer>` or to the end)."""
    if not text:
        return ""
    text = _blocks(text, "<think>", "</think>")[1]
    # Prefilled prompt: the output starts inside the thought, so only `</think>` appears.
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    # Truncated thought: `<think>` opened and never closed.
    if "<think>" in text:
        head, tail = text.split("<think>", 1)
        answer_at = tail.find("<answer>")
        text = head + (tail[answer_at:] if answer_at >= 0 else "")
    return text.strip()


_THINK_BLOCK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


def thinks(output: str) -> bool:
    """True iff ``output`` reasons: a `<think>` block with non-blank content (closed, or cut off by the
    budget), or non-blank text before a lone `</think>` (a thought whose opener was not generated, as
    `strip_thinking` reads it). An empty `<think></think>` (the model chose not
    to think) and a bare answer are False."""
    output = output or ""
    if any(m.group(1).strip() for m in _THINK_BLOCK.finditer(output)):
        return True
    head = output.split("</think>", 1)[0] if "</think>" in output else ""
    return "<think>" not in head and bool(head.strip())


def thought_text(output: str) -> str | None:
    """The content of the first closed `<think>…</think>` block of ``output`` (None without one)."""
    thoughts = _blocks(output or "", "<think>", "</think>")[0]
    return thoughts[0] if thoughts else None


def _last_boxed(text: str) -> str | None:
    """Content of the last closed `\\boxed{...}` in ``text`` (nested braces handled), or None.

    One pass with a stack of open braces (a box's entry holds where its content starts), so a flood
    of unclosed `\\boxed{` stays linear."""
    open_braces, best = [], None
    for match in _BOX_OR_BRACE.finditer(text):
        if match.group() != "}":
            open_braces.append(match.end() if match.group() != "{" else -1)
        elif open_braces:
            start = open_braces.pop()
            if start >= 0 and (best is None or start > best[0]):
                best = (start, match.start())
    return text[best[0]:best[1]].strip() if best else None


def _answer_candidate(output: str) -> str:
    """The span of ``output`` that holds the answer, following the documented priority order."""
    # 1. Last complete, non-empty <answer> block (an echoed prompt may contain an empty one).
    blocks = [b.strip() for b in _blocks(output, "<answer>", "</answer>")[0] if b.strip()]
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
    text = text.lower().translate(_NO_PUNCTUATION)
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


def _names_several_letters(span: str, n_options: int) -> bool:
    """True when ``span`` offers several valid option letters: "A or B", "A, B", "B) red or C) blue"."""
    def valid(letter):
        return OPTION_LETTERS.index(letter) < n_options

    if any(a != b and valid(a) and valid(b) for a, b in _LETTER_ALTERNATIVES.findall(span)):
        return True
    return len({letter for letter in _LETTER_MARKER.findall(span) if valid(letter)}) > 1


def _parse_choice(candidate: str, options: list[str] | None) -> str | None:
    """Option letter named by ``candidate``, or None when unknown, out of range or ambiguous
    (several letters offered as alternatives in the span the letter was read from)."""
    option_norms = [normalize_text(o) for o in options or []]
    n_options = len(option_norms) or len(OPTION_LETTERS)
    text = _ANSWER_PREFIX.sub("", candidate).strip()
    picked = _choice_from_span(text, option_norms, n_options)
    if picked or _BARE_LETTER.match(text):  # a bare but out-of-range letter is simply invalid
        return None if picked and _names_several_letters(text, n_options) else picked
    # Explicit phrases anywhere: "The answer is (C)", "Answer: B", "option D" (last one wins).
    explicit = list(_EXPLICIT_LETTER.finditer(candidate))
    if explicit:
        if _names_several_letters(candidate[explicit[-1].start():], n_options):
            return None
        return _letter_if_valid(explicit[-1].group(1), n_options)
    # The last non-empty line, which skips a prompt echoed before the answer.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        last_line = _ANSWER_PREFIX.sub("", lines[-1]).strip()
        picked = _choice_from_span(last_line, option_norms, n_options)
        if picked:
            return None if _names_several_letters(last_line, n_options) else picked
    # Option text contained in the answer; drop matches that are substrings of another match.
    norm = normalize_text(text)
    hits = [i for i, o in enumerate(option_norms) if o and re.search(rf"\b{re.escape(o)}\b", norm)]
    hits = [i for i in hits if not any(j != i and option_norms[i] in option_norms[j] for j in hits)]
    return OPTION_LETTERS[hits[0]] if len(hits) == 1 else None


def extract_answer(output: str, answer_type: str, options: list[str] | None = None,
                   question: str | None = None) -> str | None:
    """Normalized prediction from a raw model ``output`` for ``answer_type``, or None.

    ``question``: the sample's question; where the output echoes it verbatim, the echo is removed
    first, so numbers or letters stated in the question earn no credit.

    Span priority: last complete `<answer>` block > unclosed `<answer>` tail > text after `</think>`
    (or the whole output), where its last `\\boxed{}` wins > a `\\boxed{}` inside the thought.
    A truncated thought (unclosed `<think>`, no answer, no box) yields None.
    Then: choice -> option letter, number -> the one (canonical) number, text -> SQuAD-normalized,
    math -> the candidate string (checked later with math-verify).
    """
    if output and question and question.strip():
        output = output.replace(question.strip(), "\n")
    if not output or not output.strip():
        return None
    candidate = _answer_candidate(output)
    if not candidate:
        return None
    if answer_type == "choice":
        return _parse_choice(candidate, options)
    if answer_type == "letters":  # a set of option letters ("A, C"): the ``multi`` scoring rule
        return letter_set(_ANSWER_PREFIX.sub("", candidate), options)
    if answer_type == "number":
        value = parse_number(candidate)
        return canonical_number(value) if value is not None else None
    if answer_type == "text":
        return normalize_text(_ANSWER_PREFIX.sub("", candidate)) or None
    if answer_type == "math":
        return _ANSWER_PREFIX.sub("", candidate).strip().strip("$").strip() or None
    raise ValueError(f"unknown answer_type {answer_type!r}")


def _math_equal(pred: str, gold: str) -> bool:
    """Equal plain numbers, or identical strings after removing $, spaces and case (checked first:
    no process round trip), or else math-verify equivalence (time- and size-bounded, `mathcheck`)."""
    if FULL_NUMBER.fullmatch(pred) and FULL_NUMBER.fullmatch(gold):
        value = number_value(pred.strip())
        if value is not None and value == number_value(gold.strip()):
            return True
    else:
        compact_pred = re.sub(r"[\s$]", "", pred).lower()
        if compact_pred and compact_pred == re.sub(r"[\s$]", "", gold).lower():
            return True
    return math_verify_equal(pred, gold)


def score_prediction(pred: str | None, answer: str, answer_type: str, options=None,
                     numeric_metric: str = "exact", rel_tol: float = 1e-6) -> float:
    """Score in [0, 1] of ``pred`` against the gold ``answer``; None predictions score 0.

    choice: letter equality; number ("exact"): integers must be equal, otherwise
    |pred-gt| <= rel_tol*max(1,|gt|); number ("mra"): mean relative accuracy, ("mra_vsibench") with the
    official evaluator's inclusive float boundary;
    text: normalized equality; math: math-verify equivalence with plain fallbacks.
    """
    if numeric_metric not in NUMERIC_METRICS:
        raise ValueError(f"unknown numeric_metric {numeric_metric!r}; expected one of {NUMERIC_METRICS}")
    if pred is None or not str(pred).strip():
        return 0.0
    pred, answer = str(pred).strip(), str(answer).strip()
    if answer_type == "choice":
        gold = answer.upper() if len(answer) == 1 else _parse_choice(answer, options)
        return float(gold is not None and _parse_choice(pred, options) == gold)
    if answer_type == "number":
        pred_value, gold_value = parse_number(pred), parse_number(answer)
        if pred_value is None or gold_value is None:
            return 0.0
        if numeric_metric in ("mra", "mra_vsibench"):
            return mean_relative_accuracy(float(pred_value), float(gold_value),
                                          inclusive=numeric_metric == "mra_vsibench")
        if pred_value.denominator == 1 and gold_value.denominator == 1:
            return float(pred_value == gold_value)  # 1000001 is not 1000000 (no tolerance)
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
    """Extract the prediction from ``output``, score it against ``sample``; return (pred, score).

    ``sample["question"]`` (when present) is cut out of an output that echoes it (`extract_answer`).
    The sample's scoring rules (`dualtune.prompting.rules`: metric, precision, accepted golds, multi) apply."""
    rules = scoring_rules(sample)
    options, answer_type = sample.get("options"), sample["answer_type"]
    multi = answer_type == "choice" and rules.get("multi")  # the gold is a set: name exactly that set
    pred = extract_answer(output, "letters" if multi else answer_type, options, sample.get("question"))
    if multi:
        return pred, float(pred is not None and pred == letter_set(str(sample["answer"]), options))
    if answer_type == "number" and pred is not None and rules.get("precision") is not None:
        pred = canonical_number(round_to_precision(parse_number(pred), rules["precision"]))
    metric = rules.get("metric") or numeric_metric
    golds = [sample["answer"], *rules.get("accepted", [])]
    score = max(score_prediction(pred, gold, answer_type, options, metric) for gold in golds)
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
