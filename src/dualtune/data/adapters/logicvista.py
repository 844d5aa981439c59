"""LogicVista (448 questions; evaluation only).

SOURCE: the owners publish it as the GitHub repository ``Yijia-Xiao/LogicVista`` (README, ``data/README.md``):
``data/dataset.json``, one object keyed by question id (``v1_0``, ...) with imagename, question, answer,
reasoning, skill (list: inductive | deductive | numerical | spatial | mechanical), capability (list, e.g.
diagram, ocr), imagesource, sourcelink; and the images in ``data/images/<imagename>``. The options are drawn
in the image (sometimes also listed in the question); ``answer`` is one label or several ("A, C"), and a
few questions are labelled with digits ("Select from 1-5", answer "3"). Evaluation: VLMEvalKit
(``vlmeval/dataset/utils/logicvista.py``): an LLM extracts the chosen labels, both sides are normalized to
their sorted lower-cased labels and must be equal (``normalize_logicvista_answer``; "A, C" == "C, A",
"A" != "A, C"); accuracy is reported per skill (the paper's 5 reasoning tasks). The hub mirror
``lscpku/LogicVista`` (lmms-eval's reasoning task) is a re-packaging whose card could not be checked, so
it is not read here: ``domain.path`` is a clone of the GitHub repository (its root or its ``data/``).

Choices made here:
* subtask = the first listed skill (a question counts once); meta keeps every skill and capability, the
  reasoning text and the source.
* letter labels -> ``choice`` with empty option texts (rendered as "Options: A, B, C, D"); the label
  count is the largest letter named in the question's ranges / lists ("A-E", "A to F", "(A, B, C, or D)",
  "A) 10 B) 12") or in the gold, at least D (a wrong letter beyond it scores 0 either way).
* digit labels -> ``choice`` with option texts "1".."N" (N from "1-5" ranges and the gold): the model may
  name the digit or its letter.
* several gold labels -> the ``multi`` rule (`dualtune.prompting.rules`): the answer is the sorted set
  ("A, C") and the prediction must name exactly that set, in any order ("C and A"), as VLMEvalKit's
  comparison does. A gold that is not a set of one-character labels is a counted skip.
* the LLM extraction is replaced by dualtune's rule-based extractor: ``scoring.judge = "rule"``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.schema import OPTION_LETTERS

REQUIRED_COLUMNS = ("imagename", "question", "answer", "skill")  # checked on the rows `read` yields
SKILLS = ("inductive", "deductive", "numerical", "spatial", "mechanical")
_RANGE = re.compile(r"(?<![A-Za-z0-9])([A-Z1-9])\s*(?:-|–|to|through)\s*([A-Z1-9])(?![A-Za-z0-9])")
_LIST = re.compile(r"(?<![A-Za-z])[A-Z](?:\s*(?:,\s*(?:or\s+|and\s+)?|\s+or\s+|\s+and\s+)[A-Z](?![A-Za-z]))+")
_MARKED = re.compile(r"(?<![A-Za-z])([A-Z])\)")


def _data_dir(path: str) -> Path:
    """The folder holding ``dataset.json`` and ``images/``: ``path`` itself or ``path/data``."""
    root = Path(path)
    for candidate in (root, root / "data"):
        if (candidate / "dataset.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"LogicVista: no dataset.json under {path!r}. It is published as the GitHub repository "
        "Yijia-Xiao/LogicVista (data/dataset.json + data/images/): clone it and set domain.path to the clone")


def read(path: str, subset: str | None, split: str):
    """Rows of the owners' ``dataset.json`` (all 448 questions form the one evaluation split), each with
    its ``id`` and the absolute ``image_path``."""
    data = _data_dir(path)
    table = json.loads((data / "dataset.json").read_text(encoding="utf-8"))
    if not isinstance(table, dict):
        raise TypeError(f"LogicVista dataset.json must map question ids to questions, found {type(table).__name__}")
    for qid, row in table.items():
        if not isinstance(row, dict):
            raise TypeError(f"LogicVista dataset.json[{qid!r}] must be an object, found {type(row).__name__}")
        image = row.get("imagename")
        yield dict(row, id=qid, image_path=str(data / "images" / image) if image else None)


def gold_labels(answer: str) -> list[str]:
    """The labels of a published answer ("A, C" -> ["A", "C"]; "3" -> ["3"]); `SkipRow` when it is not a set
    of one-character letter or digit labels of one kind."""
    tokens = [t for t in re.split(r"[\s,;&/]+|\band\b", str(answer).strip()) if t]
    if not tokens or any(len(t) != 1 for t in tokens):
        raise SkipRow("answer is not a set of option labels")
    letters, digits = all(t in OPTION_LETTERS for t in tokens), all(t in "123456789" for t in tokens)
    if not (letters or digits):
        raise SkipRow("answer is not a set of option labels")
    return sorted(set(tokens))


def _label_count(question: str, gold: list[str]) -> int:
    """How many labels the question offers (see the module docstring)."""
    named = [label for pair in _RANGE.findall(question) for label in pair] + list(gold)
    if gold[0].isdigit():
        return max(int(label) for label in named if label.isdigit())
    named += [c for match in _LIST.findall(question) for c in re.findall(r"[A-Z]", match)]
    named += _MARKED.findall(question)
    return max([4] + [OPTION_LETTERS.index(label) + 1 for label in named if label in OPTION_LETTERS])


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One LogicVista question -> one schema row (see the module docstring for the rules)."""
    skills = list(row.get("skill") or [])
    if not skills or skills[0] not in SKILLS:
        raise SkipRow(f"unknown first skill {skills[:1]}")
    if not row.get("image_path"):
        raise SkipRow("no image")
    question = str(row.get("question") or "").strip()
    gold = gold_labels(row.get("answer", ""))
    n = _label_count(question, gold)
    if gold[0].isdigit():
        options, letters = [str(i) for i in range(1, n + 1)], [OPTION_LETTERS[int(d) - 1] for d in gold]
    else:
        options, letters = [""] * n, gold
    scoring = {"judge": "rule", **({"multi": True} if len(letters) > 1 else {})}
    extra = {"scoring": scoring, "skills": skills, "capability": row.get("capability"),
             "reasoning": row.get("reasoning"), "imagesource": row.get("imagesource"),
             "logicvista_answer": row.get("answer")}
    return {"id": f"logicvista/{row['id']}", "domain": ctx.domain, "subtask": skills[0],
            "images": [{"bytes": None, "path": row["image_path"]}], "video": [], "question": question,
            "options": options, "answer": ", ".join(letters), "answer_type": "choice",
            "cot": "", "source": "Yijia-Xiao/LogicVista", "meta": json.dumps(extra)}
