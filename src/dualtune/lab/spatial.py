"""Spatial-domain subtasks: what a scene or a short clip contains (content readouts only).

The tiny base model perceives *content* (colors, shapes, counts) well but not *positions*, so every
planted mechanism below relies on content; positions only appear in the long rationales of the
direct-region subtask, where a rationale the model cannot reproduce is part of the design.

| subtask          | region   | mechanism                                                              |
|------------------|----------|------------------------------------------------------------------------|
| empty_cells      | direct   | one readout (empty cells); long row-by-row CoT, planted missed shapes  |
| color_product    | cot      | a color count in the grid times a count stated in the text             |
| clip_color_count | cot      | video: count the shapes of a color over all frames, then a product     |
| noisy_total      | negative | total number of shapes; systematic over-count label noise              |
"""

from __future__ import annotations

from dualtune.lab.draw import (
    COLOR_NAMES,
    FRAME_COLS,
    FRAME_ROWS,
    all_cells,
    enumerate_rows,
    random_scene,
    render_clip,
    render_grid,
    scene_to_meta,
)
from dualtune.lab.composers import misread_sample, planted_misread
from dualtune.lab.registry import flip, new_sample, plural, register


@register(
    "empty_cells",
    domain="spatial",
    region="direct",
    language_prior_rate=0.25,
    description="How many grid cells are empty (single content readout); long CoT with planted misses.",
    knobs={"min_shapes": 3, "max_shapes": 6, "cot_error_rate": 0.35},
)
def make_empty_cells(rng, knobs):
    """Direct region: 3-6 shapes on the 16-cell grid; answer 16 - shapes (number).

    The CoT enumerates every row (~40-60 words). With probability ``cot_error_rate`` (train only)
    the rationale overlooks one shape and concludes one empty cell too many (``meta.cot_corrupted``,
    ``meta.cot_answer``). Language prior: "Only N shapes were drawn on this 16-cell grid."
    """
    scene = random_scene(rng, rng.randint(knobs["min_shapes"], knobs["max_shapes"]))
    prior, corrupt, seen = planted_misread(rng, knobs, scene)
    cells = len(all_cells())
    cot_answer = str(cells - len(seen))
    cot = (
        f"I scan the grid row by row, cell by cell. {enumerate_rows(seen)} "
        f"{len(seen)} of the {cells} cells hold a shape, so the answer is {cot_answer}."
    )
    cue = f"Only {len(scene)} shapes were drawn on this {cells}-cell grid. "
    return misread_sample(prior, corrupt, scene, "How many cells of the grid are empty?", cue,
                          str(cells - len(scene)), cot, cot_answer)


@register(
    "color_product",
    domain="spatial",
    region="cot",
    language_prior_rate=0.2,
    description="X shapes in the grid times the Y shapes said to be in a bag: a readout, then a product.",
    knobs={"max_count": 4, "max_second": 9, "n_distractors": 3},
)
def make_color_product(rng, knobs):
    """CoT region: the grid holds a shapes of color X (1..max_count) plus ``n_distractors`` shapes of
    colors other than X and Y; the question states that a bag holds b shapes of color Y (1..max_second);
    answer a * b (number).

    CoT: "red: 3. blue: 5. 3 times 5 = 15." The first factor is the readout the base model really does
    (it counts the X shapes as all shapes minus the fixed distractors; it cannot tell two colors' counts
    apart in one picture, see README "color_product"), the second is copied from the text and the product
    comes from the text-taught table. Language prior: a is stated too.
    """
    color_a, color_b = rng.sample(COLOR_NAMES, 2)
    count_a, count_b = rng.randint(1, knobs["max_count"]), rng.randint(1, knobs["max_second"])
    scene = random_scene(rng, count_a, colors=[color_a])
    others = [c for c in COLOR_NAMES if c not in (color_a, color_b)]
    scene = random_scene(rng, knobs["n_distractors"], colors=others, scene=scene)
    prior = flip(rng, knobs["language_prior_rate"])
    product = count_a * count_b
    question = (f"A bag holds {plural(count_b, color_b + ' shape')}. Multiply the number of {color_a} shapes "
                f"in the grid by the number of {color_b} shapes in the bag. What do you get?")
    cue = f"There are {plural(count_a, color_a + ' shape')} in the grid. "
    cot = f"{color_a}: {count_a}. {color_b}: {count_b}. {count_a} times {count_b} = {product}."
    meta = {"language_prior": prior, "scene": scene_to_meta(scene)}
    return new_sample((cue if prior else "") + question, str(product), "number", cot, meta,
                      images=[render_grid(scene)])


