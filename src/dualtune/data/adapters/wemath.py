"""We-Math (``We-Math/We-Math``; evaluation: ``testmini``, 1,740 questions).

SOURCE: the dataset card and the loaders that read it (lmms-eval's ``wemath`` task: ``dataset_path:
We-Math/We-Math``, ``test_split: testmini``, the image in ``image_path``, the prompt ``question + "\\n" +
option``) and the official repository (We-Math/We-Math: ``data/testmini.json`` with the same fields, and
``evaluation/accuracy.py`` / ``four_dimensional_metrics.py``). Columns: ``ID`` (e.g. ``2steps_1``: a
problem, shared by its sub-questions), ``split``, ``knowledge concept`` (``;``-joined for multi-step
questions), ``question``, ``option`` (one string: ``"A. 300, 400;B. 400, 300; ...; E. No correct answer"``),
``answer`` (a letter), ``image_path`` (Image), ``key`` (``2steps_1``, ``2steps_2``, ``2steps_multi``,
``3steps_1`` .. ``3steps_multi``: which sub-question of the problem), ``question number`` (1..1740),
``knowledge concept description``.

Choices made here:
* per-question accuracy. The four-dimensional metrics (IK / IG / CM / RM, loose and strict), which join a
  problem's sub-questions by ``ID``, are out of scope; ids are ``wemath/<ID>/<key>`` so they can be
  joined later from predictions.jsonl.
* subtask (``options.subtask_by``): ``steps`` (default) = the headline columns of the official
  ``accuracy.py``: ``S1`` (one-step: every ``*steps_<n>`` sub-question), ``S2`` (``2steps_multi``),
  ``S3`` (``3steps_multi``); ``key`` = the published ``key`` as is (7 values); ``knowledge_concept`` = the
  ``knowledge concept`` string (67 leaf concepts; a multi-step question keeps its joined list). The
  official per-domain columns need ``knowledge_structure_nodes.json``, which the dataset does not ship.
* options: the ``option`` string split at ``;`` before each ``X.`` label (labels A, B, C, ... in order);
  a string that does not parse, a non-string column, or a gold letter that is not a label is a counted
  skip naming the column. The options include the benchmark's own "No correct answer" option.
* scoring: ``choice`` with dualtune's extractor. The official ``accuracy.py`` is rule-based (no LLM
  judge): the first character after the last "Answer" (after removing ``<>:.``) if it is a letter A-H.
  Responses like "Answer: C" score alike; dualtune also reads ``<answer>C</answer>`` and "Answer: (C)",
  which that rule scores 0.
"""

from __future__ import annotations

import json
import re

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.training_sets import image_ref, option_choice, text_field
from dualtune.schema import OPTION_LETTERS

REQUIRED_COLUMNS = ("ID", "question", "option", "answer", "image_path", "key")
SUBTASK_BY = ("steps", "key", "knowledge_concept")
KEY = re.compile(r"([23])steps_([123]|multi)")
_LABEL = re.compile(r"(?:^|;)\s*([A-H])\.\s*")


def parse_options(option: str) -> list[str]:
    """Option texts of a We-Math ``option`` string ("A. 1 cm;B. 1.5 cm; C. ..."); SkipRow when the labels
    are not A, B, C, ... in order, or an option is empty."""
    labels = list(_LABEL.finditer(option))
    if len(labels) < 2 or option[:labels[0].start()].strip() or [m.group(1) for m in labels] != list(
            OPTION_LETTERS[:len(labels)]):
        raise SkipRow(f"column 'option' does not list options 'A. ..;B. ..': {option[:60]!r}")
    ends = [m.start() for m in labels[1:]] + [len(option)]
    texts = [option[m.end():end].strip() for m, end in zip(labels, ends)]
    if not all(texts):
        raise SkipRow(f"column 'option' has an empty option: {option[:60]!r}")
    return texts


def _subtask(key: str, concept: str, ctx: AdapterContext) -> str:
    by = option_choice(ctx, "subtask_by", SUBTASK_BY)
    if by == "key":
        return key
    if by == "knowledge_concept":
        if not concept:
            raise SkipRow("column 'knowledge concept' is empty")
        return concept
    steps, part = KEY.fullmatch(key).groups()
    return f"S{steps}" if part == "multi" else "S1"


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One We-Math row -> one schema row (see the module docstring for the rules)."""
    key = text_field(row, "key")
    if not KEY.fullmatch(key):
        raise SkipRow(f"unknown key {key!r}")
    option = row.get("option")
    if not isinstance(option, str):
        raise SkipRow(f"column 'option' is {type(option).__name__}, expected a string 'A. ..;B. ..'")
    options = parse_options(option)
    answer = text_field(row, "answer")
    if answer not in OPTION_LETTERS[:len(options)]:
        raise SkipRow(f"answer {answer!r} is not one of the option letters A-{OPTION_LETTERS[len(options) - 1]}")
    if not row.get("image_path"):
        raise SkipRow("no image")
    concept = text_field(row, "knowledge concept", required=False)
    extra = {"problem": text_field(row, "ID"), "key": key, "knowledge_concept": concept,
             "question_number": row.get("question number")}
    return {"id": f"wemath/{extra['problem']}/{key}", "domain": ctx.domain, "subtask": _subtask(key, concept, ctx),
            "images": [image_ref(row["image_path"], ctx, "image_path")], "video": [],
            "question": text_field(row, "question"), "options": options, "answer": answer, "answer_type": "choice",
            "cot": "", "source": "We-Math/We-Math", "meta": json.dumps(extra)}
