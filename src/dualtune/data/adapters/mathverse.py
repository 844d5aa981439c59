"""MathVerse (``AI4Math/MathVerse``; evaluation: ``testmini``) and its text-only version.

SOURCE: the dataset card's configs and features (config ``testmini``: split ``testmini``, 3,940 rows =
788 problems x 5 versions, ``testmini.parquet``; config ``testmini_text_only``: split ``testmini_text_only``,
788 rows, ``testmini_text_only.parquet``, the diagram-free version whose ``image`` is empty; features
sample_index, problem_index, problem_version, question, image (Image), answer, question_type
(``multi-choice`` | ``free-form``), metadata {split, source, subject, subfield}, query_wo, query_cot,
question_for_eval), the official evaluation code (ZrrSkywalker/MathVerse ``evaluation/``:
``extract_answer_s1.py`` then ``score_answer_s2.py``, which reports accuracy per subject / subfield and per
``problem_version``) and lmms-eval's ``mathverse`` task (``mathverse_evals.py``: ``MathVerseEvaluator``,
GPT extraction then a GPT judge fed ``question_for_eval``, the answer and the extraction).

Choices made here:
* two configs: ``conf/domain/mathverse.yaml`` reads ``testmini`` (the 5 versions with a diagram: Text
  Dominant, Text Lite, Vision Intensive, Vision Dominant, Vision Only); ``conf/domain/mathverse_text_only.yaml``
  reads ``testmini_text_only`` (Text Only, no image). The two configs name their splits differently, so
  `read` maps split ``testmini`` to ``testmini_text_only`` for that config: ``domain=mathverse
  domain.subsets=[testmini,testmini_text_only]`` reads all six versions into one table. Text Only ids are
  ``mathverse/text_only/<sample_index>`` (sample indices restart at 1 in that config).
* subtask = ``problem_version`` (the paper's main table), or ``options.subtask_by: subject | subfield``
  (the evaluator's other grouping); meta keeps problem_index, subject, subfield, source.
* multi-choice: the choices written in the question ("Choices:\\nA:40°\\nB:60°...") are split off into
  ``options`` (`split_inline_options`) and the gold letter must be one of them. Where the version puts the
  choices in the diagram only (Vision Dominant / Vision Only), ``options`` are the bare letters (their
  count from ``question_for_eval``'s choices, else A-D): the prompt reveals no option text the version hides,
  and the answer is still read as a letter. A question left empty by the version (Vision Only) becomes
  "Answer the question shown in the image.".
* free-form: number / math / text by the gold's form (`dualtune.data.adapters.training_sets.answer_kind`):
  numbers exact, math by math-verify equivalence, text by normalized equality.
* the official evaluator extracts and judges with GPT (consistency, e.g. "0.5m" = "50cm"); dualtune scores
  with its rule-based extractor and records ``scoring.judge = "rule"`` (unit conversions are not credited).
"""

from __future__ import annotations

import json
import re

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.training_sets import (
    answer_kind, image_ref, option_choice, split_inline_options, text_field)
from dualtune.schema import OPTION_LETTERS

REQUIRED_COLUMNS = ("sample_index", "problem_version", "question", "answer", "question_type")
VERSIONS = ("Text Dominant", "Text Lite", "Text Only", "Vision Intensive", "Vision Dominant", "Vision Only")
QUESTION_TYPES = ("multi-choice", "free-form")
SUBTASK_BY = ("version", "subject", "subfield")
TEXT_ONLY_CONFIG = "testmini_text_only"
IMAGE_ONLY_STEM = "Answer the question shown in the image."


def read(path: str, subset, split: str):
    """Rows of one config; ``testmini_text_only`` names its split after itself, so a ``testmini`` split
    request for that config reads it (both configs in one domain: ``subsets=[testmini,testmini_text_only]``)."""
    from dualtune.data.published import read_hf_split

    if subset == TEXT_ONLY_CONFIG and split == "testmini":
        split = TEXT_ONLY_CONFIG
    return read_hf_split(path, subset, split)


def _metadata(row: dict) -> dict:
    meta = row.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise SkipRow(f"column 'metadata' is {type(meta).__name__}, expected a struct")
    return meta


def _choices(question: str, for_eval: str, answer: str) -> tuple[str, list[str], bool]:
    """(question stem, options, whether the options are only in the diagram) of a multi-choice row (rules
    in the module docstring)."""
    if not re.fullmatch(r"[A-Z]", answer):
        raise SkipRow(f"multi-choice answer {answer!r} is not an option letter")
    stem, options = split_inline_options(question) if question else (question, [])
    in_image = not options
    if in_image:  # the choices are in the diagram: letters only
        count = len(split_inline_options(for_eval)[1]) if for_eval else 0
        options = list(OPTION_LETTERS[:max(count or 4, OPTION_LETTERS.index(answer) + 1)])
    if OPTION_LETTERS.index(answer) >= len(options):
        raise SkipRow(f"answer {answer!r} is beyond the {len(options)} choices")
    return stem or IMAGE_ONLY_STEM, options, in_image


def _subtask(version: str, meta: dict, ctx: AdapterContext) -> str:
    by = option_choice(ctx, "subtask_by", SUBTASK_BY)
    if by == "version":
        return version
    value = meta.get(by)
    if not isinstance(value, str) or not value.strip():
        raise SkipRow(f"metadata.{by} missing")
    return value.strip()


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One MathVerse row -> one schema row (see the module docstring for the rules)."""
    version = text_field(row, "problem_version")
    if version not in VERSIONS:
        raise SkipRow(f"unknown problem_version {version!r}")
    qtype = text_field(row, "question_type")
    if qtype not in QUESTION_TYPES:
        raise SkipRow(f"unknown question_type {qtype!r}")
    question, answer = text_field(row, "question", required=False), text_field(row, "answer")
    meta = _metadata(row)
    in_image = False
    if qtype == "multi-choice":
        for_eval = text_field(row, "question_for_eval", required=False)
        question, options, in_image = _choices(question, for_eval, answer)
        answer_type = "choice"
    else:
        answer, answer_type = answer_kind(answer, [])
        options, question = [], question or IMAGE_ONLY_STEM
    image = row.get("image")
    if version == "Text Only":
        images = []
    elif image in (None, "") or (isinstance(image, dict) and not (image.get("bytes") or image.get("path"))):
        raise SkipRow("no image")
    else:
        images = [image_ref(image, ctx, "image")]
    index = text_field(row, "sample_index")
    extra = {"scoring": {"judge": "rule"}, "problem_index": row.get("problem_index"), "problem_version": version,
             "question_type": qtype, "subject": meta.get("subject"), "subfield": meta.get("subfield"),
             "source": meta.get("source"), "options_in_image": in_image}
    return {"id": f"mathverse/text_only/{index}" if version == "Text Only" else f"mathverse/{index}",
            "domain": ctx.domain, "subtask": _subtask(version, meta, ctx), "images": images, "video": [],
            "question": question, "options": options, "answer": answer, "answer_type": answer_type, "cot": "",
            "source": "AI4Math/MathVerse", "meta": json.dumps(extra)}
