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
