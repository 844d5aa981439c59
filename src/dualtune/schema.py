"""One sample schema for every data source, and the validator that guards it.

Every loader (the procedural lab, real HF datasets) produces rows with exactly these columns.
Bad rows never crash training: `validate_rows` turns them into counted, logged skips
(or raises `SampleError` when ``strict=True``), naming the row id.

Images: loaders hand over images undecoded: lazy `dualtune.utils.image_refs.ImageRef` s into the dataset's
Arrow files (``datasets`` ``{"bytes", "path"}`` dicts, paths and PIL images are accepted too). The validator
decodes every image and video frame once to check it, so a corrupt image (``undecodable_image``) or a missing
image file (``missing_image_file``) is a skip (or a strict error) for that row instead of a crash inside
``datasets``, and keeps the row's images as given (undecoded: memory does not grow with the dataset's
pixels); `decode_image` decodes one at use (``decode_images=True`` returns PIL images instead).

Duplicate ids, within one split (the rule ``validate_rows`` applies, lab and HF alike):

* exact duplicates (same id, same content — every field, images by content) keep the first row;
  the others are skipped and counted as ``duplicate_row``, in strict mode too;
* the same id with different content is an error naming the ids with ``strict=True``; otherwise
  the first row of each id is kept, the others are skipped, counted as ``conflicting_duplicate_id``,
  and a warning lists the ids.

An id present in two splits (train and test) is only reported: `warn_split_overlap` logs a warning
with the count (possible leakage); the rows are kept.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from datasets import Features, Image, Sequence, Value

from dualtune.utils.hashing import stable_hash, visual_digest
from dualtune.utils.image_refs import ImageRef

log = logging.getLogger(__name__)

ANSWER_TYPES = ("choice", "number", "text", "math")
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

FEATURES = Features(
    {
        "id": Value("string"),
        "domain": Value("string"),
        "subtask": Value("string"),
        "images": Sequence(Image()),
        "video": Sequence(Image()),
        "question": Value("string"),
        "options": Sequence(Value("string")),
        "answer": Value("string"),
        "answer_type": Value("string"),
        "cot": Value("string"),
        "source": Value("string"),
        # Free-form per-sample metadata, JSON-encoded (e.g. {"language_prior": true}). The key "cot_answer",
    # when present, is the answer the CoT target concludes with (if it differs from the DA answer).
        "meta": Value("string"),
    }
)


class SampleError(ValueError):
    """A row that violates the sample schema; the message names the row id and the problem."""


# Optional per-row key set by ``selection=boundary`` (curation route reasoning -> "cot", direct -> "direct"):
# the row trains (SFT) and rolls out (GRPO) in that mode only, whatever the run's ``mode``.
TRAIN_MODE_KEY = "train_mode"


def row_modes(row: dict, modes) -> tuple[str, ...]:
    """The answer modes ``row`` is used in: its ``TRAIN_MODE_KEY`` when set, else ``modes``."""
    return (row[TRAIN_MODE_KEY],) if row.get(TRAIN_MODE_KEY) else tuple(modes)


def option_letter(index: int) -> str:
    """Letter for the option at ``index`` (0 -> 'A')."""
    return OPTION_LETTERS[index]


def decode_image(img):
    """A loaded PIL image from a PIL image, a lazy `ImageRef`, a ``datasets`` ``{"bytes", "path"}`` dict or a
    file path.

    Decoding is ``datasets.Image().decode_example`` (bytes, local or hub paths); raises on failure
    (``FileNotFoundError`` for a missing file).
    """
    from PIL import Image as PILImage

    if isinstance(img, ImageRef):
        img = img.encoded()
    if isinstance(img, PILImage.Image):
        img.load()
    elif isinstance(img, (dict, str)):
        img = Image().decode_example(img)
    else:
        raise TypeError(f"not an image: {type(img).__name__}")
    if img.size[0] <= 0 or img.size[1] <= 0:
        raise ValueError(f"empty image {img.size}")
    return img


def decode_visuals(row: dict, keep: bool = True) -> tuple[dict, str | None, str | None]:
    """Decode every image and video frame of ``row``: ``(row with them as PIL images, None, None)``, or with
    ``keep=False`` the row unchanged once each decoded (a check: the decoded pixels are dropped at once);
    ``(row, reason, detail)`` when one does not decode (reason ``missing_image_file`` or ``undecodable_image``)."""
    decoded = {}
    for key in ("images", "video"):
        decoded[key] = []
        for k, img in enumerate(row.get(key) or []):
            try:
                image = decode_image(img)
            except FileNotFoundError as err:
                return row, "missing_image_file", f"{key}[{k}]: {err}"
            except Exception as err:  # noqa: BLE001 - any decode failure means "undecodable"
                return row, "undecodable_image", f"{key}[{k}]: {type(err).__name__}: {err}"
            if keep:
                decoded[key].append(image)
    return (dict(row, **decoded) if keep else row), None, None


def _field_problem(row: dict) -> str | None:
    """The first non-image problem of ``row`` (a skip reason), or None."""
    if not str(row.get("id") or "").strip():
        return "missing_id"
    if not str(row.get("question") or "").strip():
        return "empty_question"
    answer = row.get("answer")
    if answer is None or not str(answer).strip():
        return "missing_answer"
    if row.get("answer_type") not in ANSWER_TYPES:
        return "bad_answer_type"
    options = list(row.get("options") or [])
    if row["answer_type"] == "choice":
        if not options:
            return "choice_without_options"
        letters = OPTION_LETTERS[: len(options)]
        if str(answer).strip() not in letters and not _multi_gold_ok(row, letters):
            return "answer_not_in_options"
    return None


def sample_meta(sample: dict) -> dict:
    """The decoded ``meta`` dict of a sample (a JSON string or a mapping; {} when empty); a ValueError naming
    the sample when it is not a JSON object."""
    meta = sample.get("meta") or {}
    if isinstance(meta, str):
        meta = json.loads(meta) if meta.strip() else {}
    if not isinstance(meta, Mapping):
        raise ValueError(f"sample {sample.get('id')!r}: meta must be a JSON object, found {type(meta).__name__}")
    return dict(meta)


def _multi_gold_ok(row: dict, letters: str) -> bool:
    """True for a choice gold that is a set of option letters ("A, C") under the ``multi`` scoring rule
    (``meta["scoring"]``, see `dualtune.prompting.rules`)."""
    try:
        rules = sample_meta(row).get("scoring") or {}
    except ValueError:
        return False
    parts = str(row.get("answer")).split(",")
    return bool(rules.get("multi")) and all(p.strip() in letters for p in parts)


def check_sample(row: dict) -> str | None:
    """Return None if ``row`` is valid, else a short reason string (used as the skip counter key)."""
    return _field_problem(row) or decode_visuals(row, keep=False)[1]


def row_digest(row: dict) -> str:
    """Hash of a row's whole content: every field, images and video frames by content."""
    fields = {k: v for k, v in row.items() if k not in ("images", "video")}
    return stable_hash({"fields": fields, "visual": visual_digest(row)}, length=32)


