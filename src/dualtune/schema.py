"""One sample schema for every data source, and the validator that guards it.

Every loader (the procedural lab, real HF datasets) produces rows with exactly these columns.
Bad rows never crash training: `validate_rows` turns them into counted, logged skips
(or raises `SampleError` when ``strict=True``).
"""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass, field

from datasets import Features, Image, Sequence, Value

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


def _image_ok(img) -> bool:
    """True if ``img`` (PIL image, bytes dict or path dict as stored by datasets) decodes."""
    from PIL import Image as PILImage

    try:
        if isinstance(img, PILImage.Image):
            img.load()
            return img.size[0] > 0 and img.size[1] > 0
        if isinstance(img, dict):
            if img.get("bytes"):
                with PILImage.open(io.BytesIO(img["bytes"])) as im:
                    im.load()
                return True
            if img.get("path"):
                with PILImage.open(img["path"]) as im:
                    im.load()
                return True
        return False
    except Exception:  # noqa: BLE001 - any decode failure means "undecodable"
        return False


def check_sample(row: dict) -> str | None:
    """Return None if ``row`` is valid, else a short reason string (used as the skip counter key)."""
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
        if str(answer).strip() not in letters:
            return "answer_not_in_options"
    for img in list(row.get("images") or []) + list(row.get("video") or []):
        if not _image_ok(img):
            return "undecodable_image"
    return None


@dataclass
class ValidationReport:
    """Counts of kept and skipped rows, with skip reasons and the first few offending ids."""

    kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

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


def validate_rows(rows, strict: bool = False, name: str = "data"):
    """Validate rows; return (valid_rows, ValidationReport). Raises SampleError if ``strict``."""
    report = ValidationReport()
    kept = []
    for i, row in enumerate(rows):
        row = normalize_choice_answer(dict(row))
        reason = check_sample(row)
        if reason is None:
            kept.append(row)
            report.kept += 1
            continue
        rid = row.get("id") or f"<row {i}>"
        if strict:
            raise SampleError(f"{name}: sample {rid!r} is invalid: {reason}")
        report.skipped[reason] += 1
        report.examples.setdefault(reason, []).append(rid) if len(report.examples.get(reason, [])) < 5 else None
    if report.total_skipped:
        log.warning("%s: %s; examples: %s", name, report.summary(), report.examples)
    return kept, report
