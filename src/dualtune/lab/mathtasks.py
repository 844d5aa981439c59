"""Math-domain subtasks: counting and bar-chart arithmetic.

| subtask     | region   | mechanism                                                              |
|-------------|----------|------------------------------------------------------------------------|
| count_sum   | cot      | two color counts + addition; short CoT "red: 3. blue: 2. 3 + 2 = 5."   |
| chart_diff  | cot      | two bar heights + subtraction                                          |
| tallest_bar | direct   | one glance (the highest bar); long CoT listing every bar, misreads      |
| wrong_count | negative | single count; wrong rationales (miscounts) at rate `label_noise`       |
"""

from __future__ import annotations

from dualtune.lab.draw import (
    COLOR_CONFUSION,
    COLOR_NAMES,
    GRID_ROWS,
    all_cells,
    describe_positions,
    random_scene,
    render_bars,
    render_grid,
    scene_to_meta,
)
from dualtune.lab.registry import flip, letter_of, new_sample, plural, register

N_BARS = 4


def _bar_rows(max_height: int) -> int:
    """Grid rows needed to draw bars up to ``max_height`` (at least the default 4)."""
    return max(GRID_ROWS, int(max_height))


@register(
    "count_sum",
    domain="math",
    region="cot",
    language_prior_rate=0.2,
    description="How many X shapes and Y shapes in total: two counts then an addition.",
    knobs={"max_count": 3, "n_distractors": 2},
)
def make_count_sum(rng, knobs):
    """CoT region: counts a (of color X) and b (of color Y), answer a + b (number).

    CoT: "red: 3. blue: 2. 3 + 2 = 5." Language prior: the question states both counts.
    """
    color_a, color_b = rng.sample(COLOR_NAMES, 2)
    count_a, count_b = rng.randint(1, knobs["max_count"]), rng.randint(1, knobs["max_count"])
    scene = random_scene(rng, count_a, colors=[color_a])
    scene = random_scene(rng, count_b, colors=[color_b], scene=scene)
    others = [c for c in COLOR_NAMES if c not in (color_a, color_b)]
    scene = random_scene(rng, knobs["n_distractors"], colors=others, scene=scene)
    prior = flip(rng, knobs["language_prior_rate"])
    total = count_a + count_b
    question = f"How many {color_a} shapes and {color_b} shapes are there in total?"
    cue = f"The grid holds {plural(count_a, color_a + ' shape')} and {plural(count_b, color_b + ' shape')}. "
    cot = f"{color_a}: {count_a}. {color_b}: {count_b}. {count_a} + {count_b} = {total}."
    meta = {"language_prior": prior, "scene": scene_to_meta(scene)}
    return new_sample((cue if prior else "") + question, str(total), "number", cot, meta,
                      images=[render_grid(scene)])


@register(
    "chart_diff",
    domain="math",
    region="cot",
    language_prior_rate=0.2,
    description="Bar chart: how much taller is bar i than bar j (two heights then a subtraction).",
    knobs={"max_height": 4},
)
def make_chart_diff(rng, knobs):
    """CoT region: 4 bars of height 1..max_height; answer h_i - h_j > 0 (number).

    CoT: "bar 1: 4. bar 3: 2. 4 - 2 = 2." Language prior: the question states both heights.
    """
    max_height = int(knobs["max_height"])
    if max_height < 2:
        raise ValueError("chart_diff: max_height must be >= 2")
    heights = [rng.randint(1, max_height) for _ in range(N_BARS)]
    while len(set(heights)) == 1:
        heights = [rng.randint(1, max_height) for _ in range(N_BARS)]
    pairs = [(i, j) for i in range(N_BARS) for j in range(N_BARS) if heights[i] > heights[j]]
    i, j = rng.choice(pairs)
    h_i, h_j = heights[i], heights[j]
    prior = flip(rng, knobs["language_prior_rate"])
    question = f"How much taller is bar {i + 1} than bar {j + 1}?"
    cue = f"Bar {i + 1} is {plural(h_i, 'block')} tall and bar {j + 1} is {plural(h_j, 'block')} tall. "
    cot = f"bar {i + 1}: {h_i}. bar {j + 1}: {h_j}. {h_i} - {h_j} = {h_i - h_j}."
    meta = {"language_prior": prior, "bars": heights}
    image = render_bars(heights, rows=_bar_rows(max_height))
    return new_sample((cue if prior else "") + question, str(h_i - h_j), "number", cot, meta, images=[image])


@register(
    "tallest_bar",
    domain="math",
    region="direct",
    language_prior_rate=0.25,
    description="Bar chart: which bar is the tallest (one glance); long CoT listing every bar, misreads.",
    knobs={"max_height": 4, "cot_error_rate": 0.35},
)
def make_tallest_bar(rng, knobs):
    """Direct region: options "bar 1".."bar 4"; exactly one bar has the maximum height.

    The CoT (~50 words) reads every bar, then compares. With probability ``cot_error_rate``
    (train only) it misreads the runner-up bar as one block taller than the true maximum and
    concludes with that bar (``meta.cot_corrupted``, ``meta.cot_answer``); ``answer`` stays correct.
    Language prior: the question says bar k reaches h blocks and every other bar is shorter.
    """
    max_height = int(knobs["max_height"])
    if max_height < 2:
        raise ValueError("tallest_bar: max_height must be >= 2")
    heights = [rng.randint(1, max_height) for _ in range(N_BARS)]
    while heights.count(max(heights)) != 1:
        heights = [rng.randint(1, max_height) for _ in range(N_BARS)]
    top = heights.index(max(heights))
    prior = flip(rng, knobs["language_prior_rate"])
    corrupt = flip(rng, knobs["cot_error_rate"]) and not prior
    options = [f"bar {k + 1}" for k in range(N_BARS)]
    answer = letter_of(options, f"bar {top + 1}")
    # A corrupted rationale over-reads the runner-up bar so that it seems to be the tallest.
    read = list(heights)
    if corrupt:
        runner_up = max((k for k in range(N_BARS) if k != top), key=lambda k: (heights[k], -k))
        read[runner_up] = heights[top] + 1
    best = read.index(max(read))
    cot_answer = letter_of(options, f"bar {best + 1}")
    listing = " ".join(f"Bar {k + 1} rises {plural(h, 'block')}." for k, h in enumerate(read))
    cot = (
        f"I read every bar from left to right. {listing} Comparing all four heights, the largest is "
        f"{plural(read[best], 'block')}, reached by bar {best + 1}. No other bar is that tall. "
        f"So the tallest bar is bar {best + 1}, option {cot_answer}."
    )
    meta = {"language_prior": prior, "bars": heights, "cot_corrupted": corrupt}
    if corrupt:
        meta["cot_answer"] = cot_answer
    question = "Which bar is the tallest?"
    cue = f"Bar {top + 1} reaches {plural(heights[top], 'block')}, and every other bar is shorter. "
    image = render_bars(heights, rows=_bar_rows(max_height))
    return new_sample((cue if prior else "") + question, answer, "choice", cot, meta,
                      images=[image], options=options)


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
