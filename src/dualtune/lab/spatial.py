"""Spatial-domain subtasks: where things are, and in which order they appeared.

| subtask             | region   | mechanism                                                           |
|---------------------|----------|---------------------------------------------------------------------|
| color_at            | direct   | one readout; long enumerating CoT, `cot_error_rate` misreads        |
| relative_position   | cot      | two position readouts + comparison; short CoT writes both down      |
| appearance_order    | cot      | video; first-appearance frame of two colors + comparison            |
| noisy_shape_at      | negative | one shape readout; `label_noise` systematic (or uniform) wrong labels|
"""

from __future__ import annotations

from dualtune.lab.draw import (
    COLOR_CONFUSION,
    COLOR_NAMES,
    FRAME_COLS,
    FRAME_ROWS,
    SHAPE_CONFUSION,
    SHAPES,
    all_cells,
    enumerate_rows,
    random_scene,
    render_frames,
    render_grid,
    scene_to_meta,
)
from dualtune.lab.registry import (
    article,
    flip,
    letter_of,
    make_options,
    new_sample,
    pick_distractors,
    register,
    wrong_value,
)


@register(
    "color_at",
    domain="spatial",
    region="direct",
    language_prior_rate=0.25,
    description="Color of the shape in a named cell (single readout); long CoT with planted misreads.",
    knobs={"n_shapes": 6, "cot_error_rate": 0.35},
)
def make_color_at(rng, knobs):
    """Direct region: "What color is the shape in row r, column c?" with 4 color options.

    The CoT enumerates every row of the grid (~45-60 words) before naming the target. With
    probability ``cot_error_rate`` (train only) the rationale misreads the target as its
    confusion color and concludes with that wrong option (``meta.cot_corrupted``,
    ``meta.cot_answer``); ``answer`` (the DA target) stays correct.
    Language prior: only one option is a color word (the others are shape names).
    """
    scene = random_scene(rng, knobs["n_shapes"])
    row, col = rng.choice(sorted(scene))
    shape, color = scene[(row, col)]
    prior = flip(rng, knobs["language_prior_rate"])
    corrupt = flip(rng, knobs["cot_error_rate"]) and not prior
    if prior:
        options, answer = make_options(rng, color, list(SHAPES))
    else:
        distractors = pick_distractors(rng, color, COLOR_NAMES, 3, must=COLOR_CONFUSION[color])
        options, answer = make_options(rng, color, distractors)
    # The rationale reads every row; a corrupted one misreads the target cell only.
    read = COLOR_CONFUSION[color] if corrupt else color
    seen = {**scene, (row, col): (shape, read)}
    cot_answer = letter_of(options, read)
    cot = (
        f"I scan the grid row by row. {enumerate_rows(seen)} "
        f"The shape in row {row}, column {col} is {article(read + ' ' + shape)}, so the answer is {cot_answer}."
    )
    meta = {"language_prior": prior, "scene": scene_to_meta(scene), "cot_corrupted": corrupt}
    if corrupt:
        meta["cot_answer"] = cot_answer
    question = f"What color is the shape in row {row}, column {col}?"
    return new_sample(question, answer, "choice", cot, meta, images=[render_grid(scene)], options=options)


@register(
    "relative_position",
    domain="spatial",
    region="cot",
    language_prior_rate=0.2,
    description="Is shape X left/right (above/below) of shape Y: two position readouts then a comparison.",
    knobs={"n_distractors": 2},
)
def make_relative_position(rng, knobs):
    """CoT region: two shapes named by (unique) color; answer compares their columns or rows.

    CoT (~20 words): "red is in row 1, column 3. blue is in row 2, column 1. 3 > 1, so red is
    right of blue, ...". Language prior: the question states that X sits in an extreme column
    (leftmost/rightmost) or row (top/bottom), which forces the answer.
    """
    color_a, color_b = rng.sample(COLOR_NAMES, 2)
    horizontal = rng.random() < 0.5
    axis = 1 if horizontal else 0  # index into (row, col)
    prior = flip(rng, knobs["language_prior_rate"])
    cells = all_cells()
    if prior:
        extreme = rng.choice([1, 4])
        pos_a = rng.choice([c for c in cells if c[axis] == extreme])
    else:
        pos_a = rng.choice(cells)
    pos_b = rng.choice([c for c in cells if c[axis] != pos_a[axis]])
    scene = {pos_a: (rng.choice(SHAPES), color_a), pos_b: (rng.choice(SHAPES), color_b)}
    others = [c for c in COLOR_NAMES if c not in (color_a, color_b)]
    scene = random_scene(rng, knobs["n_distractors"], colors=others, scene=scene)
    # Readouts -> comparison -> relation word.
    a_val, b_val = pos_a[axis], pos_b[axis]
    if horizontal:
        options, relation = ["left", "right"], ("right" if a_val > b_val else "left")
        question = f"Is the {color_a} shape left or right of the {color_b} shape?"
        cue = f"The {color_a} shape is in the {'leftmost' if pos_a[1] == 1 else 'rightmost'} column. "
    else:
        options, relation = ["above", "below"], ("below" if a_val > b_val else "above")
        question = f"Is the {color_a} shape above or below the {color_b} shape?"
        cue = f"The {color_a} shape is in the {'top' if pos_a[0] == 1 else 'bottom'} row. "
    answer = letter_of(options, relation)
    sign = ">" if a_val > b_val else "<"
    phrase = relation + (" of" if horizontal else "")
    cot = (
        f"{color_a} is in row {pos_a[0]}, column {pos_a[1]}. {color_b} is in row {pos_b[0]}, column {pos_b[1]}. "
        f"{a_val} {sign} {b_val}, so {color_a} is {phrase} {color_b}, option {answer}."
    )
    meta = {"language_prior": prior, "scene": scene_to_meta(scene)}
    return new_sample((cue if prior else "") + question, answer, "choice", cot, meta,
                      images=[render_grid(scene)], options=options)


