"""Row mapping shared by the adapters of training sets published without a test split (MM-Eureka,
ThinkLite-VL, OneThinker): the per-row answer type, options written inside the question, ``<think>``
rationales, subtask fields, image references, type-checked columns and jsonl / json record files.

Answer type of a row, decided from the row itself (these sets carry no question-type column):

* ``choice``: the row has options (a list column, or "A. ..." / "(A) ..." markers in the question, see
  `split_inline_options`) and the gold is one of their letters ("B", "(B)", "B. text") or the exact text of
  one option (mapped to its letter);
* ``number``: the gold, without ``$...$`` / ``\\boxed{}``, is one plain number ("12", "-3.5", "1,200",
  "3/4"), optionally followed by a degree / percent sign or a unit word ("5 cm"), and holds one value;
* ``math``: the gold holds LaTeX or a formula (a backslash command, ``^ _ { } =``, a variable next to a
  digit or operator, a tuple or interval, sqrt / pi / infinity signs); scored by math-verify equivalence;
* ``text`` otherwise (normalized string equality).

A letter gold whose options cannot be found stays ``text`` (the letter is compared as a string).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Iterable

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.prompting.numbers import parse_number
from dualtune.schema import OPTION_LETTERS
from dualtune.utils.image_refs import ImageRef

LETTERS = OPTION_LETTERS[:10]  # A-J: more inline options than that are not options
_MARKER = re.compile(r"(?<![A-Za-z0-9_$\\])(?:[(（]([A-J])[)）]|([A-J])[.:：、．)])", re.M)
_LABEL = re.compile(r"(?:\b(?:choices|options|answer choices)\s*[:：]?|选项[:：]?)\s*$", re.I)
_PLAIN_NUMBER = re.compile(
    r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?"
    r"\s*(?:°|%|\\%|\^\s*\\circ|\^\s*\{\s*\\circ\s*\}|\s[a-zA-Zµ]{1,6}(?:\^?[23²³])?)?")
_MATH = re.compile(r"[\\^_{}=√π∞≤≥]|\d[a-zA-Z]\b|\b[a-zA-Z]\s*[-+*/]\s*[\w(]|^[(\[].*,.*[)\]]$")
_LETTER_GOLD = re.compile(r"[(（]?([A-J])[)）]?(?:\s*[.:)：、．]\s*.*)?", re.S)
SUBTASK_FIELDS = ("subject", "category", "source", "data_source", "task")


def text_field(row: dict, key: str, required: bool = True) -> str:
    """``row[key]`` as a stripped string; numbers are accepted and stringified; anything else (a list, a
    dict, a bool) is a SkipRow naming the column and what was found (a missing required one, too)."""
    value = row.get(key)
    if value is None:
        if required:
            raise SkipRow(f"column {key!r} missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SkipRow(f"column {key!r} is {type(value).__name__}, expected a string")
    return str(value).strip()


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def strip_answer_wrappers(answer: str) -> str:
    """The gold without surrounding ``$``/``$$``, ``\\( \\)``, ``\\[ \\]``, ``\\boxed{}`` and whitespace
    (only when the wrapper encloses the whole answer: "$a$ and $b$" is left as it is)."""
    text, changed = answer.strip(), True
    while changed and text:
        changed = False
        for opener, closer in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            inner = text[len(opener):-len(closer)] if len(text) > len(opener) + len(closer) else None
            if inner is not None and text.startswith(opener) and text.endswith(closer) and "$" not in inner:
                text, changed = inner.strip(), True
        boxed = re.fullmatch(r"\\boxed\s*\{(.*)\}", text, re.S)
        if boxed and _balanced(boxed.group(1)):
            text, changed = boxed.group(1).strip(), True
    return text


def split_inline_options(question: str) -> tuple[str, list[str]]:
    """``(stem, options)`` from a question that lists its options inline ("A. 3\\nB. 4", "(A) 30° (B) 35°"):
    the last run of markers A, B, C, ... (consecutive letters, at least two, none glued to a preceding ASCII
    letter / digit, each followed by text). ``(question, [])`` when there is no such run."""
    markers = [(m.start(), m.end(), m.group(1) or m.group(2)) for m in _MARKER.finditer(question)]
    best: list = []
    for i, marker in enumerate(markers):
        if marker[2] != "A":
            continue
        run = [marker]
        for nxt in markers[i + 1:]:
            if LETTERS.index(nxt[2]) == LETTERS.index(run[-1][2]) + 1:
                run.append(nxt)
        if len(run) >= 2:
            best = run
    if not best:
        return question, []
    bounds = [m[1] for m in best]
    ends = [m[0] for m in best[1:]] + [len(question)]
    options = [question[start:end].strip().rstrip(";,；，").strip() for start, end in zip(bounds, ends)]
    stem = _LABEL.sub("", question[:best[0][0]].rstrip()).strip()
    if not stem or not all(options):
        return question, []
    return stem, options


def answer_kind(answer: str, options: list[str]) -> tuple[str, str]:
    """``(gold, answer_type)`` of a raw gold answer and the row's options (rules in the module docstring);
    a choice gold is returned as its option letter, the others without their ``$`` / ``\\boxed`` wrappers."""
    core = strip_answer_wrappers(answer)
    if options:
        letter = _LETTER_GOLD.fullmatch(core)
        if letter and LETTERS.index(letter.group(1)) < len(options):
            return letter.group(1), "choice"
        norms = [o.strip().lower() for o in options]
        if core.lower() in norms and norms.count(core.lower()) == 1:
            return OPTION_LETTERS[norms.index(core.lower())], "choice"
    if _PLAIN_NUMBER.fullmatch(core) and parse_number(core) is not None:
        return core, "number"
    if _MATH.search(core):
        return core, "math"
    return core, "text"


def typed_answer(question: str, raw_answer: str, listed=()) -> tuple[str, list[str], str, str]:
    """``(question, options, answer, answer_type)`` of a row: its options are ``listed`` (a published column)
    or, without one, those written inside ``question`` (`split_inline_options`); a ``choice`` row keeps them and
    its question loses the inline block, any other row (gold not among them, `answer_kind`) drops them."""
    stem, options = (question, list(listed)) if listed else split_inline_options(question)
    answer, answer_type = answer_kind(raw_answer, options)
    if answer_type != "choice":
        return question, [], answer, answer_type
    return stem, options, answer, answer_type


def option_choice(ctx: AdapterContext, key: str, choices: tuple[str, ...]) -> str:
    """``domain.options.<key>`` (default: the first of ``choices``); a ValueError naming the allowed values
    for any other value."""
    value = ctx.options.get(key, choices[0])
    if value not in choices:
        raise ValueError(f"domain.options.{key}={value!r}: expected one of {list(choices)}")
    return value


def literal_value(text: str):
    """The value a JSON or Python literal string holds (a list column published as text: ``'["a", "b"]'``,
    ``"['a', 'b']"``); a ValueError when it is neither (also for input nested too deep to parse)."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
    raise ValueError(f"not a JSON or Python literal: {text[:40]!r}")


