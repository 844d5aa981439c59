"""The selection lab (domain "selection_lab"): a training domain where data selection has something to find.

RAP (digest /work/shared/papers/rap.md) assumes a pool with four kinds of samples, as seen by the initial
model: language-prior samples (the text alone gives the answer; CDE drops them), easy samples (the model
already solves them; DRM removes them), hard samples (rarely solved: DRM's replacement band) and the
*cognitive* rest (needs the image, partly solved, learnable). The target domains give the tiny base none of
that (it solves ~8 % of their training samples). Here every sample is one of the generic mixture's own
readouts (``generic.py``: same question templates, same notes), so the base has real but partial skill, and
a difficulty knob (the number of shapes to count) plants the bands:

| planted          | share (default)     | how                                                                       |
|------------------|---------------------|---------------------------------------------------------------------------|
| `language_prior` | `language_prior_rate` 0.25 | the generic note stating the answer precedes the question ("Note: the picture holds 5 objects. "); level drawn over all bands |
| `easy`           | `easy_rate` 0.25    | few shapes (`easy_levels`)                                                 |
| `hard`           | `hard_rate` 0.25    | many shapes (`hard_levels`)                                                |
| `cognitive`      | the rest (0.25)     | a middle count (`cognitive_levels`)                                         |

``meta.planted`` holds the kind, ``meta.level`` the knob value, ``meta.language_prior`` is true exactly on
the language-prior samples. The planted kind is a *design* label (from the knob), not a measurement: how
well the base's real pass rates follow it is what ``score.py`` measures (``scoring/planted.py``).

The subtasks live in ``registry.SELECTION_SUBTASKS`` (not ``SUBTASKS``): they are not part of ``"all"``, of
``planted_regions()`` or of the tokenizer corpus (``lab_text_corpus``), so adding them rebuilt nothing; their
words are the generic mixture's. ``load_selection_lab`` caches builds like ``load_lab``.
"""

from __future__ import annotations

from dualtune.lab.draw import COLOR_NAMES, SHAPES, random_scene, render_grid, scene_to_meta
from dualtune.lab.generic import count_all_words, count_color_words, count_shape_words
from dualtune.lab.registry import SELECTION_LAB, flip, new_sample, register

PLANTED = ("language_prior", "easy", "hard", "cognitive")
_BAND_KNOBS = {"easy_rate": 0.25, "hard_rate": 0.25}


def planted_kind(rng, knobs) -> str:
    """Draw the sample's planted kind: language prior first, then easy / hard / cognitive (shares in ``knobs``)."""
    if flip(rng, knobs["language_prior_rate"]):
        return "language_prior"
    rest = 1.0 - knobs["language_prior_rate"]
    u = rng.random() * max(rest, 1e-12)
    if u < knobs["easy_rate"]:
        return "easy"
    if u < knobs["easy_rate"] + knobs["hard_rate"]:
        return "hard"
    return "cognitive"


def draw_level(rng, knobs, kind: str) -> int:
    """The difficulty knob for ``kind``: uniform in its band ``knobs[f"{kind}_levels"]`` = [lo, hi]; a
    language-prior sample draws a band first (easy / cognitive / hard alike), then a level in it."""
    if kind == "language_prior":
        kind = rng.choice(("easy", "cognitive", "hard"))
    lo, hi = (int(v) for v in knobs[f"{kind}_levels"])
    if not 0 <= lo <= hi:
        raise ValueError(f"{kind}_levels must be [lo, hi] with 0 <= lo <= hi, got {[lo, hi]}")
    return rng.randint(lo, hi)


def _sample(kind, level, words, scene) -> dict:
    """One selection-lab sample over a grid image, answer ``level``; ``words`` = the generic mixture's
    (question, cot, cue), the language-prior cue prepended for that kind."""
    question, cot, cue = words
    prior = kind == "language_prior"
    meta = {"planted": kind, "level": level, "language_prior": prior, "scene": scene_to_meta(scene)}
    return new_sample((cue if prior else "") + question, str(level), "number", cot, meta, images=[render_grid(scene)])


def _selection(name, description, levels, **extra):
    """Register a selection-lab subtask with band knobs ``levels`` = {kind: [lo, hi]} (+ ``extra`` knobs)."""
    knobs = dict(_BAND_KNOBS, **extra, **{f"{kind}_levels": list(band) for kind, band in levels.items()})
    return register(name, domain=SELECTION_LAB, region=SELECTION_LAB, description=description, knobs=knobs,
                    language_prior_rate=0.25)


@_selection("sel_count_all", "Count every object; the knob is the number of objects (pretraining: 1..8).",
            {"easy": (1, 2), "cognitive": (3, 6), "hard": (7, 9)})
def make_count_all(rng, knobs):
    """generic_count_all's question over ``level`` objects; the note states the total."""
    kind = planted_kind(rng, knobs)
    level = draw_level(rng, knobs, kind)
    return _sample(kind, level, count_all_words(level), random_scene(rng, level))


@_selection("sel_count_color", "Count the objects of one color next to n_others of other colors; the knob is "
            "their number (pretraining: 0..4 next to 3 others).", {"easy": (2, 3), "cognitive": (4, 4),
                                                                   "hard": (5, 6)}, n_others=3)
def make_count_color(rng, knobs):
    """generic_count_color's question and layout: ``level`` shapes of the color, ``n_others`` of other colors."""
    kind = planted_kind(rng, knobs)
    level = draw_level(rng, knobs, kind)
    color = rng.choice(COLOR_NAMES)
    scene = random_scene(rng, level, colors=[color])
    scene = random_scene(rng, knobs["n_others"], colors=[c for c in COLOR_NAMES if c != color], scene=scene)
    positions = sorted(cell for cell, (_, c) in scene.items() if c == color)  # exactly ``level`` of them
    return _sample(kind, level, count_color_words(color, positions), scene)


@_selection("sel_count_shape", "Count the objects of one shape next to n_others of other shapes; the knob is "
            "their number (pretraining: 0..4 next to 3 others).", {"easy": (2, 3), "cognitive": (4, 4),
                                                                   "hard": (5, 6)}, n_others=3)
def make_count_shape(rng, knobs):
    """generic_count_shape's question and layout: ``level`` shapes of the kind, ``n_others`` of other kinds."""
    kind = planted_kind(rng, knobs)
    level = draw_level(rng, knobs, kind)
    shape = rng.choice(SHAPES)
    scene = random_scene(rng, level, shapes=[shape])
    scene = random_scene(rng, knobs["n_others"], shapes=[s for s in SHAPES if s != shape], scene=scene)
    return _sample(kind, level, count_shape_words(shape, level), scene)


def load_selection_lab(cache_dir, n_train: int = 64, n_test: int = 32, seed: int = 0, knobs: dict | None = None):
    """The selection lab's ``DatasetDict``, cached like every lab domain (`dualtune.lab.build.load_lab`)."""
    from dualtune.lab.build import load_lab

    return load_lab(SELECTION_LAB, cache_dir, n_train=n_train, n_test=n_test, seed=seed, knobs=knobs)
