"""MMMU (``MMMU/MMMU``; evaluation: the ``validation`` split of all 30 subject configs, 900 questions).

SOURCE: the dataset card's features (id, question, options (a *string* holding a Python list), explanation,
image_1 .. image_7 (Image), img_type, answer, topic_difficulty, question_type (multiple-choice | open),
subfield), one HF config per subject (``<Subject>/validation-*.parquet``), and the official evaluation code
(MMMU repo, ``eval/eval_utils.py``: ``parse_multi_choice_response``, ``parse_open_response``,
``normalize_str``, ``eval_open``; ``eval/data_utils.py``: the 30 subjects ``CAT_SHORT2LONG`` and their six
disciplines ``DOMAIN_CAT2SUB_CAT``), which lmms-eval's ``mmmu_val`` task copies (it reads ``options``
with ``ast.literal_eval``).

Choices made here:
* subtask = the subject (the HF config; for a merged mirror without configs, the subject in the id
  ``validation_<Subject>_<n>``); meta keeps the discipline, subfield, img_type and topic_difficulty.
* ``options`` is parsed as a list literal (``ast.literal_eval``, as the official code; `training_sets.literal_value`
  also takes JSON); a column of another type is an error naming it (a
  different layout, not a bad row), a string that is not a list of strings is a counted skip.
* images: the non-empty ``image_k`` columns in order; the question and options keep their ``<image k>``
  markers, renumbered to the sample's image order, and the prompt shows each image at its marker
  (`dualtune.prompting.templates.prompt_layout`; a repeated marker shows the image again, as
  VLMEvalKit's interleaved MMMU prompt does). A marker naming an empty column is a counted skip.
* multiple-choice -> ``choice`` (gold letter). The official parser takes the *last* of several letters
  named and, when none is found, a *random* letter; dualtune's rule-based extractor gives no credit for
  several letters nor for no answer (deterministic).
* open -> the golds are ``answer``, or every element when it is a string holding a list (the first is the
  answer, the rest ``scoring.accepted``). When every gold is a number by the official test
  (``float(s.replace(",", ""))``), the sample is ``number`` with ``scoring.precision = 2`` and golds rounded
  to 2 decimals: ``normalize_str`` rounds both sides to 2 decimals and compares the floats with no
  tolerance (dualtune's 1e-6 relative tolerance on non-integers remains, relevant only for |gold| >= 1e4).
  Otherwise ``text`` (normalized equality; the official check is the gold contained in the lower-cased
  response, looser).
* the official lmms-eval ``mmmu_val`` metric is rule based; ``scoring.judge = "rule"`` is recorded anyway.
"""

from __future__ import annotations

import json
import re

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.training_sets import literal_value
from dualtune.schema import OPTION_LETTERS

REQUIRED_COLUMNS = ("id", "question", "options", "answer", "question_type")
DISCIPLINES = {
    "Art and Design": ["Art", "Art_Theory", "Design", "Music"],
    "Business": ["Accounting", "Economics", "Finance", "Manage", "Marketing"],
    "Science": ["Biology", "Chemistry", "Geography", "Math", "Physics"],
    "Health and Medicine": ["Basic_Medical_Science", "Clinical_Medicine", "Diagnostics_and_Laboratory_Medicine",
                            "Pharmacy", "Public_Health"],
    "Humanities and Social Science": ["History", "Literature", "Sociology", "Psychology"],
    "Tech and Engineering": ["Agriculture", "Architecture_and_Engineering", "Computer_Science", "Electronics",
                             "Energy_and_Power", "Materials", "Mechanical_Engineering"],
}
DISCIPLINE_OF = {subject: d for d, subjects in DISCIPLINES.items() for subject in subjects}
SUBJECTS = sorted(DISCIPLINE_OF)  # the 30 HF configs of MMMU/MMMU
IMAGE_COLUMNS = [f"image_{k}" for k in range(1, 8)]
MARKER = re.compile(r"<image (\d+)>")
_ID = re.compile(r"^(?:dev|validation|test)_(.+)_\d+$")