def list_field(row: dict, key: str) -> list[str]:
    """``row[key]`` as a list of strings ([] when missing / null). A string holding a JSON or Python list is
    parsed (never split into characters); any other string, or a non-string item, is a SkipRow."""
    value = row.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = literal_value(value)
        except ValueError:
            raise SkipRow(f"column {key!r} is a string that holds no list: {value[:40]!r}") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int, float)) for v in value):
        raise SkipRow(f"column {key!r} is {type(value).__name__}, expected a list of strings")
    return [str(v).strip() for v in value]


def strip_option_letters(options: list[str]) -> list[str]:
    """Options without their own "A. " / "(A) " prefixes when every option carries its letter in order."""
    prefixed = [re.match(rf"\s*\(?{letter}\)?\s*[.:)：、]?\s+", opt) for letter, opt in zip(LETTERS, options)]
    if options and len(options) <= len(LETTERS) and all(prefixed):
        return [opt[m.end():].strip() for opt, m in zip(options, prefixed)]
    return options


def split_think(response: str) -> tuple[str, str]:
    """``(cot, answer)`` of a published response ``<think>cot</think><answer>answer</answer>``: the thought
    (also a leading thought closed by a lone ``</think>``), and the ``<answer>`` content, else the text
    after the thought (the whole response when it has no tags)."""
    text = response.strip()
    cot, rest = "", text
    closed = re.search(r"<think>(.*?)</think>", text, re.S)
    if closed:
        cot, rest = closed.group(1), text[closed.end():]
    elif "</think>" in text:
        cot, rest = text.split("</think>", 1)
    answer = re.search(r"<answer>(.*?)</answer>", rest, re.S)
    return cot.strip(), (answer.group(1) if answer else rest.replace("<answer>", "")).strip()


