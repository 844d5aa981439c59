"""CV-Bench (``nyu-visionx/CV-Bench``, Cambrian-1; evaluation: ``test``, 2,638 questions).

SOURCE: the dataset card (files ``test_2d.parquet`` / ``test_3d.parquet`` with ``.jsonl`` twins and an
``img/`` folder; HF configs ``default`` = both, ``2D``, ``3D``, split ``test``; columns idx, type (2D | 3D),
task (Count | Relation | Depth | Distance), image, question, choices, answer ("(C)"), prompt, filename,
source (ADE20K | COCO | Omni3D), source_dataset, source_filename, target_class, target_size, bbox) and
lmms-eval's ``cv_bench`` task (``cv_bench/utils.py``: ``cv_bench_process_results`` strips the parentheses
of ``answer`` and compares option letters; ``cv_bench_default_aggregate_results`` is the card's
``((ADE20K + COCO) / 2 + Omni3D) / 2``).

Choices made here:
* subtask = ``task`` (Count, Relation: 2D from ADE20K / COCO; Depth, Distance: 3D from Omni3D);
  ``meta["group"] = [type, source]``, so ``domain.aggregate=cvbench`` gives Cambrian's number (mean of
  the 2D accuracy, itself the mean over its two sources, and the 3D accuracy; `dualtune.aggregates`).
  ``conf/domain/cvbench.yaml`` defaults to ``weighted``: the Dual Tuning paper's CV-Bench row is the
  sample-weighted mean of the four tasks (788/650/600/600).
* the question is ``question`` with ``choices`` as the options (the dataset's ``prompt`` repeats them with
  its own instruction; dualtune's mode templates add theirs); the gold is the letter inside "(C)".
* scoring is letter equality, as the official code; the official extractor reads the first letter of the
  reply (``_extract_answer_letter``), dualtune's extractor reads the answer block / the named option, so a
  reply like "The answer is (C)" scores 1 here and 0 there (noted, not reproduced).
* a row whose ``choices`` is not a list of strings, whose ``answer`` is not "(X)" with X among the
  choices, or whose ``image`` is empty is a counted skip naming the problem.
"""

from __future__ import annotations

import json
import re

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.schema import OPTION_LETTERS
from dualtune.utils.image_refs import ImageRef

REQUIRED_COLUMNS = ("idx", "type", "task", "question", "choices", "answer", "source")
TASKS = {"Count": "2D", "Relation": "2D", "Depth": "3D", "Distance": "3D"}
_GOLD = re.compile(r"^\(([A-Z])\)$")


def _choices(row: dict) -> list[str]:
    """``choices`` as a list of strings; anything else (e.g. one string) is a counted skip."""
    choices = row.get("choices")
    if not isinstance(choices, (list, tuple)) or not choices or not all(isinstance(c, (str, int, float))
                                                                        for c in choices):
        raise SkipRow(f"choices must be a non-empty list of strings, got {type(choices).__name__}")
    return [str(c) for c in choices]


def _image(row: dict, ctx: AdapterContext):
    """The question's image as stored (a lazy `ImageRef` or ``{"bytes", "path"}``), else ``filename`` inside
    the snapshot."""
    image = row.get("image")
    if isinstance(image, ImageRef) or (isinstance(image, dict) and (image.get("bytes") or image.get("path"))):
        return image
    if row.get("filename"):
        return {"bytes": None, "path": ctx.resolve(str(row["filename"]))}
    raise SkipRow("no image")


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One CV-Bench row -> one schema row (see the module docstring for the rules)."""
    task, kind = row.get("task"), row.get("type")
    if task not in TASKS or kind != TASKS[task]:
        raise SkipRow(f"unknown task/type {task!r}/{kind!r}")
    choices = _choices(row)
    gold = _GOLD.match(str(row.get("answer") or "").strip())
    if not gold or OPTION_LETTERS.index(gold.group(1)) >= len(choices):
        raise SkipRow("answer is not '(X)' with X among the choices")
    source = str(row.get("source") or "")
    if not source:
        raise SkipRow("no source")
    meta = {"group": [kind, source], "source_dataset": row.get("source_dataset"),
            "filename": row.get("filename"), "target_class": row.get("target_class")}
    return {"id": f"cvbench/{row['idx']}", "domain": ctx.domain, "subtask": task, "images": [_image(row, ctx)],
            "video": [], "question": str(row["question"]).strip(), "options": choices, "answer": gold.group(1),
            "answer_type": "choice", "cot": "", "source": "nyu-visionx/CV-Bench", "meta": json.dumps(meta)}
