"""MMStar (``Lin-Chen/MMStar``; evaluation: the ``val`` split, 1,500 questions).

SOURCE: the dataset card (config ``mmstar``, split ``val`` = ``mmstar.parquet``; features index (int64),
question, image (Image), answer (a letter), category, l2_category, meta_info {source, split, image_path})
and the evaluators that load it: lmms-eval's ``mmstar`` task (``utils.py``: ``exact_match``, "brought from
MMStar", and per-l2-category aggregation) and VLMEvalKit (``ImageMCQDataset``), both of which note that the
``question`` column already holds the options inline: ``...\\nOptions: A: x, B: y, C: z, D: w``.

Choices made here:
* subtask = ``category``, the 6 core capabilities (coarse perception, fine-grained perception, instance
  reasoning, logical reasoning, science & technology, math); meta keeps ``l2_category`` (18) and the
  source. (lmms-eval averages over the l2 categories; dualtune reports per subtask and overall.)
* the inline options are split off the question (labels ``A:``, ``, B:``, ... in order) into ``options``
  so the mode templates render them once; a question without an ``Options:`` block, or a gold letter that
  is not one of its labels, is a counted skip.
* scoring: ``choice`` with dualtune's extractor. The official ``exact_match`` compares only the first
  character of the lower-cased response (or the one after "(", "option ", "the answer is ") with the gold:
  "B", "(B) red", "Option B", "The answer is B" score 1 in both; a response that merely starts with the
  gold's letter ("Based on the image, C" for gold B) scores 1 officially and 0 here, since dualtune reads
  the named answer. ``scoring.judge = "rule"``.
"""

from __future__ import annotations

import json
import re

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.schema import OPTION_LETTERS

REQUIRED_COLUMNS = ("index", "question", "image", "answer", "category")
CATEGORIES = ("coarse perception", "fine-grained perception", "instance reasoning", "logical reasoning",
              "science & technology", "math")
_OPTIONS = "Options:"


def split_options(question: str) -> tuple[str, list[str]]:
    """(question stem, option texts) of an MMStar question with its inline ``Options: A: .., B: ..`` block;
    `SkipRow` when there is no such block."""
    at = question.rfind(_OPTIONS)
    block = question[at + len(_OPTIONS):].strip() if at >= 0 else ""
    first = re.match(r"A:\s*", block)
    if first is None:
        raise SkipRow("question has no inline 'Options: A: ...' block")
    starts = [first]
    for letter in OPTION_LETTERS[1:]:  # ", B: " after A's text, ", C: " after B's, ...
        label = re.compile(rf",\s*{letter}:\s").search(block, starts[-1].end())
        if label is None:
            break
        starts.append(label)
    ends = [m.start() for m in starts[1:]] + [len(block)]
    return question[:at].strip(), [block[m.end():end].strip() for m, end in zip(starts, ends)]


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One MMStar row -> one schema row (see the module docstring for the rules)."""
    category = str(row.get("category") or "").strip()
    if category not in CATEGORIES:
        raise SkipRow(f"unknown MMStar category {category!r}")
    if not isinstance(row.get("question"), str):
        raise TypeError(f"MMStar column 'question' must be a string, found {type(row.get('question')).__name__}")
    question, options = split_options(row["question"])
    answer = str(row.get("answer") or "").strip()
    if answer not in OPTION_LETTERS[: len(options)]:
        raise SkipRow("answer is not the letter of an inline option")
    if not row.get("image"):
        raise SkipRow("no image")
    info = row.get("meta_info") or {}
    extra = {"scoring": {"judge": "rule"}, "category": category, "l2_category": row.get("l2_category"),
             "source": info.get("source"), "source_split": info.get("split"), "image_path": info.get("image_path")}
    return {"id": f"mmstar/{row['index']}", "domain": ctx.domain, "subtask": category, "images": [row["image"]],
            "video": [], "question": question, "options": options, "answer": answer, "answer_type": "choice",
            "cot": "", "source": "Lin-Chen/MMStar", "meta": json.dumps(extra)}
