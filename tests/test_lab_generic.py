"""The generic pretraining mixture's language-prior notes and text-only samples (lab v9)."""

from __future__ import annotations

import re

from dualtune.lab import generic_samples, png_bytes
from tests.test_lab import by_subtask, meta


def test_generic_language_prior_cue_states_the_answer_and_shifts_nothing_else():
    plain = generic_samples(160, 3, split="train", knobs={"language_prior_rate": 0.0, "text_only_rate": 0.0})
    cued = generic_samples(160, 3, split="train", knobs={"language_prior_rate": 1.0, "text_only_rate": 0.0})
    counting = {"generic_count_color", "generic_count_all", "generic_count_shape", "generic_clip_count"}
    for p, c in zip(plain, cued):
        # The cue is drawn last: answers, pictures and the rest of the question are unchanged.
        assert (p["answer"], p["images"] is not None) == (c["answer"], c["images"] is not None)
        assert [png_bytes(i) for i in p["images"] + p["video"]] == [png_bytes(i) for i in c["images"] + c["video"]]
        if c["subtask"] in counting:
            cue = c["question"][: len(c["question"]) - len(p["question"])]
            assert c["question"].endswith(p["question"]) and cue.startswith("Note: ")
            assert re.findall(r"\d+", cue) == [c["answer"]]
            assert meta(c)["language_prior"] and not meta(p)["language_prior"]
        elif c["subtask"] in ("generic_read_text", "generic_arithmetic"):
            assert meta(c)["language_prior"] and meta(p)["language_prior"] and c["question"] == p["question"]
        else:
            assert not meta(c)["language_prior"] and c["question"] == p["question"]


def test_generic_text_only_share_in_pretraining_mixture():
    rows = by_subtask(generic_samples(800, 0))
    for name in ("generic_read_text", "generic_arithmetic"):
        share = sum(not r["images"] for r in rows[name]) / len(rows[name])
        assert 0.35 <= share <= 0.65, (name, share)  # text_only_rate 0.5
    counts = rows["generic_count_all"]
    cued = [r for r in counts if meta(r)["language_prior"]]
    assert 0.1 <= len(cued) / len(counts) <= 0.3  # language_prior_rate 0.2 in pretraining
    # Only cued counts lose their picture (then the note is the only source of the answer).
    assert all(r["images"] for r in counts if not meta(r)["language_prior"]) and any(not r["images"] for r in cued)