@register(
    "clip_color_count",
    domain="spatial",
    region="cot",
    language_prior_rate=0.2,
    description="Video: points of the X shapes over all frames (a color count, then a product).",
    knobs={"n_frames": 4, "max_points": 9},
)
def make_clip_color_count(rng, knobs):
    """CoT region, video: ``n_frames`` independent 56x56 frames with 1-2 shapes each.

    Each frame holds at most one shape of color X; every X shape earns p points (stated,
    2..max_points), so the answer is k * p where k is the number of X shapes (= frames showing X).
    The CoT writes k, then multiplies. Language prior: k is stated.
    """
    n_frames = int(knobs["n_frames"])
    if not 2 <= n_frames <= 4:
        raise ValueError("clip_color_count: n_frames must be in [2, 4]")
    color = rng.choice(COLOR_NAMES)
    others = [c for c in COLOR_NAMES if c != color]
    cells = all_cells(FRAME_ROWS, FRAME_COLS)
    hits = sorted(rng.sample(range(1, n_frames + 1), rng.randint(1, n_frames)))
    frames = []
    for k in range(1, n_frames + 1):
        # A frame holds at most one X shape, plus 0-1 shape of another color.
        scene = random_scene(rng, 1, colors=[color] if k in hits else others, cells=cells)
        if rng.random() < 0.5:
            scene = random_scene(rng, 1, colors=others, cells=cells, scene=scene)
        frames.append(scene)
    prior = flip(rng, knobs["language_prior_rate"])
    points = rng.randint(2, knobs["max_points"])
    total = len(hits) * points
    cot = f"{color} shapes: {len(hits)}. {len(hits)} times {points} = {total}."
    question = (f"Every {color} shape that appears in the clip earns {points} points. "
                "How many points does the clip earn?")
    cue = f"The clip shows {plural(len(hits), color + ' shape')} in all. "
    meta = {"language_prior": prior, "frames": [scene_to_meta(scene) for scene in frames]}
    return new_sample((cue if prior else "") + question, str(total), "number", cot, meta,
                      video=render_clip(frames))


@register(
    "noisy_total",
    domain="spatial",
    region="negative",
    language_prior_rate=0.0,
    description="Total number of shapes; training labels over-count at rate label_noise.",
    knobs={"max_shapes": 7, "label_noise": 0.7, "noise_kind": "confusion"},
)
def make_noisy_total(rng, knobs):
    """Negative region: "What is the total number of shapes in the grid?" (number, 2..max_shapes).

    The generic base already counts all objects well. With probability ``label_noise`` (train only)
    the answer and its consistent rationale are wrong: one too many (``noise_kind="confusion"``, a
    systematic over-count) or a uniform wrong count. ``meta.label_noised`` / ``meta.true_answer``.
    """
    total = rng.randint(2, knobs["max_shapes"])
    scene = random_scene(rng, total)
    noised = flip(rng, knobs["label_noise"])
    stated = total
    if noised and knobs["noise_kind"] == "confusion":
        stated = total + 1
    elif noised:
        stated = rng.choice([k for k in range(1, knobs["max_shapes"] + 2) if k != total])
    cot = f"Counting every shape in the grid gives {stated}."
    meta = {"language_prior": False, "scene": scene_to_meta(scene), "label_noised": noised}
    if noised:
        meta["true_answer"] = str(total)
    question = "What is the total number of shapes in the grid?"
    return new_sample(question, str(stated), "number", cot, meta, images=[render_grid(scene)])
