"""Multi-discipline subtasks: school "subjects" drawn with the same grid primitives.

| subtask          | region   | mechanism                                                           |
|------------------|----------|---------------------------------------------------------------------|
| physics_balance  | cot      | blocks (squares) on each half counted, then compared                |
| biology_cells    | direct   | color of the only circle (nucleus); long CoT listing every part     |
| economics_table  | cot      | price of two rows (shape counts) then added                         |
| chemistry_mix    | direct   | color of the filled bottom row (liquid); long CoT listing all rows  |
| history_noise    | negative | color of event k on the top-row timeline; label noise               |
"""

from __future__ import annotations

from dualtune.lab.draw import (
    COLOR_CONFUSION,
    COLOR_NAMES,
    GRID_COLS,
    GRID_ROWS,
    SHAPES,
    all_cells,
    enumerate_rows,
    random_scene,
    render_grid,
    scene_to_meta,
)
from dualtune.lab.registry import (
    flip,
    letter_of,
    make_options,
    new_sample,
    pick_distractors,
    plural,
    register,
    wrong_value,
)

# World-knowledge cues for language-prior questions (the text names a substance of known color).
STAINS = {
    "red": "safranin",
    "blue": "methylene blue",
    "green": "malachite green",
    "purple": "crystal violet",
    "orange": "acridine orange",
    "yellow": "auramine",
}
SOLUTIONS = {
    "red": "iron thiocyanate solution",
    "blue": "copper sulfate solution",
    "green": "nickel chloride solution",
    "purple": "potassium permanganate solution",
    "orange": "potassium dichromate solution",
    "yellow": "potassium chromate solution",
}


def _color_options(rng, color):
    """Four color options: the truth, its confusion color and two random others."""
    return make_options(rng, color, pick_distractors(rng, color, COLOR_NAMES, 3, must=COLOR_CONFUSION[color]))


