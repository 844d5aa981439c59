"""OneThinker SFT image data (``OneThink/OneThinker-train-data``, file ``onethinker_sft_image.json``): the
Dual Tuning paper's disciplinary training set "O" (math + multi-discipline), with ``<think>`` rationales
written by Seed1.5-VL. No test split.

SOURCE: the OneThinker repository (tulerfeng/OneThinker): README ("download the training datasets and
unzip all the data ... ``onethinker_sft_image.json`` and ``onethinker_sft_video.json`` is for SFT cold
start; the json files end with ``_unsampled`` are the unsampled full set") and its LLaMA-Factory entry
``data/dataset_info.json`` (``onethinker_sft_image``: ``formatting: sharegpt``, columns ``messages`` and
``images``, tags ``role`` / ``content`` / ``user`` / ``assistant``). So the file is a JSON array of
``{"messages": [{"role": "user", "content": "<image>question ..."}, {"role": "assistant", "content":
"<think>...</think><answer>...</answer>"}], "images": ["relative/path.jpg"], ...}``, image paths relative
to the directory holding the json (LLaMA-Factory's media dir). Read from a local snapshot::

    hf download OneThink/OneThinker-train-data --repo-type dataset --local-dir DIR   # then unzip the images
    python train.py domain=onethinker domain.path=DIR

``domain.subsets`` names the json file (default ``onethinker_sft_image``; ``onethinker_sft_image_unsampled``
for the full set).

Choices made here:
* the response is split at its tags: ``cot`` = the ``<think>`` content, ``answer`` = the ``<answer>``
  content (the text after ``</think>`` when there is no ``<answer>`` block; ``\\boxed{}`` / ``$`` removed);
  the CoT target is then rebuilt by dualtune's template, the DA target is the answer alone.
* question: the user turn without ``<image>`` placeholders and without OneThinker's instruction tail
  ("Please answer this question based on the visual content. ..."); options listed inside it ("Options:
  A. ..." or "Choices: (A) ...") become ``options`` when the gold is one of their letters.
* rows whose answer is a JSON structure (spatial grounding, segmentation, tracking: boxes and points) or
  whose ``problem_type`` names such a task are counted skips: dualtune has no answer type for them;
  rows with videos are counted skips (this is the image part).
* answer type per row by the gold's form (`dualtune.data.adapters.training_sets`), scored as OneThinker's
  RL reward (``EasyR1/verl/reward_function/onethinker_reward.py::accuracy_reward``) where dualtune can:
  choice by letter, math by math-verify equivalence, numbers with ``scoring.precision = 2`` (the reward
  compares ``round(x, 2)``); open-ended (``text``) rows are compared as normalized text and record
  ``scoring.judge = "rule"``: the reward for them is ROUGE or, optionally, a reward model (POLAR-7B).
* subtask: the row's own ``subject`` / ``category`` / ``data_source`` / ``source`` / ``task`` /
  ``problem_type`` field when present, else the answer format (choice, number, math, text);
  ``domain.options.subtask_field`` names another column.
* id: the row's ``id`` when it has one, else ``<file stem>#<position in the file>``.
"""

from __future__ import annotations

import json
import re

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.training_sets import (
    check_record, list_field, local_snapshot, read_json_records, split_think, subtask_of, text_field, typed_answer)

REQUIRED_COLUMNS = ("messages", "images")  # checked on the records `read` yields
DEFAULT_FILE = "onethinker_sft_image"
NON_QA_TASKS = ("spatial grounding", "temporal grounding", "spatial-temporal grounding", "tracking",
                "segmentation")
SUBTASK_FIELDS = ("subject", "category", "data_source", "source", "task", "problem_type")
_INSTRUCTION_TAIL = re.compile(r"\s*Please answer this question based on the visual content\..*$", re.S)


def read(path: str, subset, split: str):
    """Records of ``<subset>.json`` (default ``onethinker_sft_image.json``) in a local snapshot; a record
    without an ``id`` gets ``<file stem>#<position>``."""
    name = f"{subset or DEFAULT_FILE}.json"
    how = ("download OneThink/OneThinker-train-data, unzip its image archives in place and set "
           "domain.path=<that directory> (see src/dualtune/data/adapters/onethinker.py)")
    stem = name.removesuffix(".json")
    for record in read_json_records(local_snapshot(path, name, how) / name):
        yield record if record.get("id") is not None else dict(record, id=f"{stem}#{record['_row']}")


def _turns(messages) -> tuple[str, str]:
    """(first user content, the assistant content that follows it) of a sharegpt ``messages`` list."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise SkipRow(f"column 'messages' is {type(messages).__name__}, expected a list of turns")
    user = next((i for i, m in enumerate(messages) if m.get("role") == "user"), None)
    reply = next((m for m in messages[(user or 0) + 1:] if m.get("role") == "assistant"), None)
    if user is None or reply is None:
        raise SkipRow("no user turn followed by an assistant turn in 'messages'")
    for turn in (messages[user], reply):
        if not isinstance(turn.get("content"), str):
            raise SkipRow(f"{turn.get('role')} turn content is {type(turn.get('content')).__name__}, expected a string")
    return messages[user]["content"], reply["content"]


def _structured(answer: str) -> bool:
    """True for a JSON object / array answer (boxes, points, time spans)."""
    if not answer.startswith(("{", "[")):
        return False
    try:
        return isinstance(json.loads(answer), (dict, list))
    except ValueError:
        return False


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One OneThinker SFT record -> one schema row with the rationale as ``cot`` (rules in the docstring)."""
    check_record(row)
    problem_type = str(row.get("problem_type") or "").strip().lower()
    if problem_type in NON_QA_TASKS:
        raise SkipRow(f"non-QA task ({problem_type})")
    if list_field(row, "videos"):
        raise SkipRow("video row (this adapter reads the image part)")
    prompt, response = _turns(row.get("messages"))
    cot, raw_answer = split_think(response)
    if not raw_answer:
        raise SkipRow("empty answer in the assistant turn")
    if _structured(raw_answer):
        raise SkipRow("structured answer (grounding / segmentation / tracking output)")
    question = _INSTRUCTION_TAIL.sub("", prompt.replace("<image>", " ")).strip()
    question, options, answer, answer_type = typed_answer(question, raw_answer)
    rid = text_field(row, "id")
    meta = {"answer_raw": raw_answer}
    if answer_type == "text":
        meta["scoring"] = {"judge": "rule"}
    elif answer_type == "number":
        meta["scoring"] = {"precision": 2}  # accuracy_reward, "numerical": round(x, 2) equality
    images = [{"bytes": None, "path": ctx.resolve(p.removeprefix("file://"))} for p in list_field(row, "images")]
    return {"id": f"onethinker/{rid}", "domain": ctx.domain,
            "subtask": subtask_of(row, ctx, SUBTASK_FIELDS, fallback=answer_type), "images": images, "video": [],
            "question": question, "options": options, "answer": answer, "answer_type": answer_type, "cot": cot,
            "source": "OneThink/OneThinker-train-data", "meta": json.dumps(meta)}