def subtask_of(row: dict, ctx: AdapterContext, fields=SUBTASK_FIELDS, fallback: str = "all") -> str:
    """The row's task: ``options.subtask_field`` when configured, else the first non-empty string of
    ``fields``, else ``fallback``."""
    configured = ctx.options.get("subtask_field")
    for key in [configured] if configured else fields:
        value = row.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    if configured:
        raise SkipRow(f"options.subtask_field column {configured!r} missing or empty")
    return fallback


def image_ref(value, ctx: AdapterContext, column: str):
    """One image as the validator takes it: a lazy `ImageRef` (how the loader hands over stored images), raw
    bytes or a ``{"bytes", "path"}`` dict as stored, or a path (``file://`` stripped) inside the snapshot.
    Anything else is a SkipRow naming the column."""
    if isinstance(value, ImageRef):
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, dict) and (value.get("bytes") or value.get("path")):
        if value.get("bytes"):
            return {"bytes": value["bytes"], "path": value.get("path")}
        return {"bytes": None, "path": ctx.resolve(str(value["path"]).removeprefix("file://"))}
    if isinstance(value, str) and value.strip():
        return {"bytes": None, "path": ctx.resolve(value.strip().removeprefix("file://"))}
    if hasattr(value, "size") and hasattr(value, "mode"):  # an already decoded PIL image
        return value
    raise SkipRow(f"column {column!r}: expected image bytes, a {{bytes, path}} dict or a path, "
                  f"got {type(value).__name__}")


def read_json_records(path: Path) -> Iterable[dict]:
    """Rows of a ``.jsonl`` file (one object a line) or a ``.json`` file (an array of objects), each with its
    0-based position as ``_row``. A line that is not a JSON object becomes ``{"_row", "id", "_error"}`` (id =
    ``<file>:<line>``; the adapter turns it into a counted skip); a ``.json`` file that is not an array is an
    error naming it."""
    if path.suffix == ".json":
        records = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(records, list):
            raise ValueError(f"{path}: expected a JSON array of records, found {type(records).__name__}")
        for index, record in enumerate(records):
            yield dict(record, _row=index) if isinstance(record, dict) else {
                "_row": index, "id": f"{path.name}#{index}",
                "_error": f"record {index} is {type(record).__name__}, not an object"}
        return
    with path.open(encoding="utf-8") as fh:
        for index, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                yield {"_row": index, "id": f"{path.name}:{index + 1}",
                       "_error": f"line {index + 1} is not JSON ({err.msg})"}
                continue
            yield dict(record, _row=index) if isinstance(record, dict) else {
                "_row": index, "id": f"{path.name}:{index + 1}",
                "_error": f"line {index + 1} is {type(record).__name__}, not an object"}


def check_record(row: dict) -> None:
    """Raise the SkipRow of a record `read_json_records` could not parse."""
    if row.get("_error"):
        raise SkipRow(f"malformed record: {row['_error']}")


def local_snapshot(path: str, marker: str, how: str) -> Path:
    """``path`` as a local snapshot directory holding ``marker``; otherwise an error that says how to get
    one (``how``): datasets published as json + zipped image folders cannot be read from a hub id."""
    root = Path(path)
    if root.is_dir() and (root / marker).is_file():
        return root
    where = f"directory {path} has no {marker}" if root.is_dir() else f"{path!r} is not a local directory"
    raise FileNotFoundError(f"domain.path: {where}. This dataset is published as {marker} plus zipped image "
                            f"folders, so it is read from a local snapshot: {how}")