def duplicate_ids(rows) -> list:
    """Ids that occur more than once in ``rows``, in first-occurrence order."""
    counts = Counter(r["id"] for r in rows)
    return [i for i, c in counts.items() if c > 1]


@dataclass
class ValidationReport:
    """Counts of kept and skipped rows, with skip reasons and the first few offending ids."""

    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)
    max_examples: int = 20
    rows: list = field(default_factory=list)  # every skipped row as {"id", "reason"} (per-sample outputs list them)

    def skip(self, reason: str, rid) -> None:
        """Count one skipped row under ``reason`` (its id kept among the first ``max_examples``)."""
        self.skipped[reason] += 1
        self.rows.append({"id": rid, "reason": reason})
        ids = self.examples.setdefault(reason, [])
        if len(ids) < self.max_examples:
            ids.append(rid)

    @property
    def total_skipped(self) -> int:
        """Number of rows skipped for any reason."""
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One human-readable line, e.g. 'kept 98, skipped 2 (missing_answer=1, ...)'."""
        parts = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items()))
        return f"kept {self.kept}, skipped {self.total_skipped}" + (f" ({parts})" if parts else "")


def normalize_choice_answer(row: dict) -> dict:
    """If a choice row gives the answer as option text, rewrite it as the option letter."""
    options = list(row.get("options") or [])
    ans = str(row.get("answer") or "").strip()
    if row.get("answer_type") == "choice" and options and ans not in OPTION_LETTERS[: len(options)]:
        for i, opt in enumerate(options):
            if ans.lower() == str(opt).strip().lower():
                row = dict(row, answer=option_letter(i))
                break
    return row


def validate_rows(rows, strict: bool = False, name: str = "data", decode_images: bool = False):
    """Validate rows; return (valid_rows, ValidationReport). Raises SampleError if ``strict``.

    Every image / video frame is decoded once to check it; the valid rows keep their images as given
    (lazy `ImageRef` s from the loaders), or, with ``decode_images``, as decoded PIL images. Duplicate ids
    follow the rule in this module's docstring.
    """
    report = ValidationReport()
    kept = []
    for i, row in enumerate(rows):
        row = normalize_choice_answer(row if isinstance(row, dict) else dict(row))  # a copy only when rewritten
        reason, detail = _field_problem(row), None
        if reason is None:
            row, reason, detail = decode_visuals(row, keep=decode_images)
        if reason is None:
            kept.append(row)
            continue
        rid = row.get("id") or f"<row {i}>"
        if strict:
            raise SampleError(f"{name}: sample {rid!r} is invalid: {reason}" + (f" ({detail})" if detail else ""))
        report.skip(reason, rid)
    kept = _drop_duplicate_ids(kept, report, strict, name)
    report.kept = len(kept)
    if report.total_skipped:
        log.warning("%s: %s; skipped ids by reason: %s", name, report.summary(), report.examples)
    return kept, report


def _drop_duplicate_ids(rows: list[dict], report: ValidationReport, strict: bool, name: str) -> list[dict]:
    """Apply the duplicate-id rule (module docstring) to valid rows; skips are counted in ``report``."""
    dups = set(duplicate_ids(rows))
    if not dups:
        return rows
    first, out, conflicting = {}, [], []
    for row in rows:
        rid = row["id"]
        if rid not in dups:
            out.append(row)
            continue
        digest = row_digest(row)
        if rid not in first:
            first[rid] = digest
            out.append(row)
        elif digest == first[rid]:
            report.skip("duplicate_row", rid)
        else:
            conflicting.append(rid)
            report.skip("conflicting_duplicate_id", rid)
    if conflicting:
        ids = sorted(set(conflicting), key=conflicting.index)
        if strict:
            raise SampleError(f"{name}: {len(ids)} ids occur with different content: {ids[:20]}")
        log.warning("%s: %d ids occur with different content; kept the first row of each, skipped %d: %s",
                    name, len(ids), len(conflicting), ids[:20])
    return out


def warn_split_overlap(splits: dict, name: str = "data") -> list:
    """Ids present in more than one split (e.g. train and test: possible leakage), logged as a warning with
    their count; the rows are kept. Returns the shared ids."""
    seen, shared = {}, []
    for split, rows in splits.items():
        for rid in dict.fromkeys(r["id"] for r in rows):
            if rid in seen and seen[rid] != split and rid not in shared:
                shared.append(rid)
            seen.setdefault(rid, split)
    if shared:
        log.warning("%s: %d ids occur in more than one split of %s (leakage?): %s", name, len(shared),
                    sorted(splits), shared[:20])
    return shared
