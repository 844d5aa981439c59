"""Generic perception pretraining mixture (domain "generic", region "generic").

It gives the tiny base model *real but partial* ability on the primitives the target subtasks
compose: reading a cell's color/shape, locating a shape, counting shapes (of a color, in a row or
column), reading a bar height, naming a video frame's new shape. Every question template here
is worded differently from every target template (tested), so the base model never sees a
target question before Dual Tuning. Each sample carries an ``answer`` and a short ``cot`` so the
training code can render it in both direct and CoT modes.

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
    render_bars,
    render_frames,
    render_grid,
    scene_to_meta,
)
from dualtune.lab.registry import (
    GENERIC,
    article,
    finalize,
    make_options,
    new_sample,
    pick_distractors,
    plural,
    register,
    sample_rng,
    subtasks_for,
)


def _generic(name, description, knobs=None):
    """Register a generic subtask (domain and region "generic", no language prior)."""
    return register(name, domain=GENERIC, region=GENERIC, description=description, knobs=knobs)


def _image_sample(question, answer, answer_type, cot, scene, options=None):
    """Generic sample over a single grid image."""
    meta = {"scene": scene_to_meta(scene)}
    return new_sample(question, answer, answer_type, cot, meta, images=[render_grid(scene)], options=options)


@_generic("generic_describe_cell", "Pick the description (color + shape, or empty) of a named cell.",
          {"n_shapes": 6})
def make_describe_cell(rng, knobs):
    """Choice among 4 descriptions like 'red circle' / 'empty cell'."""
    scene = random_scene(rng, knobs["n_shapes"])
    row, col = rng.choice(all_cells())
    truth = "empty cell" if (row, col) not in scene else " ".join(reversed(scene[(row, col)]))
    pool = [f"{c} {s}" for c in COLOR_NAMES for s in SHAPES] + ["empty cell"]
    options, answer = make_options(rng, truth, pick_distractors(rng, truth, pool, 3))
    content = "is empty." if truth == "empty cell" else f"contains {article(truth)}."
    cot = f"The cell in row {row}, column {col} {content}"
    question = f"Look at the cell in row {row}, column {col}. Which description fits it?"
    return _image_sample(question, answer, "choice", cot, scene, options)


@_generic("generic_locate", "Pick the position (row, column) of a named colored shape.", {"n_shapes": 5})
def make_locate(rng, knobs):
    """Choice among 4 positions; the named color+shape pair is unique in the grid."""
    scene = random_scene(rng, knobs["n_shapes"])
    (row, col), (shape, color) = rng.choice(sorted(scene.items()))
    scene = {cell: item for cell, item in scene.items() if item != (shape, color) or cell == (row, col)}
    truth = f"row {row}, column {col}"
    pool = [f"row {r}, column {c}" for r, c in all_cells()]
    options, answer = make_options(rng, truth, pick_distractors(rng, truth, pool, 3))
    cot = f"The {color} {shape} is in row {row}, column {col}."
    return _image_sample(f"Where is the {color} {shape} located?", answer, "choice", cot, scene, options)


@_generic("generic_count_color", "Count the objects of one color.", {"max_count": 4, "n_distractors": 3})
def make_count_color(rng, knobs):
    """Number answer 0..max_count; the rationale lists the positions."""
    color = rng.choice(COLOR_NAMES)
    scene = random_scene(rng, rng.randint(0, knobs["max_count"]), colors=[color])
    others = [c for c in COLOR_NAMES if c != color]
    scene = random_scene(rng, knobs["n_distractors"], colors=others, scene=scene)
    positions = sorted(cell for cell, (_, c) in scene.items() if c == color)
    cot = f"{color.capitalize()} objects: {describe_positions(positions)}. Total {len(positions)}."
    question = f"Count the {color} objects in the picture."
    return _image_sample(question, str(len(positions)), "number", cot, scene)


@_generic("generic_count_all", "Count every object in the picture.", {"max_objects": 8})
def make_count_all(rng, knobs):
    """Number answer 1..max_objects."""
    scene = random_scene(rng, rng.randint(1, knobs["max_objects"]))
    cot = f"Altogether the picture holds {plural(len(scene), 'object')}."
    return _image_sample("What is the total number of objects in the picture?", str(len(scene)), "number",
                         cot, scene)


@_generic("generic_colors_present", "Which of four colors occurs in the picture (exactly one does).",
          {"n_shapes": 5})
def make_colors_present(rng, knobs):
    """Scene uses 2 colors; options are one of them plus 3 absent colors."""
    used = rng.sample(COLOR_NAMES, 2)
    scene = random_scene(rng, knobs["n_shapes"], colors=used)
    present = sorted({c for _, c in scene.values()})
    truth = rng.choice(present)
    absent = [c for c in COLOR_NAMES if c not in present]
    options, answer = make_options(rng, truth, rng.sample(absent, 3))
    cot = f"The picture uses {' and '.join(present)}; among the options only {truth} occurs."
    return _image_sample("Which of these colors can be found in the picture?", answer, "choice", cot, scene,
                         options)


@_generic("generic_bar_height", "Read the height (in blocks) of one bar of a bar chart.", {"max_height": 4})
def make_bar_height(rng, knobs):
    """Number answer 1..max_height."""
    heights = [rng.randint(1, knobs["max_height"]) for _ in range(4)]
    bar = rng.randint(1, 4)
    cot = f"Bar {bar} is {plural(heights[bar - 1], 'block')} high."
    meta = {"bars": heights}
    return new_sample(f"Read the chart: how many blocks high is bar {bar}?", str(heights[bar - 1]), "number",
                      cot, meta, images=[render_bars(heights, rows=max(4, knobs["max_height"]))])


@_generic("generic_frame_color", "Video: color of the object that is new in frame k.", {"n_frames": 4})
def make_frame_color(rng, knobs):
    """Choice among 4 colors over cumulative 56x56 frames (as in appearance_order)."""
    n_frames = rng.randint(2, min(knobs["n_frames"], FRAME_ROWS * FRAME_COLS))
    colors = rng.sample(COLOR_NAMES, n_frames)
    cells = rng.sample(all_cells(FRAME_ROWS, FRAME_COLS), n_frames)
    items = [(r, c, rng.choice(SHAPES), color) for (r, c), color in zip(cells, colors)]
    frame = rng.randint(1, n_frames)
    _, _, shape, color = items[frame - 1]
    options, answer = make_options(rng, color, pick_distractors(rng, color, COLOR_NAMES, 3))
    cot = f"Frame {frame} adds {article(color + ' ' + shape)}."
    meta = {"frames": [list(item) for item in items]}
    question = f"Look at the clip. What color is the object that is new in frame {frame}?"
    return new_sample(question, answer, "choice", cot, meta, video=render_frames(items), options=options)


@_generic("generic_line_count", "Count the objects in one row or one column.", {"n_shapes": 7})
def make_line_count(rng, knobs):
    """Number answer 0..4 for a named row or column."""
    scene = random_scene(rng, knobs["n_shapes"])
    axis, index = rng.choice(["row", "column"]), rng.randint(1, 4)
    positions = sorted(cell for cell in scene if cell[0 if axis == "row" else 1] == index)
    cot = f"{axis.capitalize()} {index} holds {plural(len(positions), 'object')}."
    return _image_sample(f"Count the objects in {axis} {index}.", str(len(positions)), "number", cot, scene)


@_generic("generic_shape_color", "Color of the only object of a given shape.", {"n_others": 4})
def make_shape_color(rng, knobs):
    """Choice among 4 colors; exactly one object has the named shape."""
    shape = rng.choice(SHAPES)
    color = rng.choice(COLOR_NAMES)
    scene = {rng.choice(all_cells()): (shape, color)}
    scene = random_scene(rng, knobs["n_others"], shapes=[s for s in SHAPES if s != shape], scene=scene)
    options, answer = make_options(rng, color, pick_distractors(rng, color, COLOR_NAMES, 3))
    cot = f"The only {shape} is {color}."
    return _image_sample(f"Tell me the color of the {shape} in this picture.", answer, "choice", cot, scene,
                         options)


def generic_samples(n: int, seed: int, split: str = GENERIC) -> list[dict]:
    """``n`` finalized generic samples (round-robin over generic subtasks), deterministic in ``seed``.

    Sample i uses subtask ``i % len(subtasks)`` and the RNG of (seed, split, subtask, i); ids are
    ``f"{subtask}-{split}-{i:05d}"`` and ``meta.planted_region == "generic"``. ``split`` only
    selects an independent stream (e.g. a held-out generic set); there is no noise to switch off.
    """
    subtasks = subtasks_for(GENERIC)
    rows = []
    for i in range(n):
        subtask = subtasks[i % len(subtasks)]
        sample = subtask.make(sample_rng(seed, split, subtask.name, i), dict(subtask.knobs))
        rows.append(finalize(sample, subtask, split, i))
    return rows
