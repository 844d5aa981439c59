"""MathVista (``AI4Math/MathVista``; evaluation: ``testmini``, 1,000 questions).

SOURCE: the dataset card's features (pid, question, image (path str), decoded_image (Image), choices,
unit, precision, answer, question_type (multi_choice | free_form), answer_type (integer | float | text |
list), metadata{..., skills, task, ...}, query) and the official evaluation code (MathVista repo,
``evaluation/calculate_score.py``), which lmms-eval's ``mathvista`` task follows.

Choices made here:
* subtask = the question's first-listed skill, mapped to the Dual Tuning paper's 7 groups (Comm.,
  Scientific, Geometry, Arithmetic, Logical, Statistical, Algebraic). The paper's group sizes on
  testmini (144/112/232/220/37/191/64, sum 1,000) indicate a disjoint partition; "first skill" is the
  inferred rule (digest §3.2). ``options.skill_rule: all`` is not offered: a question counts once.
* the question text is ``question`` plus `` (Unit: u)`` when ``unit`` is set, as the official
  ``build_query`` does; the dataset's ``query`` (its own answer hint) is not used, the mode templates
  add dualtune's hints.
* multi_choice -> ``choice`` with the choices as options and the gold letter of ``answer`` among them;
  integer -> ``number`` (exact); float -> ``number`` with ``scoring.precision`` = the row's precision
  (the official evaluator rounds the prediction to it); list / text -> ``text`` (normalized equality,
  so "[1, 2]" matches "1, 2").
* the official evaluator extracts answers with GPT-4; dualtune uses its rule-based extractor and
  records ``scoring.judge = "rule"``.
"""

from __future__ import annotations

import json

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.schema import OPTION_LETTERS

REQUIRED_COLUMNS = ("pid", "question", "answer", "question_type", "answer_type", "metadata")
SKILL_GROUPS = {
    "numeric commonsense": "Comm.", "scientific reasoning": "Scientific", "geometry reasoning": "Geometry",
    "arithmetic reasoning": "Arithmetic", "logical reasoning": "Logical", "statistical reasoning": "Statistical",
    "algebraic reasoning": "Algebraic",
}


def _image(row: dict, ctx: AdapterContext):
    """The question's image: ``decoded_image`` (as stored), else the ``image`` path inside the snapshot."""
    if row.get("decoded_image"):
        return row["decoded_image"]
    if row.get("image"):
        return {"bytes": None, "path": ctx.resolve(row["image"])}
    raise SkipRow("no image")


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One MathVista row -> one schema row (see the module docstring for the rules)."""
    meta = row.get("metadata") or {}
    skills = list(meta.get("skills") or [])
    if not skills or skills[0] not in SKILL_GROUPS:
        raise SkipRow(f"unknown first skill {skills[:1]}")
    question = str(row["question"]).strip()
    if row.get("unit"):
        question += f" (Unit: {row['unit']})"
    scoring, options = {"judge": "rule"}, []
    answer, kind = str(row["answer"]).strip(), row.get("answer_type")
    if row.get("question_type") == "multi_choice":
        options = [str(c) for c in row.get("choices") or []]
        if answer not in options:
            raise SkipRow("multi_choice answer not among the choices")
        answer, answer_type = OPTION_LETTERS[options.index(answer)], "choice"
    elif kind == "integer":
        answer_type = "number"
    elif kind == "float":
        answer_type = "number"
        if row.get("precision") is not None:
            scoring["precision"] = int(row["precision"])
    elif kind in ("text", "list"):
        answer_type = "text"
    else:
        raise SkipRow(f"unknown answer_type {kind!r}")
    extra = {"scoring": scoring, "skills": skills, "task": meta.get("task"), "category": meta.get("category"),
             "source": meta.get("source"), "mathvista_answer_type": kind}
    return {"id": f"mathvista/{row['pid']}", "domain": ctx.domain, "subtask": SKILL_GROUPS[skills[0]],
            "images": [_image(row, ctx)], "video": [], "question": question, "options": options,
            "answer": answer, "answer_type": answer_type, "cot": "", "source": "AI4Math/MathVista",
            "meta": json.dumps(extra)}