def _subject(row: dict, ctx: AdapterContext) -> str:
    """The row's subject: the HF config read, else the one in its id."""
    match = _ID.match(str(row.get("id", "")))
    subject = ctx.subset or (match.group(1) if match else None)
    if subject not in DISCIPLINE_OF:
        raise SkipRow(f"unknown MMMU subject {subject!r}")
    return subject


def parse_list_column(value, column: str) -> list[str]:
    """A column published as a string holding a Python list (``"['a', 'b']"``) -> the list of strings.

    Another type than ``str`` is a ``TypeError`` naming the column (the layout is not MMMU's); a string
    that is not a list of strings is a `SkipRow` naming the column."""
    if not isinstance(value, str):
        raise TypeError(f"MMMU column {column!r} must be a string holding a Python list, found "
                        f"{type(value).__name__}: {value!r:.80}")
    try:
        parsed = literal_value(value)
    except ValueError:
        raise SkipRow(f"{column} is not a Python list literal") from None
    if not isinstance(parsed, list) or not all(isinstance(x, (str, int, float)) for x in parsed):
        raise SkipRow(f"{column} is not a list of strings (found {type(parsed).__name__})")
    return [str(x) for x in parsed]


def _images(row: dict, texts: list[str]) -> tuple[list, dict[int, int]]:
    """The non-empty image columns in order and the map column k -> position in the sample's images."""
    images, position = [], {}
    for k, column in enumerate(IMAGE_COLUMNS, start=1):
        if row.get(column):
            position[k] = len(images) + 1
            images.append(row[column])
    for text in texts:
        for k in MARKER.findall(text):
            if int(k) not in position:
                raise SkipRow("an <image k> marker names an empty image_k column")
    if not images:
        raise SkipRow("no image")
    return images, position


def _is_number(text: str) -> bool:
    """The official ``check_is_number``: ``float`` accepts it once commas are removed."""
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def _open_answer(answer: str, scoring: dict) -> tuple[str, str]:
    """(answer, answer_type) of an open question; accepted further golds go to ``scoring``."""
    answer = answer.strip()
    golds = parse_list_column(answer, "answer") if answer.startswith("[") else [answer]
    golds = [g.strip() for g in golds if g.strip()]
    if not golds:
        raise SkipRow("open question without a gold answer")
    if all(_is_number(g) for g in golds):
        golds = list(dict.fromkeys(repr(round(float(g.replace(",", "")), 2)) for g in golds))
        scoring["precision"] = 2
        kind = "number"
    else:
        kind = "text"
    if len(golds) > 1:
        scoring["accepted"] = golds[1:]
    return golds[0], kind


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One MMMU row -> one schema row (see the module docstring for the rules)."""
    subject = _subject(row, ctx)
    options = parse_list_column(row.get("options"), "options")
    question = str(row.get("question") or "").strip()
    images, position = _images(row, [question, *options])

    def renumber(text: str) -> str:
        return MARKER.sub(lambda m: f"<image {position[int(m.group(1))]}>", text)

    scoring = {"judge": "rule"}
    answer = str(row.get("answer") or "").strip()
    kind = row.get("question_type")
    if kind == "multiple-choice":
        if not options or answer not in OPTION_LETTERS[: len(options)]:
            raise SkipRow("multiple-choice answer is not the letter of an option")
        answer_type = "choice"
    elif kind == "open":
        answer, answer_type = _open_answer(answer, scoring)
        options = []
    else:
        raise SkipRow(f"unknown question_type {kind!r}")
    extra = {"scoring": scoring, "subject": subject, "discipline": DISCIPLINE_OF[subject],
             "subfield": row.get("subfield"), "img_type": row.get("img_type"),
             "topic_difficulty": row.get("topic_difficulty"), "mmmu_question_type": kind,
             "mmmu_answer": row.get("answer")}
    return {"id": f"mmmu/{row['id']}", "domain": ctx.domain, "subtask": subject, "images": images, "video": [],
            "question": renumber(question), "options": [renumber(o) for o in options], "answer": answer,
            "answer_type": answer_type, "cot": "", "source": "MMMU/MMMU", "meta": json.dumps(extra)}
