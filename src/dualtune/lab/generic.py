"""Generic perception pretraining mixture (domain "generic", region "generic").

It gives the tiny base model *real but partial* ability on the content primitives the target
subtasks compose: counting shapes (all, of a color, of a shape), counting one color over a clip's
frames, naming the color of a shape or of a one-color picture (answered with the color word,
answer type "text"), a small share of reading an answer that the question text states, and
text-only multiplication, the arithmetic step that the cot-region rationales write down.
Every question template here is worded differently from every target template (tested), so the
base model never sees a target question before Dual Tuning. Each sample carries an ``answer`` and
a short ``cot`` so the training code can render it in both direct and CoT modes.

Language priors and text-only input, so that the base model behaves sensibly in RAP's text-only
condition (``conf/domain/generic.yaml`` is the CDE sanity domain): with probability
``language_prior_rate`` (20 % in pretraining) a counting question is preceded by a note that states
its answer ("Note: the count of red objects is 3. "); cued counts and ``generic_read_text`` /
``generic_arithmetic`` drop their picture with probability ``text_only_rate`` (50 %), as real VLM
pretraining mixes in text-only data. ``meta.language_prior`` marks every sample the question
text alone answers: the cued counts, and always read-text and arithmetic samples.

Generic subtasks are registered in ``registry.GENERIC_SUBTASKS`` (not ``SUBTASKS``), so they never
appear in ``subtasks_for("all")`` or ``planted_regions()``.
"""

from __future__ import annotations

from dualtune.lab.draw import (
    COLOR_NAMES,
    FRAME_COLS,
    FRAME_ROWS,
    SHAPES,
    all_cells,
    describe_positions,
    random_scene,
    render_clip,
    render_grid,
    scene_to_meta,
)
from dualtune.lab.registry import (
    GENERIC,
    color_choice,
    finalize,
    flip,
    new_sample,
    plural,
    register,
    resolve_knobs,
    sample_rng,
    subtasks_for,
)


def _generic(name, description, knobs=None, language_prior_rate=0.0):
    """Register a generic subtask (domain and region "generic")."""
    return register(name, domain=GENERIC, region=GENERIC, description=description, knobs=knobs,
                    language_prior_rate=language_prior_rate)


def _image_sample(question, answer, answer_type, cot, scene, options=None, language_prior=False):
    """Generic sample over a single grid image."""
    meta = {"scene": scene_to_meta(scene), "language_prior": language_prior}
    return new_sample(question, answer, answer_type, cot, meta, images=[render_grid(scene)], options=options)


def _maybe_text_only(rng, knobs, sample: dict) -> dict:
    """With probability ``knobs["text_only_rate"]`` drop the picture (image or clip): a text-only sample."""
    if flip(rng, knobs["text_only_rate"]):
        sample["images"], sample["video"] = [], []
        sample["meta"].pop("scene", None)
        sample["meta"].pop("frames", None)
    return sample


def _stated_answer_cue(rng, knobs, sample: dict, cue: str) -> dict:
    """With probability ``knobs["language_prior_rate"]`` prefix ``cue`` (a note stating the answer) to the
    question and set ``meta.language_prior``; a cued sample then drops its picture with probability
    ``knobs["text_only_rate"]``. Drawn last, so the other draws never shift."""
    prior = flip(rng, knobs["language_prior_rate"])
    sample["meta"]["language_prior"] = prior
    if prior:
        sample["question"] = cue + sample["question"]
        # Some cued samples come without their picture, so the note is the only source: the model
        # learns that a stated answer is usable (a language prior), not only the picture.
        sample = _maybe_text_only(rng, knobs, sample)
    return sample


def count_all_words(n: int) -> tuple[str, str, str]:
    """(question, cot, cue) of a count of every object, ``n`` of them. The three counts' words are shared with
    the selection lab (``selection_lab.py``) and the probe (``probe.py``), which speak the mixture's wording."""
    return ("What is the total number of objects in the picture?",
            f"Altogether the picture holds {plural(n, 'object')}.", f"Note: the picture holds {n} objects. ")


