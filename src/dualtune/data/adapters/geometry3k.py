"""Geometry3K as peers train GRPO on it (``hiyouga/geometry3k``: train 2,101 / validation 300 / test 601),
the small sanity set of EasyR1's examples (``data.train_files=hiyouga/geometry3k@train``,
``val_files=hiyouga/geometry3k@test``, ``prompt_key=problem``, ``answer_key=answer``, ``image_key=images``).

SOURCE: the dataset card (features ``images`` (a list of Image), ``problem`` (the question after an
``<image>`` placeholder, e.g. "<image>Find x."), ``answer`` (the value, often LaTeX: "2\\sqrt{3}",
"\\frac{40}{3}"), ``id`` (int64), ``choices`` (the four InterGPS choices, a list of strings),
``ground_truth`` (the gold choice letter); converted from lupantech/InterGPS's Geometry3K) and EasyR1's
reward (``examples/reward_function/math.py``: the ``\\boxed{}`` content graded against ``answer`` by
mathruler's ``grade_answer``, rule-based, no judge).

Choices made here:
* free-form by default, as EasyR1 trains it: the gold is ``answer``, typed by its form (number / math /
  text, `dualtune.data.adapters.training_sets.answer_kind`; math is scored by math-verify equivalence).
  ``options.format: choice`` uses the published ``choices`` and ``ground_truth`` letter instead (the
  InterGPS multiple-choice setting); a ``choices`` column that is not a list (or a string holding one) or
  a letter outside it is a counted skip naming the column.
* splits: ``train`` and ``test`` (EasyR1's validation set); ``validation`` is reachable with
  ``domain.splits.test=validation``.
* subtask: the published rows carry no problem type (InterGPS's ``problem_type_goal`` was dropped), so
  one subtask ``geometry``; ``options.subtask_field`` names a column to group by instead.
* the question is ``problem`` with its ``<image>`` placeholders removed (the prompt places the image);
  ``cot`` is empty (no rationales are published: SFT in CoT mode has no reasoning targets).
"""

from __future__ import annotations

import json

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.training_sets import (
    answer_kind, image_ref, list_field, option_choice, subtask_of, text_field)
from dualtune.schema import OPTION_LETTERS
from dualtune.utils.image_refs import ImageRef

REQUIRED_COLUMNS = ("id", "problem", "answer", "images")
FORMATS = ("free_form", "choice")


def _images(row: dict, ctx: AdapterContext) -> list:
    images = row.get("images")
    if isinstance(images, (dict, str, bytes, ImageRef)):  # one image stored bare
        images = [images]
    if not isinstance(images, list):
        raise SkipRow(f"column 'images' is {type(images).__name__}, expected a list of images")
    if not images:
        raise SkipRow("no image")
    return [image_ref(image, ctx, "images") for image in images]


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One Geometry3K row -> one schema row (see the module docstring for the rules)."""
    fmt = option_choice(ctx, "format", FORMATS)
    question = text_field(row, "problem").replace("<image>", " ").strip()
    if not question:
        raise SkipRow("column 'problem' holds no question")
    value = text_field(row, "answer")
    choices = list_field(row, "choices")
    if fmt == "choice":
        letter = text_field(row, "ground_truth")
        if not choices or letter not in OPTION_LETTERS[:len(choices)]:
            raise SkipRow(f"ground_truth {letter!r} is not a letter of the {len(choices)} choices")
        answer, answer_type, options = letter, "choice", choices
    else:
        (answer, answer_type), options = answer_kind(value, []), []
    extra = {"choices": choices, "ground_truth": row.get("ground_truth"), "value": value}
    return {"id": f"geometry3k/{text_field(row, 'id')}", "domain": ctx.domain,
            "subtask": subtask_of(row, ctx, fields=(), fallback="geometry"), "images": _images(row, ctx),
            "video": [], "question": question, "options": options, "answer": answer, "answer_type": answer_type,
            "cot": "", "source": "hiyouga/geometry3k", "meta": json.dumps(extra)}