@register(
    "appearance_order",
    domain="spatial",
    region="cot",
    language_prior_rate=0.2,
    description="Video: which of two colors appeared first (two frame readouts then a comparison).",
    knobs={"n_frames": 4},
)
def make_appearance_order(rng, knobs):
    """CoT region, video: ``n_frames`` (2-4) cumulative 56x56 frames, each adds one new shape.

    "Which color appeared first, X or Y?" CoT lists the new color of every frame, then compares.
    Language prior: the question says X is already visible in the first frame.
    """
    n_frames = int(knobs["n_frames"])
    if not 2 <= n_frames <= FRAME_ROWS * FRAME_COLS:
        raise ValueError(f"appearance_order: n_frames must be in [2, {FRAME_ROWS * FRAME_COLS}]")
    colors = rng.sample(COLOR_NAMES, n_frames)
    cells = rng.sample(all_cells(FRAME_ROWS, FRAME_COLS), n_frames)
    items = [(r, c, rng.choice(SHAPES), color) for (r, c), color in zip(cells, colors)]
    prior = flip(rng, knobs["language_prior_rate"])
    if prior:
        x_idx, y_idx = 0, rng.randrange(1, n_frames)
    else:
        x_idx, y_idx = rng.sample(range(n_frames), 2)
    first, later = sorted([x_idx, y_idx])
    options = [colors[x_idx], colors[y_idx]]
    rng.shuffle(options)
    answer = letter_of(options, colors[first])
    question = f"Which color appeared first, {options[0]} or {options[1]}?"
    cue = f"The {colors[x_idx]} shape is already visible in the first frame. "
    readouts = " ".join(f"frame {k}: {color}." for k, color in enumerate(colors, start=1))
    cot = f"{readouts} {colors[first]} came before {colors[later]}, so the answer is {answer}."
    meta = {"language_prior": prior, "frames": [list(item) for item in items]}
    return new_sample((cue if prior else "") + question, answer, "choice", cot, meta,
                      video=render_frames(items), options=options)


@register(
    "noisy_shape_at",
    domain="spatial",
    region="negative",
    language_prior_rate=0.0,
    description="Shape in a named cell; training labels replaced by wrong readouts at rate label_noise.",
    knobs={"n_shapes": 6, "label_noise": 0.7, "noise_kind": "confusion"},
)
def make_noisy_shape_at(rng, knobs):
    """Negative region: "Which shape is at row r, column c?" (3 shape options).

    With probability ``label_noise`` (train only) the answer and the (consistent) rationale name a
    wrong shape: its confusion shape (``noise_kind="confusion"``, default) or a uniform wrong one.
    ``meta.label_noised`` marks it and ``meta.true_answer`` keeps the correct letter.
    """
    scene = random_scene(rng, knobs["n_shapes"])
    row, col = rng.choice(sorted(scene))
    shape, color = scene[(row, col)]
    options = list(SHAPES)
    rng.shuffle(options)
    noised = flip(rng, knobs["label_noise"])
    stated = wrong_value(rng, shape, SHAPES, knobs["noise_kind"], SHAPE_CONFUSION) if noised else shape
    answer = letter_of(options, stated)
    cot = f"Row {row}, column {col} holds {article(color + ' ' + stated)}, so the answer is {answer}."
    meta = {"language_prior": False, "scene": scene_to_meta(scene), "label_noised": noised}
    if noised:
        meta["true_answer"] = letter_of(options, shape)
    question = f"Which shape is at row {row}, column {col}?"
    return new_sample(question, answer, "choice", cot, meta, images=[render_grid(scene)], options=options)