def count_color_words(color: str, positions: list) -> tuple[str, str, str]:
    """(question, cot, cue) of a count of the ``color`` objects at ``positions`` (the rationale lists them)."""
    n = len(positions)
    return (f"Count the {color} objects in the picture.",
            f"{color.capitalize()} objects: {describe_positions(positions)}. Total {n}.",
            f"Note: the count of {color} objects is {n}. ")


def count_shape_words(shape: str, n: int) -> tuple[str, str, str]:
    """(question, cot, cue) of a count of the ``shape`` objects, ``n`` of them."""
    return (f"Tell me how many {shape}s the picture contains.", f"I see {plural(n, shape)}.",
            f"Note: the count of {shape}s is {n}. ")


@_generic("generic_count_color", "Count the objects of one color.",
          {"max_count": 4, "n_distractors": 3, "text_only_rate": 0.5},
          language_prior_rate=0.2)
def make_count_color(rng, knobs):
    """Number answer 0..max_count; the rationale lists the positions."""
    color = rng.choice(COLOR_NAMES)
    scene = random_scene(rng, rng.randint(0, knobs["max_count"]), colors=[color])
    others = [c for c in COLOR_NAMES if c != color]
    scene = random_scene(rng, knobs["n_distractors"], colors=others, scene=scene)
    positions = sorted(cell for cell, (_, c) in scene.items() if c == color)
    question, cot, cue = count_color_words(color, positions)
    sample = _image_sample(question, str(len(positions)), "number", cot, scene)
    return _stated_answer_cue(rng, knobs, sample, cue)


@_generic("generic_count_all", "Count every object in the picture.", {"max_objects": 8, "text_only_rate": 0.5},
          language_prior_rate=0.2)
def make_count_all(rng, knobs):
    """Number answer 1..max_objects."""
    scene = random_scene(rng, rng.randint(1, knobs["max_objects"]))
    question, cot, cue = count_all_words(len(scene))
    sample = _image_sample(question, str(len(scene)), "number", cot, scene)
    return _stated_answer_cue(rng, knobs, sample, cue)


@_generic("generic_count_shape", "Count the objects of one shape.",
          {"max_count": 4, "n_distractors": 3, "text_only_rate": 0.5},
          language_prior_rate=0.2)
def make_count_shape(rng, knobs):
    """Number answer 0..max_count."""
    shape = rng.choice(SHAPES)
    scene = random_scene(rng, rng.randint(0, knobs["max_count"]), shapes=[shape])
    scene = random_scene(rng, knobs["n_distractors"], shapes=[s for s in SHAPES if s != shape], scene=scene)
    count = sum(s == shape for s, _ in scene.values())
    question, cot, cue = count_shape_words(shape, count)
    sample = _image_sample(question, str(count), "number", cot, scene)
    return _stated_answer_cue(rng, knobs, sample, cue)


@_generic("generic_shape_color", "Color of the only object of a given shape.", {"n_others": 4})
def make_shape_color(rng, knobs):
    """Color word answer; exactly one object has the named shape."""
    shape = rng.choice(SHAPES)
    color = rng.choice(COLOR_NAMES)
    scene = {rng.choice(all_cells()): (shape, color)}
    scene = random_scene(rng, knobs["n_others"], shapes=[s for s in SHAPES if s != shape], scene=scene)
    options, answer = color_choice(color)
    cot = f"The only {shape} is {color}."
    return _image_sample(f"Tell me the color of the {shape} in this picture.", answer, "text", cot, scene,
                         options)


@_generic("generic_one_color", "Color shared by every object of a one-color picture.", {"max_objects": 6})
def make_one_color(rng, knobs):
    """Color word answer."""
    color = rng.choice(COLOR_NAMES)
    scene = random_scene(rng, rng.randint(1, knobs["max_objects"]), colors=[color])
    options, answer = color_choice(color)
    cot = f"Every object is {color}."
    return _image_sample("Every object here has the same color. Which color is it?", answer, "text", cot,
                         scene, options)


@_generic("generic_clip_count", "Video: count the objects of one color over every frame.",
          {"n_frames": 4, "text_only_rate": 0.5},
          language_prior_rate=0.2)