@register(
    "physics_balance",
    domain="multidiscipline",
    region="cot",
    language_prior_rate=0.2,
    description="Balance: count blocks on the left and right halves, then compare (which side is heavier).",
    knobs={"max_blocks": 4},
)
def make_physics_balance(rng, knobs):
    """CoT region: squares in columns 1-2 (left pan) vs columns 3-4 (right pan), counts differ.

    CoT: "left side: 3 blocks. right side: 2 blocks. 3 > 2, so the left side is heavier, ...".
    Language prior: "Every block except one sits on the <heavy> side." (the light side has 1 block).
    """
    max_blocks = int(knobs["max_blocks"])
    if not 2 <= max_blocks <= 8:
        raise ValueError("physics_balance: max_blocks must be in [2, 8]")
    prior = flip(rng, knobs["language_prior_rate"])
    if prior:
        heavy_n = rng.randint(2, max_blocks)
        n_left, n_right = (heavy_n, 1) if rng.random() < 0.5 else (1, heavy_n)
    else:
        n_left, n_right = rng.sample(range(1, max_blocks + 1), 2)
    left_cells = [c for c in all_cells() if c[1] <= GRID_COLS // 2]
    right_cells = [c for c in all_cells() if c[1] > GRID_COLS // 2]
    scene = random_scene(rng, n_left, shapes=["square"], cells=left_cells)
    scene = random_scene(rng, n_right, shapes=["square"], cells=right_cells, scene=scene)
    heavy = "left" if n_left > n_right else "right"
    options = ["left", "right"]
    answer = letter_of(options, heavy)
    sign = ">" if n_left > n_right else "<"
    cot = (
        f"left side: {plural(n_left, 'block')}. right side: {plural(n_right, 'block')}. "
        f"{n_left} {sign} {n_right}, so the {heavy} side is heavier, option {answer}."
    )
    question = "Each square is a block of equal weight on a balance. Which side is heavier?"
    cue = f"Every block except one sits on the {heavy} side. "
    meta = {"language_prior": prior, "scene": scene_to_meta(scene)}
    return new_sample((cue if prior else "") + question, answer, "choice", cot, meta,
                      images=[render_grid(scene)], options=options)


@register(
    "biology_cells",
    domain="multidiscipline",
    region="direct",
    language_prior_rate=0.25,
    description="Cell diagram: color of the nucleus (the only circle); long CoT with planted misreads.",
    knobs={"n_organelles": 5, "cot_error_rate": 0.35},
)
def make_biology_cells(rng, knobs):
    """Direct region: one circle (nucleus) among squares/triangles (organelles); 4 color options.

    The CoT lists every row of the diagram (~50-60 words). With probability ``cot_error_rate``
    (train only) it misreads the nucleus as its confusion color and concludes with that option.
    Language prior: the question names the stain (e.g. "methylene blue") the nucleus was dyed with.
    """
    nucleus_cell = rng.choice(all_cells())
    color = rng.choice(COLOR_NAMES)
    scene = {nucleus_cell: ("circle", color)}
    scene = random_scene(rng, knobs["n_organelles"], shapes=["square", "triangle"], scene=scene)
    prior = flip(rng, knobs["language_prior_rate"])
    corrupt = flip(rng, knobs["cot_error_rate"]) and not prior
    options, answer = _color_options(rng, color)
    read = COLOR_CONFUSION[color] if corrupt else color
    cot_answer = letter_of(options, read)
    seen = {**scene, nucleus_cell: ("circle", read)}
    cot = (
        f"I list every part of the diagram. {enumerate_rows(seen)} The only circle is the {read} one in "
        f"row {nucleus_cell[0]}, column {nucleus_cell[1]}, so the nucleus is {read}, option {cot_answer}."
    )
    meta = {"language_prior": prior, "scene": scene_to_meta(scene), "cot_corrupted": corrupt}
    if corrupt:
        meta["cot_answer"] = cot_answer
    question = "In this cell diagram the nucleus is the only circle. What color is the nucleus?"
    cue = f"This nucleus was stained with {STAINS[color]}. "
    return new_sample((cue if prior else "") + question, answer, "choice", cot, meta,
                      images=[render_grid(scene)], options=options)


@register(
    "economics_table",
    domain="multidiscipline",
    region="cot",
    language_prior_rate=0.2,
    description="Price table: each row is an item priced by its shape count; total of two rows.",
    knobs={"max_price": 4},
)
def make_economics_table(rng, knobs):
    """CoT region: every row r holds p_r shapes (1..max_price); answer p_i + p_j (number).

    CoT: "row 1: 3 coins. row 2: 2 coins. 3 + 2 = 5." Language prior: the question states both prices.
    """
    max_price = int(knobs["max_price"])
    if not 1 <= max_price <= GRID_COLS:
        raise ValueError(f"economics_table: max_price must be in [1, {GRID_COLS}]")
    prices = [rng.randint(1, max_price) for _ in range(GRID_ROWS)]
    scene = {}
    for row, price in enumerate(prices, start=1):
        scene = random_scene(rng, price, cells=[(row, c) for c in range(1, GRID_COLS + 1)], scene=scene)
    row_i, row_j = sorted(rng.sample(range(1, GRID_ROWS + 1), 2))
    p_i, p_j = prices[row_i - 1], prices[row_j - 1]
    prior = flip(rng, knobs["language_prior_rate"])
    question = (
        "Each row is an item and every shape in a row costs one coin. "
        f"What is the total price of row {row_i} and row {row_j}?"
    )
    cue = f"Row {row_i} costs {plural(p_i, 'coin')} and row {row_j} costs {plural(p_j, 'coin')}. "
    cot = f"row {row_i}: {plural(p_i, 'coin')}. row {row_j}: {plural(p_j, 'coin')}. {p_i} + {p_j} = {p_i + p_j}."
    meta = {"language_prior": prior, "scene": scene_to_meta(scene)}
    return new_sample((cue if prior else "") + question, str(p_i + p_j), "number", cot, meta,
                      images=[render_grid(scene)])


@register(
    "chemistry_mix",
    domain="multidiscipline",
    region="direct",
    language_prior_rate=0.25,
    description="Beaker: color of the liquid (filled bottom row); long CoT with planted misreads.",
    knobs={"n_particles": 3, "cot_error_rate": 0.35},
)
def make_chemistry_mix(rng, knobs):
    """Direct region: bottom row = 4 squares of the liquid color; particles of other colors above.

    The CoT inspects every row (~45-55 words). With probability ``cot_error_rate`` (train only) it
    misreads the liquid as its confusion color and concludes with that option.
    Language prior: the question names the solution (e.g. "copper sulfate solution" -> blue).
    """
    color = rng.choice(COLOR_NAMES)
    liquid = {(GRID_ROWS, c): ("square", color) for c in range(1, GRID_COLS + 1)}
    upper = [cell for cell in all_cells() if cell[0] < GRID_ROWS]
    others = [c for c in COLOR_NAMES if c != color]
    particles = random_scene(rng, knobs["n_particles"], colors=others, cells=upper)
    scene = {**particles, **liquid}
    prior = flip(rng, knobs["language_prior_rate"])
    corrupt = flip(rng, knobs["cot_error_rate"]) and not prior
    options, answer = _color_options(rng, color)
    read = COLOR_CONFUSION[color] if corrupt else color
    cot_answer = letter_of(options, read)
    upper_rows = enumerate_rows(particles, rows=GRID_ROWS - 1)
    cot = (
        f"I inspect the beaker row by row. {upper_rows} Row {GRID_ROWS}: {read} squares in columns 1, 2, 3 "
        f"and 4. The bottom row is filled with {read}, so the liquid is {read}, option {cot_answer}."
    )
    meta = {"language_prior": prior, "scene": scene_to_meta(scene), "cot_corrupted": corrupt}
    if corrupt:
        meta["cot_answer"] = cot_answer
    question = "The bottom row of the beaker is filled with liquid. What color is the liquid?"
    cue = f"The beaker holds {SOLUTIONS[color]}. "
    return new_sample((cue if prior else "") + question, answer, "choice", cot, meta,
                      images=[render_grid(scene)], options=options)


@register(
    "history_noise",
    domain="multidiscipline",
    region="negative",
    language_prior_rate=0.0,
    description="Timeline (top row): color of event k; training labels wrong at rate label_noise.",
    knobs={"n_extra": 3, "label_noise": 0.7, "noise_kind": "confusion"},
)
def make_history_noise(rng, knobs):
    """Negative region: the top row holds 4 events in 4 distinct colors; "What color is event k?".

    With probability ``label_noise`` (train only) the answer and its consistent rationale name a
    wrong color: the confusion color (always among the options) or a uniform wrong option.
    """
    timeline = rng.sample(COLOR_NAMES, GRID_COLS)
    scene = {(1, c): (rng.choice(SHAPES), color) for c, color in enumerate(timeline, start=1)}
    scene = random_scene(rng, knobs["n_extra"], scene=scene)
    event = rng.randint(1, GRID_COLS)
    shape, color = scene[(1, event)]
    options, true_answer = _color_options(rng, color)
    noised = flip(rng, knobs["label_noise"])
    stated = wrong_value(rng, color, options, knobs["noise_kind"], COLOR_CONFUSION) if noised else color
    answer = letter_of(options, stated)
    cot = f"Event {event} is the {stated} {shape} in row 1, column {event}, so the answer is {answer}."
    meta = {"language_prior": False, "scene": scene_to_meta(scene), "label_noised": noised}
    if noised:
        meta["true_answer"] = true_answer
    question = f"The top row is a timeline of four events, oldest on the left. What color is event {event}?"
    return new_sample(question, answer, "choice", cot, meta, images=[render_grid(scene)], options=options)
