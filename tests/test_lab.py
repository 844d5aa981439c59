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
from dualtune.lab.multidiscipline import SOLUTIONS, STAINS
from dualtune.schema import FEATURES, OPTION_LETTERS, validate_rows


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
    alone = [r for r in generate_split("spatial", "train", 3, 0) if r["subtask"] == "color_at"]
    in_all = [r for r in generate_split("all", "train", 5, 0) if r["subtask"] == "color_at"][:3]
    assert fingerprint(alone) == fingerprint(in_all)
    train = generate_split("math", "train", 4, 0)
    test = generate_split("math", "test", 4, 0)
    assert [r["id"] for r in train][:2] == ["count_sum-train-00000", "count_sum-train-00001"]
    assert {r["question"] + r["cot"] for r in train} != {r["question"] + r["cot"] for r in test}


def test_schema_valid_and_images_on_the_token_grid():
    rows = generate_split("all", "train", 4, 0) + generate_split("all", "test", 2, 0) + generic_samples(18, 0)
    kept, report = validate_rows(rows, strict=True)
    assert report.kept == len(rows) == len(kept)
    ds = Dataset.from_list(rows, features=FEATURES)
    assert len(ds) == len(rows) and ds[0]["images"][0].size == (112, 112)
    for row in rows:
        assert row["source"] == "lab" and row["answer_type"] in ("choice", "number")
        if row["answer_type"] == "choice":
            assert row["answer"] in OPTION_LETTERS[: len(row["options"])]
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


def _truth_from_meta(row):
    """Correct answer recomputed from the structured scene in meta (independent of the maker)."""
    m, q = meta(row), row["question"]
    scene = {(r, c): (s, col) for r, c, s, col in m.get("scene", [])}
    nums = [int(x) for x in re.findall(r"\d+", q.split(". ")[-1])]
    name = row["subtask"]
    if name == "color_at":
        return OPTION_LETTERS[row["options"].index(scene[tuple(nums)][1])]
    if name == "count_sum":
        wanted = re.search(r"How many (\w+) shapes and (\w+) shapes", q).groups()
        return str(sum(col in wanted for _, col in scene.values()))
    if name == "chart_diff":
        return str(m["bars"][nums[0] - 1] - m["bars"][nums[1] - 1])
    if name == "tallest_bar":
        return OPTION_LETTERS[m["bars"].index(max(m["bars"]))]
    if name == "physics_balance":
        left = sum(c <= 2 for (_, c) in scene)
        return "A" if left > len(scene) - left else "B"
    if name == "economics_table":
        return str(sum(r in nums for (r, _) in scene))
    return None


def test_answers_match_planted_scene(test100):
    checked = 0
    for rows in test100.values():
        for row in rows[:30]:
            truth = _truth_from_meta(row)
            if truth is not None:
                assert row["answer"] == truth, row["id"]
                checked += 1
    assert checked == 6 * 30


def _text_only_answer(row):
    """A text-only 'oracle' that reads the language-prior cue; None if the text gives nothing away."""
    q, opts, name = row["question"], row["options"], row["subtask"]
    find = lambda pattern: re.search(pattern, q)  # noqa: E731
    if name == "color_at":
        colors = [o for o in opts if o in COLORS]
        return OPTION_LETTERS[opts.index(colors[0])] if len(colors) == 1 else None
    if name == "relative_position" and (m := find(r"in the (leftmost|rightmost) column|in the (top|bottom) row")):
        word = {"leftmost": "left", "rightmost": "right", "top": "above", "bottom": "below"}[m[1] or m[2]]
        return OPTION_LETTERS[opts.index(word)]
    if name == "appearance_order" and (m := find(r"The (\w+) shape is already visible")):
        return OPTION_LETTERS[opts.index(m[1])]
    if name == "count_sum" and (m := find(r"^The grid holds (\d+) \w+ shapes? and (\d+) \w+ shapes?\. ")):
        return str(int(m[1]) + int(m[2]))
    if name == "economics_table" and (m := find(r"^Row \d costs (\d+) coins? and row \d costs (\d+) coins?\. ")):
        return str(int(m[1]) + int(m[2]))
    if name == "chart_diff" and (m := find(r"is (\d+) blocks? tall and bar \d is (\d+)")):
        return str(int(m[1]) - int(m[2]))
    if name == "tallest_bar" and (m := find(r"Bar (\d) reaches")):
        return OPTION_LETTERS[int(m[1]) - 1]
    if name == "physics_balance" and (m := find(r"sits on the (left|right) side")):
        return OPTION_LETTERS[opts.index(m[1])]
    if name == "biology_cells" and (m := find(r"stained with (.+?)\. ")):
        return OPTION_LETTERS[opts.index({v: k for k, v in STAINS.items()}[m[1]])]
    if name == "chemistry_mix" and (m := find(r"The beaker holds (.+?)\. ")):
        return OPTION_LETTERS[opts.index({v: k for k, v in SOLUTIONS.items()}[m[1]])]
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
        if region == "cot":
            assert not any(m.get("label_noised") or m.get("cot_corrupted") for m in metas)
    for name, rows in test100.items():
        for m in map(meta, rows):
            assert not m.get("label_noised") and not m.get("cot_corrupted") and "cot_answer" not in m, name


def test_confusion_noise_is_systematic_and_uniform_knob():
    rows = generate_split("multidiscipline", "train", 60, 0)
    for row in rows:
        m = meta(row)
        if row["subtask"] == "history_noise" and m["label_noised"]:
            true_color = row["options"][OPTION_LETTERS.index(m["true_answer"])]
            assert row["options"][OPTION_LETTERS.index(row["answer"])] == COLOR_CONFUSION[true_color]
    uniform = generate_split("spatial", "train", 80, 0, knobs={"noise_kind": "uniform"})
    wrong = [r for r in uniform if r["subtask"] == "noisy_shape_at" and meta(r)["label_noised"]]
    option_text = lambda row, letter: row["options"][OPTION_LETTERS.index(letter)]  # noqa: E731
    stated = {(option_text(r, meta(r)["true_answer"]), option_text(r, r["answer"])) for r in wrong}
    assert len(stated) > 3  # uniform noise hits both wrong shapes, not only the confusion one


def test_knob_overrides():
    clean = generate_split("math", "train", 30, 0, knobs={"label_noise": 0.0})
    assert not any(meta(r).get("label_noised") for r in clean)
    forced = generate_split("spatial", "train", 20, 0,
                            knobs={"color_at": {"cot_error_rate": 1.0, "language_prior_rate": 0.0}})
    assert all(meta(r)["cot_corrupted"] for r in forced if r["subtask"] == "color_at")
    with pytest.raises(ValueError):
        generate_split("math", "train", 1, 0, knobs={"lable_noise": 0.1})
    with pytest.raises(ValueError):
        generate_split("math", "train", 1, 0, knobs={"count_sum": {"n_shapes": 3}})


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
    assert {r["subtask"] for r in generic_rows} == {s.name for s in subtasks_for("generic")}
    assert all(meta(r)["planted_region"] == "generic" and r["cot"] for r in generic_rows)


def test_text_corpus_covers_targets_and_generic():
    corpus = lab_text_corpus(seed=0, n_per_subtask=2)
    assert "Which bar is the tallest?" in corpus
    assert any(t.startswith("Count the objects in") for t in corpus)
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
