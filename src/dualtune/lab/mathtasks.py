"""Math-domain subtasks: arithmetic on color counts (content readouts only).

| subtask        | region   | mechanism                                                                |
|----------------|----------|--------------------------------------------------------------------------|
| weighted_score | cot      | one color count times a stated number of points                          |
| bag_total      | cot      | one color count times a stated number                                    |
| free_cells     | direct   | one glance (free cells of the board); long CoT, planted missed pieces    |
| wrong_count    | negative | single count; wrong rationales (miscounts) at rate `label_noise`         |
"""

from __future__ import annotations

from dualtune.lab.draw import (
    COLOR_CONFUSION,
    COLOR_NAMES,
    all_cells,
    describe_positions,
    enumerate_rows,
    random_scene,
    render_grid,
    scene_to_meta,
)
from dualtune.lab.composers import count_times_sample, misread_sample, planted_misread
from dualtune.lab.registry import flip, new_sample, register


@register(
    "weighted_score",
    domain="math",
    region="cot",
    language_prior_rate=0.2,
    description="Score = count(X) * p with p stated per question: one content readout, then a product.",
    knobs={"max_count": 4, "max_points": 9, "n_distractors": 3},
)
def make_weighted_score(rng, knobs):
    """CoT region: a shapes of color X (1..max_count) score p points each (2..max_points); answer a * p.

    The weight varies per question, so DA must multiply a text number by an image count in one
    pass; the CoT writes the count, then uses the multiplication table of the generic mixture.
    CoT: "red: 3. 3 times 5 = 15." Language prior: the count is stated.
    """
    return count_times_sample(
        rng, knobs, "max_points", question="Each {color} shape scores {mult} points. What is the total score of "
        "the {color} shapes?", cue="The grid holds {things}. ", noun="shape", label="{color}")


@register(
    "bag_total",
    domain="math",
    region="cot",
    language_prior_rate=0.2,
    description="Every X shape is a bag of p marbles (p stated): one count, then a multiplication.",
    knobs={"max_count": 4, "max_per_bag": 9, "n_distractors": 3},
)
def make_bag_total(rng, knobs):
    """CoT region: a shapes of color X (1..max_count), p marbles each (2..max_per_bag); answer a * p.

    CoT: "red bags: 3. 3 times 4 = 12." Language prior: the number of bags is stated.
    """
    return count_times_sample(
        rng, knobs, "max_per_bag", question="Every {color} shape is a bag of {mult} marbles. How many marbles are "
        "there in the bags?", cue="There are {things}. ", noun="bag", label="{color} bags")


@register(
    "free_cells",
    domain="math",
    region="direct",
    language_prior_rate=0.25,
    description="Board of 16 cells: how many are still free (single content readout); long CoT, misses.",
    knobs={"min_shapes": 3, "max_shapes": 6, "cot_error_rate": 0.35},
)
def make_free_cells(rng, knobs):
    """Direct region: 3-6 pieces on a 16-cell board; answer 16 - pieces (number).

    The CoT lists every row (~40-60 words). With probability ``cot_error_rate`` (train only) it
    overlooks one piece and concludes one free cell too many. Language prior: the piece count is stated.
    """
    scene = random_scene(rng, rng.randint(knobs["min_shapes"], knobs["max_shapes"]))
    prior, corrupt, seen = planted_misread(rng, knobs, scene)
    cells = len(all_cells())
    cot_answer = str(cells - len(seen))
    cot = (
        f"I read the board row by row, cell by cell. {enumerate_rows(seen)} The board has {cells} cells and "
        f"{len(seen)} pieces, so the answer is {cot_answer}."
    )
    question = "Each shape is a game piece on a board of 16 cells. How many cells are still free?"
    cue = f"The players have placed {len(scene)} pieces. "
    return misread_sample(prior, corrupt, scene, question, cue, str(cells - len(scene)), cot, cot_answer)


@register(
    "wrong_count",
    domain="math",
    region="negative",
    language_prior_rate=0.0,
    description="How many X shapes; training rationales+answers are miscounts at rate label_noise.",
    knobs={"max_count": 4, "n_distractors": 3, "label_noise": 0.7, "noise_kind": "confusion"},
)
def make_wrong_count(rng, knobs):
    """Negative region ("wrong rationales"): count the shapes of one color (number answer).

    Every grid also holds one shape of the confusion color of X (it counts as one of the
    ``n_distractors``), whether or not the sample is noised. With probability ``label_noise``
    (train only) the rationale and answer come from a wrong readout: with ``noise_kind="confusion"``
    the counter also counts the confusion-colored shapes; with "uniform" it reports a random wrong
    count (listing too few or too many positions). ``meta.label_noised`` / ``meta.true_answer``.
    """
    color = rng.choice(COLOR_NAMES)
    lookalike = COLOR_CONFUSION[color]
    count = rng.randint(1, knobs["max_count"])
    scene = random_scene(rng, count, colors=[color])
    scene = random_scene(rng, 1, colors=[lookalike], scene=scene)
    others = [c for c in COLOR_NAMES if c != color]
    scene = random_scene(rng, max(0, knobs["n_distractors"] - 1), colors=others, scene=scene)
    true_positions = sorted(cell for cell, (_, c) in scene.items() if c == color)
    noised = flip(rng, knobs["label_noise"])
    positions = true_positions
    if noised and knobs["noise_kind"] == "confusion":
        positions = sorted(cell for cell, (_, c) in scene.items() if c in (color, lookalike))
    elif noised:
        limit = count + knobs["n_distractors"]
        stated = rng.choice([k for k in range(0, limit + 1) if k != count])
        spare = [cell for cell in all_cells() if cell not in true_positions]
        positions = sorted(true_positions[:stated] + rng.sample(spare, max(0, stated - count)))
    stated_count = len(positions)
    cot = f"The {color} shapes are at {describe_positions(positions)}. That makes {stated_count}."
    meta = {"language_prior": False, "scene": scene_to_meta(scene), "label_noised": noised}
    if noised:
        meta["true_answer"] = str(count)
    question = f"How many {color} shapes are in the grid?"
    return new_sample(question, str(stated_count), "number", cot, meta, images=[render_grid(scene)])
