"""VSI-Bench (``nyu-visionx/VSI-Bench``, "Thinking in Space"; evaluation: ``test``, 5,130 questions on
288 videos).

SOURCE: the dataset card and repo files (``test-00000-of-00001.parquet`` with columns id, dataset
(arkitscenes | scannet | scannetpp), scene_name, question_type, question, ground_truth, options; the
videos as ``arkitscenes.zip``, ``scannet.zip``, ``scannetpp.zip``) and the official evaluator
(vision-x-nyu/thinking-in-space, same code in lmms-eval ``tasks/vsibench/utils.py``): a video is
``<dataset>/<scene_name>.mp4`` after unzipping; multiple-choice types (``object_rel_direction_{easy,
medium,hard}``, ``object_rel_distance``, ``route_planning``, ``obj_appearance_order``) score exact letter
match, numeric types (``object_counting``, ``object_abs_distance``, ``object_size_estimation``,
``room_size_estimation``) score MRA over θ = linspace(.5, .95, 10) with ``err <= 1 - θ``; the overall is
the mean of the 8 per-type scores, rel. direction being the mean of its 3 difficulties.

Choices made here:
* subtask = the question type, the 3 rel. direction difficulties merged into ``object_rel_direction``
  (the paper's 8 types); the difficulty is ``meta["variant"]``, so that subtask's score is the mean over
  its difficulties and ``domain.aggregate=macro`` (the default in ``conf/domain/vsibench.yaml``) is the
  official overall (`dualtune.aggregates`).
* numeric golds -> ``number`` with ``scoring.metric = "mra_vsibench"`` (the official inclusive float
  boundary, `dualtune.prompting.numbers.mean_relative_accuracy`); choices -> ``choice`` with the "A. "
  prefixes of ``options`` removed (dualtune's templates letter them again) and ``ground_truth`` as the
  gold letter. The official extractor takes the first word of the reply (``fuzzy_matching``); dualtune's
  reads the answer block, so "(A)" or "3.5m" earn credit here and not there (noted, not reproduced).
* the video: ``{video_dir}/<dataset>/<scene_name>.mp4`` (``domain.options.video_dir``, default the
  snapshot dir); when missing, the member is extracted once from ``<snapshot>/<dataset>.zip`` to that
  place (the layout lmms-eval unzips to). A hub id (no local snapshot) is downloaded with
  ``huggingface_hub.snapshot_download``. A missing or undecodable video is a counted skip. Frames are
  sampled when encoding (``options.video_fps`` / ``video_max_frames`` / ``video_max_pixels``,
  `dualtune.data.video`).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import zipfile
from pathlib import Path

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.video import VideoError, probe_video, video_options
from dualtune.schema import OPTION_LETTERS

REQUIRED_COLUMNS = ("id", "dataset", "scene_name", "question_type", "question", "ground_truth")
NUMERIC_TYPES = ("object_counting", "object_abs_distance", "object_size_estimation", "room_size_estimation")
CHOICE_TYPES = ("object_rel_distance", "route_planning", "obj_appearance_order")
DIRECTION = "object_rel_direction"
VARIANTS = ("easy", "medium", "hard")
DATASETS = ("arkitscenes", "scannet", "scannetpp")
_LETTERED = re.compile(r"^\s*([A-Z])\s*[.)]\s*(.*)$", re.DOTALL)


@functools.lru_cache(maxsize=8)
def snapshot_root(repo_id: str) -> Path:
    """The local snapshot of a hub dataset repo (downloaded once; offline mode uses the cached copy)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type="dataset"))


def video_root(ctx: AdapterContext, repo: str) -> Path:
    """Where ``<dataset>/<scene>.mp4`` live: ``options.video_dir``, else the snapshot dir."""
    if ctx.options.get("video_dir"):
        return Path(ctx.options["video_dir"])
    return ctx.root if ctx.root is not None else snapshot_root(repo)


def locate_video(root: Path, zips_root: Path, dataset: str, scene: str) -> Path:
    """``root/<dataset>/<scene>.mp4``; extracted from ``zips_root/<dataset>.zip`` when only the zip is there."""
    target = root / dataset / f"{scene}.mp4"
    archive = zips_root / f"{dataset}.zip"
    if target.is_file() or not archive.is_file():
        return target
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if n == f"{dataset}/{scene}.mp4" or n.endswith(f"/{scene}.mp4")
                 or n == f"{scene}.mp4"]
        if names:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".mp4.part")
            with zf.open(names[0]) as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
            partial.replace(target)
    return target


def _video_spec(row: dict, ctx: AdapterContext, repo: str) -> dict:
    """``meta["video"]`` of a row: its file (probed, never decoded here) and the sampling settings."""
    dataset, scene = str(row.get("dataset") or ""), str(row.get("scene_name") or "")
    if dataset not in DATASETS or not scene:
        raise SkipRow(f"unknown dataset/scene {dataset!r}/{scene!r}")
    root = video_root(ctx, repo)
    zips = ctx.root if ctx.root is not None else snapshot_root(repo)
    path = locate_video(root, zips, dataset, scene)
    try:
        probe_video(str(path))
    except VideoError as err:
        raise SkipRow("missing video file" if "missing" in str(err) else "undecodable video") from err
    return {"path": str(path.resolve()), **video_options(ctx.options)}


def unlettered(options, letters_required: bool = True) -> list[str]:
    """Option texts without their "A. " prefixes; the k-th option must carry the k-th letter (else a skip)."""
    if not isinstance(options, (list, tuple)) or not options or not all(isinstance(o, str) for o in options):
        raise SkipRow(f"options must be a non-empty list of strings, got {type(options).__name__}")
    out = []
    for k, option in enumerate(options):
        match = _LETTERED.match(option)
        if match and match.group(1) == OPTION_LETTERS[k]:
            out.append(match.group(2).strip())
        elif letters_required:
            raise SkipRow("an option lacks its letter prefix")
        else:
            out.append(option.strip())
    return out


def _question_type(row: dict) -> tuple[str, str | None]:
    """(subtask, variant): the 3 rel. direction difficulties merged into one type."""
    qtype = str(row.get("question_type") or "")
    if qtype in NUMERIC_TYPES or qtype in CHOICE_TYPES:
        return qtype, None
    for variant in VARIANTS:
        if qtype == f"{DIRECTION}_{variant}":
            return DIRECTION, variant
    raise SkipRow(f"unknown question_type {qtype!r}")


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One VSI-Bench row -> one schema row (see the module docstring for the rules)."""
    subtask, variant = _question_type(row)
    gold = str(row.get("ground_truth") or "").strip()
    meta = {"question_type": row.get("question_type"), "dataset": row.get("dataset"),
            "scene_name": row.get("scene_name")}
    if variant:
        meta["variant"] = variant
    if subtask in NUMERIC_TYPES:
        try:
            float(gold)
        except ValueError:
            raise SkipRow("numeric ground_truth is not a number") from None
        options, answer_type, meta["scoring"] = [], "number", {"metric": "mra_vsibench"}
    else:
        options, answer_type = unlettered(row.get("options")), "choice"
        if len(gold) != 1 or gold not in OPTION_LETTERS[: len(options)]:
            raise SkipRow("ground_truth is not one of the option letters")
    meta["video"] = _video_spec(row, ctx, "nyu-visionx/VSI-Bench")
    return {"id": f"vsibench/{row['id']}", "domain": ctx.domain, "subtask": subtask, "images": [], "video": [],
            "question": str(row["question"]).strip(), "options": options, "answer": gold,
            "answer_type": answer_type, "cot": "", "source": "nyu-visionx/VSI-Bench", "meta": json.dumps(meta)}
