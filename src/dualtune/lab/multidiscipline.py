"""Multi-discipline subtasks: school "subjects" drawn with the same grid primitives (content only).

| subtask          | region   | mechanism                                                           |
|------------------|----------|---------------------------------------------------------------------|
| physics_weight   | cot      | one color count times a stated weight                               |
| biology_cells    | direct   | organelles around the only circle (one count); long CoT, misses     |
| economics_price  | cot      | one color count times a stated unit price                           |
| chemistry_mix    | direct   | particles above the liquid (one count); long CoT, misses            |
| history_noise    | negative | number of events of one color; systematic label noise               |
"""

from __future__ import annotations

from dualtune.lab.draw import (
    COLOR_CONFUSION,
    COLOR_NAMES,
    GRID_COLS,
    GRID_ROWS,
    all_cells,
    enumerate_rows,
    random_scene,
    render_grid,
    scene_to_meta,
)
from dualtune.lab.composers import count_times_sample, misread_sample, planted_misread
from dualtune.lab.registry import flip, new_sample, register


# World-knowledge flavour for language-prior cues (the solution the particles were dropped into).
SOLUTIONS = {
    "red": "iron thiocyanate solution",
    "blue": "copper sulfate solution",
    "green": "nickel chloride solution",
    "purple": "potassium permanganate solution",
    "orange": "potassium dichromate solution",
    "yellow": "potassium chromate solution",
}


@register(
    "physics_weight",
    domain="multidiscipline",
    region="cot",
    language_prior_rate=0.2,
    description="Scale: every X block weighs p kg (stated): one color count, then a product.",
    knobs={"max_count": 4, "max_kg": 9, "n_distractors": 3},
)
def make_physics_weight(rng, knobs):
    """CoT region: a blocks (squares) of color X among other blocks; answer a * p (kg).

    CoT: "red blocks: 3. 3 times 2 = 6 kg." Language prior: the number of X blocks is stated.
    """
    return count_times_sample(
        rng, knobs, "max_kg", question="On this scale each {color} block weighs {mult} kg. How many kg do the "
        "{color} blocks weigh?", cue="The scale carries {things}. ", noun="block", label="{color} blocks",
        unit=" kg", shapes=["square"])


@register(
    "biology_cells",
    domain="multidiscipline",
    region="direct",
    language_prior_rate=0.25,
    description="Cell diagram: how many organelles surround the nucleus (one count); long CoT, misses.",
    knobs={"min_organelles": 2, "max_organelles": 5, "cot_error_rate": 0.35},
)
def make_biology_cells(rng, knobs):
    """Direct region: one circle (nucleus) plus 2-5 squares/triangles (organelles); answer = organelles.

    The CoT lists every row of the diagram (~40-60 words). With probability ``cot_error_rate``
    (train only) it overlooks one organelle and concludes one too few.
    Language prior: the question names the number of organelles.
    """
    nucleus_cell = rng.choice(all_cells())
    scene = {nucleus_cell: ("circle", rng.choice(COLOR_NAMES))}
    n_organelles = rng.randint(knobs["min_organelles"], knobs["max_organelles"])
    scene = random_scene(rng, n_organelles, shapes=["square", "triangle"], scene=scene)
    organelles = {cell: item for cell, item in scene.items() if cell != nucleus_cell}
    prior, corrupt, seen = planted_misread(rng, knobs, organelles)
    seen[nucleus_cell] = scene[nucleus_cell]
    cot_answer = str(len(seen) - 1)
    cot = (
        f"I list every part of the diagram. {enumerate_rows(seen)} Apart from the circle in row "
        f"{nucleus_cell[0]}, column {nucleus_cell[1]} I count {cot_answer} parts, so the answer is {cot_answer}."
    )
    question = "In this cell diagram the nucleus is the only circle. How many organelles does the cell have?"
    cue = f"Under the microscope this cell shows {n_organelles} organelles. "
    return misread_sample(prior, corrupt, scene, question, cue, str(n_organelles), cot, cot_answer)


