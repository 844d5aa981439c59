"""ThinkLite-VL training sets: ``russwang/ThinkLite-VL-70k`` (the full pool, ``domain=thinklite_vl``) and
``russwang/ThinkLite-VL-hard-11k`` (the MCTS-selected hard subset, ``domain=thinklite_vl_hard``). One adapter,
two domain configs (the sets differ only in size and path). No test split, no rationales.

SOURCE: the ThinkLite-VL repository (si0wang/ThinkLite-VL, README links both hub datasets; ``mcts.py``
reads them), and loaders of the published parquet: columns ``id``, ``problem`` (the question, opening with
an ``<image>`` placeholder; ``mcts.py`` takes ``problem.split('<image>')[1]``), ``answer`` (the gold),
``image`` (the 11k parquet stores raw image bytes, read with ``Image.open(BytesIO(row['image']))``; an HF
``Image`` struct or a path is accepted too) and, in the 70k set, an optional ``choices`` column (null for
most rows). Read with ``datasets.load_dataset`` (hub id or a local snapshot of the repo).

Choices made here:
* question: ``problem`` without ``<image>`` placeholders.
* options: the ``choices`` list when present (a string holding a list is parsed, never split into
  characters; "A. " prefixes are dropped), else options written inside the question; the row is
  ``choice`` when the gold is one of their letters or texts, otherwise number / math / text by the gold's
  form (`dualtune.data.adapters.training_sets`).
* the official difficulty check (``mcts.py``) asks an LLM (Qwen2.5-7B-Instruct) whether the rationale and
  answer are correct; dualtune scores with its rule-based extractor and records ``scoring.judge = "rule"``.
* subtask: the row's own ``category`` / ``subject`` / ``source`` / ``data_source`` / ``task`` field when the
  parquet has one; the published files have none, so the fallback is the row's answer format (choice,
  number, math, text), which gives the Thinking-Boundary report one row per format.
  ``domain.options.subtask_field`` names another column.
* ``cot`` stays empty: the loader warns with the count (CoT training has no targets).
"""

from __future__ import annotations

import json

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.training_sets import (
    image_ref, list_field, strip_option_letters, subtask_of, text_field, typed_answer)

REQUIRED_COLUMNS = ("id", "problem", "answer", "image")
SOURCES = {"thinklite_vl": "russwang/ThinkLite-VL-70k", "thinklite_vl_hard": "russwang/ThinkLite-VL-hard-11k"}


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One ThinkLite-VL parquet row -> one schema row (rules in the module docstring)."""
    rid = text_field(row, "id")
    question = text_field(row, "problem").replace("<image>", " ").strip()
    if row.get("image") is None:
        raise SkipRow("no image")
    image = image_ref(row["image"], ctx, "image")
    raw_answer = text_field(row, "answer")
    listed = strip_option_letters(list_field(row, "choices"))
    question, options, answer, answer_type = typed_answer(question, raw_answer, listed)
    meta = {"scoring": {"judge": "rule"}, "answer_raw": raw_answer}
    return {"id": f"{ctx.domain}/{rid}", "domain": ctx.domain,
            "subtask": subtask_of(row, ctx, fallback=answer_type), "images": [image], "video": [],
            "question": question, "options": options, "answer": answer, "answer_type": answer_type, "cot": "",
            "source": SOURCES.get(ctx.domain, "russwang/ThinkLite-VL"), "meta": json.dumps(meta)}
