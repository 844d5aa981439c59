"""Tests of the procedural reasoning lab: determinism, schema, planted regions, priors, noise, cache."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest
from datasets import Dataset

import dualtune.lab.build as lab_build
from dualtune.lab import (
    COLOR_CONFUSION,
    COLORS,
    DOMAINS,
    SUBTASKS,
    build_lab,
    cot_answer,
    generate_split,
    generic_samples,
    lab_text_corpus,
    load_lab,
    planted_regions,
    png_bytes,
    render_grid,
    subtasks_for,
)
from dualtune.lab.draw import cell_center, render_bars
from dualtune.schema import FEATURES, validate_rows


def meta(row):
    return json.loads(row["meta"])


def by_subtask(rows):
    groups = defaultdict(list)
    for row in rows:
        groups[row["subtask"]].append(row)
    return groups


def fingerprint(rows):
    """Every text field plus the PNG bytes of every image/frame."""
    return [
        (r["id"], r["domain"], r["subtask"], r["question"], tuple(r["options"]), r["answer"], r["answer_type"],
         r["cot"], r["meta"], r["source"], tuple(png_bytes(im) for im in r["images"] + r["video"]))
        for r in rows
    ]


@pytest.fixture(scope="module")
def train200():
    return by_subtask(generate_split("all", "train", 200, seed=0))


@pytest.fixture(scope="module")
def test100():
    return by_subtask(generate_split("all", "test", 100, seed=0))


def test_registry_planted_truth():
    regions = planted_regions()
    assert set(regions) == set(SUBTASKS)
    for sub in SUBTASKS.values():
        assert sub.planted_region in {"cot", "direct", "negative"}
        assert 0.0 <= sub.language_prior_rate <= 1.0 and sub.description
        assert sub.knobs["language_prior_rate"] == sub.language_prior_rate
        if sub.planted_region == "direct":
            assert sub.knobs["cot_error_rate"] == 0.35
        if sub.planted_region == "negative":
            assert sub.knobs["label_noise"] == 0.7 and sub.language_prior_rate == 0.0
    for domain in DOMAINS:
        subs = subtasks_for(domain)
        assert len(subs) >= 4 and {"cot", "direct"} <= {s.planted_region for s in subs}
    assert sum(r == "negative" for r in regions.values()) >= 2
    assert [s.name for s in subtasks_for("all")] == [s.name for d in DOMAINS for s in subtasks_for(d)]
    assert all(s.domain == "generic" for s in subtasks_for("generic"))
    assert not set(s.name for s in subtasks_for("generic")) & set(SUBTASKS)


def test_same_seed_same_bytes_other_seed_differs():
    first = fingerprint(generate_split("all", "train", 3, seed=7))
    assert first == fingerprint(generate_split("all", "train", 3, seed=7))
    assert first != fingerprint(generate_split("all", "train", 3, seed=8))
    assert fingerprint(generic_samples(9, 1)) == fingerprint(generic_samples(9, 1))


def test_samples_independent_of_domain_choice_and_split_streams():
    alone = [r for r in generate_split("spatial", "train", 3, 0) if r["subtask"] == "empty_cells"]
    in_all = [r for r in generate_split("all", "train", 5, 0) if r["subtask"] == "empty_cells"][:3]
    assert fingerprint(alone) == fingerprint(in_all)
    train = generate_split("math", "train", 4, 0)
    test = generate_split("math", "test", 4, 0)
    assert [r["id"] for r in train][:2] == ["weighted_score-train-00000", "weighted_score-train-00001"]
    assert {r["question"] + r["cot"] for r in train} != {r["question"] + r["cot"] for r in test}


def test_schema_valid_and_images_on_the_token_grid():
    rows = generate_split("all", "train", 4, 0) + generate_split("all", "test", 2, 0) + generic_samples(18, 0)
    kept, report = validate_rows(rows, strict=True)
    assert report.kept == len(rows) == len(kept)
    ds = Dataset.from_list(rows, features=FEATURES)
    assert len(ds) == len(rows) and ds[0]["images"][0].size == (112, 112)
    for row in rows:
        assert row["source"] == "lab" and row["answer_type"] in ("text", "number") and not row["options"]
        if row["answer_type"] == "text":
            assert row["answer"] in COLORS  # color questions are answered with the color word
        else:
            assert re.fullmatch(r"\d+", row["answer"])
        for im in row["images"]:
            assert im.size[0] % 28 == 0 and im.size[1] % 28 == 0
        for frame in row["video"]:
            assert frame.size == (56, 56)
        assert "<think>" not in row["cot"] and "<answer>" not in row["cot"]


def test_render_pixels_match_scene():
    img = render_grid({(1, 1): ("circle", "red"), (2, 3): ("triangle", "blue")})
    assert img.getpixel(cell_center(1, 1)) == COLORS["red"]
    assert img.getpixel(cell_center(2, 3)) == COLORS["blue"]
    assert img.getpixel(cell_center(4, 4)) == (255, 255, 255)
    assert img.getpixel((0, 0)) == (255, 255, 255)  # cell margin stays white
    bars = render_bars([1, 4, 0, 2])
    white = (255, 255, 255)
    column_filled = [[bars.getpixel(cell_center(r, c)) != white for r in range(1, 5)] for c in range(1, 5)]
    assert column_filled == [[False, False, False, True], [True] * 4, [False] * 4, [False, False, True, True]]


def _count(scene, color):
    return sum(c == color for _, c in scene.values())


def _truth_from_meta(row):
    """Correct answer recomputed from the structured scene in meta (independent of the maker)."""
    m, q = meta(row), row["question"]
    scene = {(r, c): (s, col) for r, c, s, col in m.get("scene", [])}
    name = row["subtask"]
    if name in ("empty_cells", "free_cells"):
        return str(16 - len(scene))
    if name == "biology_cells":
        return str(sum(shape != "circle" for shape, _ in scene.values()))
    if name == "chemistry_mix":
        return str(sum(r < 4 for r, _ in scene))
    if name == "color_product":  # X shapes in the grid times the Y shapes stated to be in the bag
        a, b = re.search(r"number of (\w+) shapes in the grid by the number of (\w+) shapes", q).groups()
        return str(_count(scene, a) * int(re.search(rf"A bag holds (\d+) {b} shapes?\.", q)[1]))
    unit_pattern = r"(?:every|each) (\w+) (?:shape scores|block weighs|shape is a bag of|item costs) (\d+)"
    if name in ("weighted_score", "physics_weight", "bag_total", "economics_price"):
        color, unit = re.search(unit_pattern, q, re.I).groups()
        return str(_count(scene, color) * int(unit))
    if name == "clip_color_count":
        color, points = re.search(r"Every (\w+) shape that appears in the clip earns (\d+) points", q).groups()
        return str(sum(c == color for frame in m["frames"] for *_, c in frame) * int(points))
    return None


def test_answers_match_planted_scene(test100):
    checked = 0
    for rows in test100.values():
        for row in rows[:30]:
            truth = _truth_from_meta(row)
            if truth is not None:
                assert row["answer"] == truth, row["id"]
                checked += 1
    assert checked == 10 * 30


def test_target_answers_are_numbers_and_color_words_only_generic(test100):
    # Naming a color collapsed to one constant word in the tiny model, so targets only count.
    assert all(r["answer_type"] == "number" for rows in test100.values() for r in rows)
    generic_types = {r["answer_type"] for r in generic_samples(80, 0)}
    assert generic_types == {"number", "text"}


def _text_only_answer(row):
    """A text-only 'oracle' that reads the language-prior cue; None if the text gives nothing away."""
    q, name = row["question"], row["subtask"]
    find = lambda pattern: re.search(pattern, q)  # noqa: E731
    num = lambda text: int(text)  # noqa: E731
    if name == "empty_cells" and (m := find(r"^Only (\d+) shapes were drawn on this 16-cell grid\. ")):
        return str(16 - num(m[1]))
    if name == "free_cells" and (m := find(r"^The players have placed (\d+) pieces\. ")):
        return str(16 - num(m[1]))
    if name == "color_product" and (m := find(r"^There are (\d+) \w+ shapes? in the grid\. ")):
        return str(num(m[1]) * num(find(r"A bag holds (\d+) ")[1]))
    if name == "clip_color_count" and (m := find(r"^The clip shows (\d+) \w+ shapes? in all\. ")):
        return str(num(m[1]) * num(re.search(r"earns (\d+) points", q)[1]))
    stated_count = r"^(?:There are|The shop has|The grid holds|The scale carries) (\d+) \w+ (?:bag|item|shape|block)s?"
    if name in ("weighted_score", "physics_weight", "bag_total", "economics_price") and (m := find(stated_count)):
        unit = re.search(r"(?:bag of|costs|scores|weighs) (\d+)", q)[1]
        return str(num(m[1]) * num(unit))
    if name == "biology_cells" and (m := find(r"^Under the microscope this cell shows (\d+) organelles\. ")):
        return m[1]
    if name == "chemistry_mix" and (m := find(r"^The chemist dropped (\d+) particles into the (.+?) solution\. ")):
        return m[1]
    return None


def test_language_prior_rate_marked_and_answerable_from_text(train200):
    for name, rows in train200.items():
        rate = SUBTASKS[name].language_prior_rate
        flags = [meta(r)["language_prior"] for r in rows]
        assert abs(sum(flags) / len(rows) - rate) <= 0.08, name
        for row, flag in zip(rows, flags):
            oracle = _text_only_answer(row)
            if flag:
                assert oracle == row["answer"], row["id"]
            else:
                assert oracle is None, row["id"]
    assert sum(SUBTASKS[n].language_prior_rate > 0 for n in train200) >= 8


def test_planted_noise_in_train_only(train200, test100):
    for name, rows in train200.items():
        region = SUBTASKS[name].planted_region
        metas = [meta(r) for r in rows]
        if region == "negative":
            noised = [(r, m) for r, m in zip(rows, metas) if m["label_noised"]]
            assert abs(len(noised) / len(rows) - 0.7) <= 0.1, name
            assert all(r["answer"] != m["true_answer"] and r["answer"] in r["cot"] for r, m in noised)
        if region == "direct":
            clean_text = [m for m in metas if not m["language_prior"]]
            corrupted = [(r, m) for r, m in zip(rows, metas) if m["cot_corrupted"]]
            assert abs(len(corrupted) / len(clean_text) - 0.35) <= 0.1, name
            for row, m in corrupted:
                assert m["cot_answer"] != row["answer"] and row["cot"].endswith(f" {m['cot_answer']}.")
                assert cot_answer(row) == m["cot_answer"]
                assert abs(int(m["cot_answer"]) - int(row["answer"])) == 1  # one shape overlooked
        if region == "cot":
            assert not any(m.get("label_noised") or m.get("cot_corrupted") for m in metas)
    for name, rows in test100.items():
        for m in map(meta, rows):
            assert not m.get("label_noised") and not m.get("cot_corrupted") and "cot_answer" not in m, name


def test_confusion_noise_is_systematic_and_uniform_knob():
    rows = generate_split("multidiscipline", "train", 60, 0)
    noised = [r for r in rows if r["subtask"] == "history_noise" and meta(r)["label_noised"]]
    assert noised
    for row in noised:
        # The confusion is a systematic over-count by the one look-alike event.
        assert int(row["answer"]) == int(meta(row)["true_answer"]) + 1
    for row in generate_split("math", "train", 40, 0):
        if row["subtask"] == "wrong_count":  # every grid holds a look-alike of the confusion color
            color = re.search(r"How many (\w+) shapes", row["question"])[1]
            assert COLOR_CONFUSION[color] in [c for *_, c in meta(row)["scene"]]
    uniform = generate_split("spatial", "train", 80, 0, knobs={"noise_kind": "uniform"})
    wrong = [r for r in uniform if r["subtask"] == "noisy_total" and meta(r)["label_noised"]]
    offsets = {int(r["answer"]) - int(meta(r)["true_answer"]) for r in wrong}
    assert len(offsets) > 3 and 0 not in offsets  # uniform noise is not one fixed over-count


def test_knob_overrides():
    clean = generate_split("math", "train", 30, 0, knobs={"label_noise": 0.0})
    assert not any(meta(r).get("label_noised") for r in clean)
    forced = generate_split("spatial", "train", 20, 0,
                            knobs={"empty_cells": {"cot_error_rate": 1.0, "language_prior_rate": 0.0}})
    assert all(meta(r)["cot_corrupted"] for r in forced if r["subtask"] == "empty_cells")
    with pytest.raises(ValueError):
        generate_split("math", "train", 1, 0, knobs={"lable_noise": 0.1})
    with pytest.raises(ValueError):
        generate_split("math", "train", 1, 0, knobs={"weighted_score": {"n_shapes": 3}})


def test_rationale_lengths_follow_regions(train200):
    for name, rows in train200.items():
        words = [len(r["cot"].split()) for r in rows]
        if SUBTASKS[name].planted_region == "cot":
            assert max(words) <= 30, name
        if SUBTASKS[name].planted_region == "direct":
            assert 40 <= min(words) and max(words) <= 70, name


def _skeleton_sentences(question):
    """Question wording with colors/shapes/numbers/options abstracted, split into sentences."""
    text = question.lower()
    text = re.sub(r"\b(" + "|".join(COLORS) + r")\b", "<c>", text)
    text = re.sub(r"\b(circle|square|triangle)s?\b", "<s>", text)
    text = re.sub(r"\d+", "<n>", text)
    return {s.strip() for s in re.split(r"(?<=[.?])\s+", text) if s.strip()}


def test_generic_templates_disjoint_from_targets():
    target = set().union(*(_skeleton_sentences(r["question"]) for r in generate_split("all", "train", 40, 0)))
    generic_rows = generic_samples(180, 0)
    generic = set().union(*(_skeleton_sentences(r["question"]) for r in generic_rows))
    assert len(generic) >= 9 and not (target & generic)
    # A small share of the mixture states its answer in the text (the picture is unrelated).
    stated = [r for r in generic_rows if r["subtask"] == "generic_read_text"]
    assert 0 < len(stated) <= len(generic_rows) // 5
    for row in stated:
        said = re.search(r"^Note: the (?:\w+ is (\w+)|count of \w+ objects is (\d+))\. ", row["question"])
        assert row["answer"] == (said[1] or said[2])
    assert {r["subtask"] for r in generic_rows} == {s.name for s in subtasks_for("generic")}
    assert all(meta(r)["planted_region"] == "generic" and r["cot"] for r in generic_rows)


def test_text_corpus_covers_targets_and_generic():
    corpus = lab_text_corpus(seed=0, n_per_subtask=2)
    assert "How many cells of the grid are empty?" in corpus
    assert any(t.startswith("Watch the clip.") for t in corpus)
    assert all(isinstance(t, str) and t for t in corpus)


def test_build_and_load_lab_round_trip(tmp_path, monkeypatch):
    built = build_lab("math", tmp_path / "direct", n_train=2, n_test=1, seed=0)
    first = load_lab("math", tmp_path / "cache", n_train=2, n_test=1, seed=0)
    assert first["train"].num_rows == 8 and first["test"].num_rows == 4
    assert first["train"]["id"] == built["train"]["id"] and first["train"].features == FEATURES
    img = first["train"][0]["images"][0]
    assert img.size == (112, 112)
    assert json.loads(first["test"][0]["meta"])["planted_region"] == "cot"
    entries = list((tmp_path / "cache").iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("lab-math-")

    def no_rebuild(*args, **kwargs):
        raise AssertionError("cache was not reused")

    monkeypatch.setattr(lab_build, "build_lab", no_rebuild)
    again = load_lab("math", tmp_path / "cache", n_train=2, n_test=1, seed=0)
    assert again["train"]["cot"] == first["train"]["cot"]
    with pytest.raises(AssertionError):
        load_lab("math", tmp_path / "cache", n_train=2, n_test=1, seed=1)
    assert len(list((tmp_path / "cache").iterdir())) == 1  # failed build left no temp dir