def make_clip_count(rng, knobs):
    """Number answer 0..n_frames over independent 56x56 frames (at most one object of the color each)."""
    color = rng.choice(COLOR_NAMES)
    others = [c for c in COLOR_NAMES if c != color]
    cells = all_cells(FRAME_ROWS, FRAME_COLS)
    frames = []
    for _ in range(knobs["n_frames"]):
        scene = random_scene(rng, 1, colors=[color] if rng.random() < 0.5 else others, cells=cells)
        frames.append(random_scene(rng, rng.randint(0, 1), colors=others, cells=cells, scene=scene))
    count = sum(c == color for scene in frames for _, c in scene.values())
    meta = {"frames": [scene_to_meta(scene) for scene in frames]}
    question = f"Watch the clip. How many {color} objects does it show across its frames?"
    sample = new_sample(question, str(count), "number", f"{color.capitalize()} objects in the clip: {count}.", meta,
                        video=render_clip(frames))
    return _stated_answer_cue(rng, knobs, sample, f"Note: the count of {color} objects in the clip is {count}. ")


@_generic("generic_read_text", "The answer is stated in the question text (the picture is unrelated).",
          {"n_shapes": 4, "text_only_rate": 0.5})
def make_read_text(rng, knobs):
    """Half color choices ("Note: the circle is blue. ..."), half numbers ("Note: there are 3 ...")."""
    scene = random_scene(rng, knobs["n_shapes"])
    shape, color = rng.choice(SHAPES), rng.choice(COLOR_NAMES)
    if rng.random() < 0.5:
        options, answer = color_choice(color)
        question = f"Note: the {shape} is {color}. Name the color of the {shape}."
        sample = _image_sample(question, answer, "text", f"The note says {color}.", scene, options, language_prior=True)
    else:
        count = rng.randint(1, 12)
        question = f"Note: the count of {color} objects is {count}. Repeat that count."
        sample = _image_sample(question, str(count), "number", f"The note says {count}.", scene, language_prior=True)
    return _maybe_text_only(rng, knobs, sample)


WORDED_ARITHMETIC = "A crate holds {b} apples. How many apples are there in {a} crates?"


@_generic("generic_arithmetic", "Text-only multiplication of small numbers (the picture is unrelated).",
          {"n_shapes": 3, "max_count": 4, "max_factor": 9, "text_only_rate": 0.5, "worded_rate": 0.5})
def make_arithmetic(rng, knobs):
    """A count-sized factor a (1..max_count) times another b (1..max_factor), with the worked step
    ``"a times b = ab."``. With probability ``worded_rate`` the question is a short story that states b in
    its first sentence (``WORDED_ARITHMETIC``), so the base learns to carry a number stated in a sentence
    into the multiplication step, as the cot-region rationales do (lab v10)."""
    scene = random_scene(rng, knobs["n_shapes"])
    a, b = rng.randint(1, knobs["max_count"]), rng.randint(1, knobs["max_factor"])
    question = f"Work out {a} times {b}."
    sample = _image_sample(question, str(a * b), "number", f"{a} times {b} = {a * b}.", scene, language_prior=True)
    sample = _maybe_text_only(rng, knobs, sample)
    if flip(rng, knobs["worded_rate"]):  # drawn last: the other draws do not shift
        sample["question"] = WORDED_ARITHMETIC.format(a=a, b=b)
    return sample


def generic_samples(n: int, seed: int, split: str = GENERIC, knobs: dict | None = None) -> list[dict]:
    """``n`` finalized generic samples (round-robin over generic subtasks), deterministic in ``seed``.

    Sample i uses subtask ``i % len(subtasks)`` and the RNG of (seed, split, subtask, i); ids are
    ``f"{subtask}-{split}-{i:05d}"`` and ``meta.planted_region == "generic"``. ``split`` only
    selects an independent stream (e.g. a held-out generic set); there is no noise to switch off.
    ``knobs``: overrides as in ``registry.resolve_knobs`` (e.g. ``{"language_prior_rate": 0.25}``).
    """
    subtasks = subtasks_for(GENERIC)
    resolved = {s.name: resolve_knobs(s, knobs, split) for s in subtasks}
    rows = []
    for i in range(n):
        subtask = subtasks[i % len(subtasks)]
        sample = subtask.make(sample_rng(seed, split, subtask.name, i), dict(resolved[subtask.name]))
        rows.append(finalize(sample, subtask, split, i))
    return rows
