"""color_product (lab v10): a color count read from the grid times a count stated in the text; the probe;
the worded generic arithmetic that teaches carrying a stated number into the rationale."""

from __future__ import annotations

import re
from collections import defaultdict

from dualtune.lab import COLORS, generate_split, generic_samples, get_subtask
from dualtune.lab.draw import all_cells, cell_center
from dualtune.lab.probe import PROBES, probe_samples, summarize
from tests.test_lab import meta

WHITE = (255, 255, 255)
RATIONALE = re.compile(r"^(\w+): (\d+)\. (\w+): (\d+)\. (\d+) times (\d+) = (\d+)\.$")


def _rows(n=120, split="train", knobs=None):
    return [r for r in generate_split("spatial", split, n, 0, knobs) if r["subtask"] == "color_product"]


def _drawn(image) -> list:
    """Colors of the filled cells of a 4x4 grid picture, read from the pixels (not from meta)."""
    names = {rgb: name for name, rgb in COLORS.items()}
    return [names[px] for px in (image.getpixel(cell_center(r, c)) for r, c in all_cells()) if px != WHITE]


def test_rationale_steps_are_the_grid_count_the_stated_count_and_their_product():
    distractors = get_subtask("color_product").knobs["n_distractors"]
    for row in _rows():
        color_a, a, color_b, b, x, y, product = RATIONALE.match(row["cot"]).groups()
        drawn = _drawn(row["images"][0])
        # The first step is a readout of the picture: the X shapes, always next to the same number of others.
        assert drawn.count(color_a) == int(a) and len(drawn) == int(a) + distractors, row["id"]
        # The second step is copied from the text; the bag's color never appears in the grid.
        assert re.search(rf"A bag holds {b} {color_b} shapes?\. ", row["question"]) and color_b not in drawn
        assert (x, y) == (a, b) and int(product) == int(a) * int(b) == int(row["answer"])


def test_answer_needs_both_counts():
    answers_by = defaultdict(lambda: defaultdict(set))
    for row in _rows(200):
        a, b = (int(v) for v in RATIONALE.match(row["cot"]).group(2, 4))
        answers_by["grid"][a].add(row["answer"])
        answers_by["text"][b].add(row["answer"])
        if not meta(row)["language_prior"]:  # without the cue the text never states the grid count
            assert not re.search(rf"\b{a} {row['cot'].split(':')[0]} shapes?\b", row["question"])
    for key in ("grid", "text"):  # neither count alone determines the product
        assert all(len(answers) > 1 for answers in answers_by[key].values()), key


def test_multiplication_steps_were_taught_text_only_and_knobs_apply():
    knobs = get_subtask("color_product").knobs
    arithmetic = get_subtask("generic_arithmetic").knobs
    assert knobs["max_count"] <= arithmetic["max_count"] and knobs["max_second"] <= arithmetic["max_factor"]
    taught = {r["cot"] for r in generic_samples(3000, 0) if r["subtask"] == "generic_arithmetic"}
    steps = {re.search(r"\d+ times \d+ = \d+\.", r["cot"])[0] for r in _rows(200)}
    assert steps <= taught  # every multiplication step of a rationale was seen in pretraining
    small = _rows(60, knobs={"color_product": {"max_count": 2, "max_second": 3, "n_distractors": 0}})
    assert {int(RATIONALE.match(r["cot"])[2]) for r in small} == {1, 2}
    assert {int(RATIONALE.match(r["cot"])[4]) for r in small} == {1, 2, 3}
    assert all(len(_drawn(r["images"][0])) == int(RATIONALE.match(r["cot"])[2]) for r in small)


def test_probe_separates_color_counting_from_the_distractor_shortcut():
    samples = probe_samples(40, seed=1)
    assert [s["subtask"] for s in samples[:4]] == list(PROBES)
    fixed = [s for s in samples if s["subtask"] == "color_fixed"]
    varied = [s for s in samples if s["subtask"] == "color_varied"]
    assert {meta(s)["distractors"] for s in fixed} == {3} and len({meta(s)["distractors"] for s in varied}) > 3
    # A model answering "all shapes minus 3" is perfect on color_fixed only.
    shortcut = [{"score": 0.0, "extracted": str(meta(s)["total"] - 3)} for s in samples]
    for s, rec in zip(samples, shortcut):
        rec["score"] = float(rec["extracted"] == s["answer"])
    summary = summarize(samples, shortcut)
    assert summary["color_fixed"]["accuracy"] == 1.0 and summary["color_varied"]["accuracy"] < 0.5


def test_generic_arithmetic_teaches_carrying_a_stated_number_into_the_times_step():
    rows = [r for r in generic_samples(1600, 0) if r["subtask"] == "generic_arithmetic"]
    worded = [r for r in rows if r["question"].startswith("A crate holds ")]
    assert 0.35 <= len(worded) / len(rows) <= 0.65  # worded_rate 0.5
    for row in worded:
        b, a = re.fullmatch(r"A crate holds (\d+) apples\. How many apples are there in (\d+) crates\?",
                            row["question"]).groups()
        assert row["cot"] == f"{a} times {b} = {int(a) * int(b)}." and row["answer"] == str(int(a) * int(b))
    plain = generic_samples(1600, 0, knobs={"generic_arithmetic": {"worded_rate": 0.0}})
    assert all(r["question"].startswith("Work out ") for r in plain if r["subtask"] == "generic_arithmetic")