@register(
    "economics_price",
    domain="multidiscipline",
    region="cot",
    language_prior_rate=0.2,
    description="Each X item costs p coins (stated): one color count, then a multiplication.",
    knobs={"max_count": 4, "max_price": 9, "n_distractors": 3},
)
def make_economics_price(rng, knobs):
    """CoT region: a items of color X (1..max_count) at p coins each (2..max_price); answer a * p.

    CoT: "blue items: 3. 3 times 4 = 12 coins." Language prior: the number of items is stated.
    """
    return count_times_sample(
        rng, knobs, "max_price", question="In this shop every {color} item costs {mult} coins. What do all the "
        "{color} items cost?", cue="The shop has {things} on sale. ", noun="item", label="{color} items",
        unit=" coins")


@register(
    "chemistry_mix",
    domain="multidiscipline",
    region="direct",
    language_prior_rate=0.25,
    description="Beaker: how many particles float above the liquid (one count); long CoT, misses.",
    knobs={"min_particles": 1, "max_particles": 4, "cot_error_rate": 0.35},
)
def make_chemistry_mix(rng, knobs):
    """Direct region: bottom row = 4 squares of the liquid color; 1-4 particles above; answer = particles.

    The CoT inspects every row (~40-55 words). With probability ``cot_error_rate`` (train only) it
    overlooks one particle and concludes one too few. Language prior: the number of particles is stated.
    """
    color = rng.choice(COLOR_NAMES)
    liquid = {(GRID_ROWS, c): ("square", color) for c in range(1, GRID_COLS + 1)}
    upper = [cell for cell in all_cells() if cell[0] < GRID_ROWS]
    others = [c for c in COLOR_NAMES if c != color]
    n_particles = rng.randint(knobs["min_particles"], knobs["max_particles"])
    particles = random_scene(rng, n_particles, colors=others, cells=upper)
    scene = {**particles, **liquid}
    prior, corrupt, seen = planted_misread(rng, knobs, particles)
    cot_answer = str(len(seen))
    upper_rows = enumerate_rows(seen, rows=GRID_ROWS - 1)
    cot = (
        f"I inspect the beaker row by row. {upper_rows} Row {GRID_ROWS}: {color} squares in columns 1, 2, 3 "
        f"and 4, the liquid. Above the liquid float {cot_answer} particles, so the answer is {cot_answer}."
    )
    question = "The bottom row of the beaker is filled with liquid. How many particles float above the liquid?"
    cue = f"The chemist dropped {n_particles} particles into the {SOLUTIONS[color]}. "
    return misread_sample(prior, corrupt, scene, question, cue, str(n_particles), cot, cot_answer)


@register(
    "history_noise",
    domain="multidiscipline",
    region="negative",
    language_prior_rate=0.0,
    description="How many events are marked in color X; training labels miscount at rate label_noise.",
    knobs={"max_count": 4, "n_distractors": 3, "label_noise": 0.7, "noise_kind": "confusion"},
)
def make_history_noise(rng, knobs):
    """Negative region: every shape is an event; "Count the X events on this timeline." (number).

    One event always has the confusion color of X. With probability ``label_noise`` (train only)
    the answer and its consistent rationale are wrong: they also count that look-alike
    (``noise_kind="confusion"``) or state a uniform wrong count. ``meta.true_answer`` keeps the truth.
    """
    color = rng.choice(COLOR_NAMES)
    count = rng.randint(1, knobs["max_count"])
    scene = random_scene(rng, count, colors=[color])
    scene = random_scene(rng, 1, colors=[COLOR_CONFUSION[color]], scene=scene)
    others = [c for c in COLOR_NAMES if c != color]
    scene = random_scene(rng, max(0, knobs["n_distractors"] - 1), colors=others, scene=scene)
    noised = flip(rng, knobs["label_noise"])
    stated = count
    if noised and knobs["noise_kind"] == "confusion":
        stated = count + 1
    elif noised:
        stated = rng.choice([k for k in range(0, count + knobs["n_distractors"] + 1) if k != count])
    cot = f"{color.capitalize()} events on the timeline: {stated}."
    meta = {"language_prior": False, "scene": scene_to_meta(scene), "label_noised": noised}
    if noised:
        meta["true_answer"] = str(count)
    question = f"Count the {color} events on this timeline."
    return new_sample(question, str(stated), "number", cot, meta, images=[render_grid(scene)])
