"""SpaceR-151k (``RUBBISHLIKE/SpaceR-151k``, "SpaceR: Reinforcing MLLMs in Video Spatial Reasoning";
training only: SR-91k video spatial QA on ScanNet / ARKitScenes scenes plus 60k general image/video QA).

SOURCE: the SpaceR repository (OuyangKun10/SpaceR): the dataset ships as ``SpaceR-151k.part_00 .. _09``
that ``decompress.sh`` joins and untars into one directory; the trainers read its annotation file
(``--dataset_name SpaceR-151k.jsonl``; ``Dataset.from_json``) in the Video-R1 record format that
``open_r1/SG-RLVR.py`` and ``open_r1/sft.py`` consume: problem_id, problem, data_type (video | image),
problem_type (multiple choice | numerical | OCR | free-form | regression), options ("A. ..." strings,
multiple choice only), solution ("<answer>X</answer>"), path (the media file), data_source; a
``process`` ("<think>...</think>") is read when present (the CoT of Video-R1-style SFT data).
The reward (``accuracy_reward``): multiple choice = exact letter; numerical = MRA over θ =
linspace(.5, .95, 10) with ``err <= 1 - θ``; OCR = 1 - WER; free-form = mean ROUGE F; regression =
1 - relative error.

Choices made here:
* ``domain.path`` = the decompressed directory; ``options.annotation`` names the annotation file in it
  (default ``SpaceR-151k.jsonl``; ``.json`` lists work too); ``path`` is resolved inside that directory
  (absolute paths pass through). The dataset has no test split (``splits.test: null``): evaluate on
  benchmarks with ``eval.domains=[vsibench]``.
* subtask = ``question_type`` when the record has one (SR-91k's VSI-style types), else ``data_source``,
  else ``problem_type``.
* multiple choice -> ``choice`` (the "A. " prefixes removed, gold = the letter in the solution);
  numerical -> ``number`` scored with ``mra_vsibench`` (the reward's MRA); regression -> ``number``
  with ``mra_vsibench`` (dualtune has no 1 - relative-error metric; the closest dense score);
  OCR / free-form -> ``text``, normalized exact match, ``judge = "rule"`` (WER / ROUGE not reproduced).
* a video record shows its file through the model's video path (``meta["video"]``,
  `dualtune.data.video`; ``options.video_fps`` / ``video_max_frames`` / ``video_max_pixels``); an image
  record shows ``path`` as its image. Missing or undecodable media, an unknown problem_type, or a
  malformed solution / options are counted skips.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.vsibench import unlettered
from dualtune.data.video import VideoError, probe_video, video_options
from dualtune.schema import OPTION_LETTERS

REQUIRED_COLUMNS = ("problem_id", "problem", "data_type", "problem_type", "solution", "path")
DEFAULT_ANNOTATION = "SpaceR-151k.jsonl"
PROBLEM_TYPES = {"multiple choice": "choice", "numerical": "number", "regression": "number", "OCR": "text",
                 "free-form": "text"}
_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_THINK = re.compile(r"<think>\s*(.*?)\s*</think>", re.DOTALL)


def read(path: str, subset: str | None, split: str) -> Iterable[dict]:
    """The records of the annotation file (``subset`` overrides its name; default `DEFAULT_ANNOTATION`):
    JSON Lines or one JSON list. A line that is not a JSON object is an error naming the file and line."""
    file = Path(path) / (subset or DEFAULT_ANNOTATION)
    if not file.is_file():
        raise FileNotFoundError(f"SpaceR-151k: annotation file {file} not found; domain.path must be the "
                                f"decompressed SpaceR-151k directory (decompress.sh), domain.subsets the file name")
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".json":
        records = json.loads(text)
        if not isinstance(records, list):
            raise ValueError(f"{file}: expected a JSON list of records, got {type(records).__name__}")
        yield from records
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{file}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{file}:{number}: expected a JSON object, got {type(record).__name__}")
        yield record


def _media(row: dict, ctx: AdapterContext) -> tuple[list, dict | None]:
    """(images, video spec) of a record: its ``path`` as an image, or as a probed video file."""
    if not isinstance(row.get("path"), str) or not row["path"].strip():
        raise SkipRow("no media path")
    file = Path(ctx.resolve(row["path"].strip()))
    if row.get("data_type") == "image":
        return [{"bytes": None, "path": str(file)}], None
    if row.get("data_type") != "video":
        raise SkipRow(f"unknown data_type {row.get('data_type')!r}")
    try:
        probe_video(str(file))
    except VideoError as err:
        raise SkipRow("missing video file" if "missing" in str(err) else "undecodable video") from err
    return [], {"path": str(file.resolve()), **video_options(ctx.options)}


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One SpaceR-151k record -> one schema row (see the module docstring for the rules)."""
    kind = row.get("problem_type")
    if row.get("problem_id") is None:
        raise SkipRow("no problem_id")
    if kind not in PROBLEM_TYPES:
        raise SkipRow(f"unknown problem_type {kind!r}")
    solution = row.get("solution")
    match = _ANSWER.search(solution) if isinstance(solution, str) else None
    answer = (match.group(1) if match else str(solution or "")).strip()
    if not answer:
        raise SkipRow("empty solution")
    answer_type, options, scoring = PROBLEM_TYPES[kind], [], {}
    if answer_type == "choice":
        options = unlettered(row.get("options"))
        answer = answer.strip("().").upper()
        if len(answer) != 1 or answer not in OPTION_LETTERS[: len(options)]:
            raise SkipRow("solution is not one of the option letters")
    elif answer_type == "number":
        try:
            float(answer.replace(",", ""))
        except ValueError:
            raise SkipRow("numeric solution is not a number") from None
        answer, scoring = answer.replace(",", ""), {"metric": "mra_vsibench"}
    else:
        scoring = {"judge": "rule"}
    images, video = _media(row, ctx)
    process = row.get("process")
    think = _THINK.search(process) if isinstance(process, str) else None
    cot = (think.group(1) if think else str(process or "")).strip()
    subtask = str(row.get("question_type") or row.get("data_source") or kind)
    meta = {"scoring": scoring, "problem_type": kind, "data_source": row.get("data_source"),
            "path": row.get("path")}
    if video is not None:
        meta["video"] = video
    return {"id": f"spacer/{row.get('problem_id')}", "domain": ctx.domain, "subtask": subtask, "images": images,
            "video": [], "question": str(row.get("problem") or "").strip(), "options": options, "answer": answer,
            "answer_type": answer_type, "cot": cot, "source": "RUBBISHLIKE/SpaceR-151k", "meta": json.dumps(meta)}
