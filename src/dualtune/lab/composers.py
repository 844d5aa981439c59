"""Shared sample builders for lab mechanisms used by several subtasks (one home per mechanism)."""

from __future__ import annotations

from dualtune.lab.draw import COLOR_NAMES, random_scene, render_grid, scene_to_meta
from dualtune.lab.registry import flip, new_sample, plural


def count_times_sample(rng, knobs, mult_knob: str, question: str, cue: str, noun: str, label: str,
                       unit: str = "", shapes=None) -> dict:
    """The cot mechanism "count the X shapes (content), then multiply by a number stated in the text".

    Draws a color X, a count a in 1..max_count and a multiplier p in 2..``knobs[mult_knob]``, a scene of
    a X shapes plus ``n_distractors`` shapes of other colors, and renders the question / language-prior
    cue / rationale from the templates (fields: color, mult, things = "a X <noun>s"). The rationale is
    ``"{label}: a. a times p = a*p{unit}."``; the answer is a*p.
    """
    color = rng.choice(COLOR_NAMES)
    count, mult = rng.randint(1, knobs["max_count"]), rng.randint(2, knobs[mult_knob])
    shape_kw = {"shapes": shapes} if shapes else {}
    scene = random_scene(rng, count, colors=[color], **shape_kw)
    others = [c for c in COLOR_NAMES if c != color]
    scene = random_scene(rng, knobs["n_distractors"], colors=others, scene=scene, **shape_kw)
    prior = flip(rng, knobs["language_prior_rate"])
    fields = {"color": color, "mult": mult, "things": plural(count, f"{color} {noun}")}
    total = count * mult
    cot = f"{label.format(**fields)}: {count}. {count} times {mult} = {total}{unit}."
    meta = {"language_prior": prior, "scene": scene_to_meta(scene)}
    text = (cue.format(**fields) if prior else "") + question.format(**fields)
    return new_sample(text, str(total), "number", cot, meta, images=[render_grid(scene)])


def missed_one(rng, scene: dict, corrupt: bool) -> dict:
    """The scene a rationale reads: the true one, or (corrupted) one with a single shape overlooked."""
    if not corrupt:
        return dict(scene)
    missed = rng.choice(sorted(scene))
    return {cell: item for cell, item in scene.items() if cell != missed}


def planted_misread(rng, knobs, counted: dict) -> tuple[bool, bool, dict]:
    """The direct-region mechanism: draw the language-prior flag, then (never on prior samples) whether
    the long rationale is corrupted; returns (prior, corrupt, the items the rationale reads)."""
    prior = flip(rng, knobs["language_prior_rate"])
    corrupt = flip(rng, knobs["cot_error_rate"]) and not prior
    return prior, corrupt, missed_one(rng, counted, corrupt)


def misread_sample(prior: bool, corrupt: bool, scene: dict, question: str, cue: str, answer: str, cot: str,
                   cot_answer: str) -> dict:
    """A direct-region sample over one grid image: the question (after the language-prior ``cue`` when
    ``prior``), the number ``answer``, and ``meta`` with ``cot_corrupted`` and, when corrupted, the
    rationale's own answer ``cot_answer``."""
    meta = {"language_prior": prior, "scene": scene_to_meta(scene), "cot_corrupted": corrupt}
    if corrupt:
        meta["cot_answer"] = cot_answer
    return new_sample((cue if prior else "") + question, answer, "number", cot, meta, images=[render_grid(scene)])
