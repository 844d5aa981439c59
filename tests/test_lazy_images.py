"""Loading keeps images out of memory: loaded rows hold lazy `ImageRef` s into the Arrow files (not decoded
images), decoded at use; validation still names corrupt images; cache digests follow the image bytes; the SFT
examples are encoded per batch beyond a memory budget, with the same batches."""

from __future__ import annotations

import io
import logging
import pickle

import pytest
import torch
from datasets import Dataset, DatasetDict
from PIL import Image

from dualtune.data.arrow_rows import lazy_rows
from dualtune.data.datamodule import EncodedExamples, expand_modes
from dualtune.data.encoding import prompt_and_images
from dualtune.data.sources import load_domain
from dualtune.models.loading import load_processor
from dualtune.schema import FEATURES, decode_image
from dualtune.utils.hashing import visual_digest
from dualtune.utils.image_refs import ImageRef
from tests.conftest import compose
from tests.published import write_parquet_snapshot

COLORS = ["red", "blue", "green", "white", "black", "yellow"]


def _png(color, size=(28, 28)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _row(i, image=None, frames=(), **kw) -> dict:
    color = COLORS[i % len(COLORS)]
    return {"id": f"r{i}", "domain": "d", "subtask": "s", "images": [image or {"bytes": _png(color), "path": None}],
            "video": [{"bytes": _png(c), "path": None} for c in frames], "question": f"How many? {i}",
            "options": [], "answer": str(i), "answer_type": "number", "cot": "one", "source": "t", "meta": "{}", **kw}


@pytest.fixture(autouse=True)
def hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def _hf_domain(tmp_path, train, test, num_shards=1):
    path = tmp_path / "ds"
    DatasetDict({"train": Dataset.from_list(train, features=FEATURES),
                 "test": Dataset.from_list(test, features=FEATURES)}).save_to_disk(str(path), num_shards={"train": num_shards, "test": 1})
    return compose("evaluate", [f"cache_dir={tmp_path / 'cache'}", "domain=hf", f"domain.hf.path={path}"]).domain


@pytest.mark.parametrize("num_shards", [1, 2])
def test_validated_rows_hold_refs_that_decode_on_use(tmp_path, num_shards):
    train = [_row(i, frames=("green", "white") if i == 3 else ()) for i in range(6)]
    data = load_domain(_hf_domain(tmp_path, train, [_row(9)], num_shards), tmp_path / "cache")
    rows = data["train"]
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(6)]
    assert len({img.store for r in rows for img in r["images"]}) == 1  # one store per split, shared
    assert len(rows[0]["images"][0].store.files) == num_shards  # read from the Arrow shards, not from memory
    for row, src in zip(rows, train):
        assert all(isinstance(img, ImageRef) for img in row["images"] + row["video"])  # not decoded images
        assert [decode_image(img).tobytes() for img in row["images"] + row["video"]] == [
            Image.open(io.BytesIO(i["bytes"])).convert("RGB").tobytes() for i in src["images"] + src["video"]]
    prompt, images = prompt_and_images(_FakeProcessor(), rows[3], "cot")  # decoded at use, in prompt order
    assert [im.getpixel((0, 0)) for im in images] == [(255, 255, 255), (0, 128, 0), (255, 255, 255)]
    assert all(isinstance(im, Image.Image) for im in images)
    restored = pickle.loads(pickle.dumps(rows[5]))  # refs name the Arrow file, not its bytes
    assert restored["images"][0].encoded() == train[5]["images"][0]


class _FakeProcessor:
    def apply_chat_template(self, messages, **_):
        return str(messages)


def test_a_corrupt_image_is_still_a_named_skip_and_kept_rows_stay_lazy(tmp_path, caplog):
    rows = [_row(0), _row(1, image={"bytes": b"not a png", "path": None}), _row(2)]
    skipped = {}
    with caplog.at_level(logging.WARNING):
        data = load_domain(_hf_domain(tmp_path, rows, [_row(5)]), tmp_path / "cache", skipped=skipped)
    assert [r["id"] for r in data["train"]] == ["r0", "r2"]
    assert skipped["train"] == [{"id": "r1", "reason": "undecodable_image"}]
    assert "undecodable_image" in caplog.text and "'r1'" in caplog.text
    assert isinstance(data["train"][1]["images"][0], ImageRef)


def test_digests_follow_the_image_bytes_behind_a_ref(tmp_path):
    rows = list(lazy_rows(Dataset.from_list([_row(0), _row(1)], features=FEATURES)))  # in-memory fallback
    saved = tmp_path / "saved"
    Dataset.from_list([_row(0), _row(0, image={"bytes": _png("red", (56, 28)), "path": None})],
                      features=FEATURES).save_to_disk(str(saved))
    from datasets import load_from_disk

    on_disk = list(lazy_rows(load_from_disk(str(saved))))
    assert visual_digest(rows[0]) == visual_digest(_row(0)) == visual_digest(on_disk[0])  # ref == its bytes
    assert visual_digest(on_disk[1]) != visual_digest(on_disk[0])  # same id, other image bytes
    assert visual_digest(rows[1]) != visual_digest(rows[0])


def test_refs_through_an_indices_mapping_and_published_columns(tmp_path):
    saved = tmp_path / "saved"
    Dataset.from_list([_row(i) for i in range(6)], features=FEATURES).save_to_disk(str(saved))
    from datasets import Features, Image as ImageFeature, Value, load_dataset, load_from_disk

    shuffled = load_from_disk(str(saved)).select([4, 1, 5])  # an indices mapping: read through datasets
    assert next(lazy_rows(shuffled))["images"][0].store.files == []
    assert [decode_image(r["images"][0]).getpixel((0, 0)) for r in lazy_rows(shuffled)] == [
        (0, 0, 0), (0, 0, 255), (255, 255, 0)]
    # A published layout: an Image column, a raw-bytes column, a null and an empty image.
    features = Features({"id": Value("string"), "picture": ImageFeature(), "raw": Value("binary")})
    published = [{"id": "a", "picture": {"bytes": _png("blue"), "path": None}, "raw": _png("green")},
                 {"id": "b", "picture": None, "raw": b""}]
    root = write_parquet_snapshot(tmp_path / "snap", {"default": {"test": published}}, features=features)
    rows = list(lazy_rows(load_dataset(str(root), split="test")))
    assert isinstance(rows[0]["picture"], ImageRef) and isinstance(rows[0]["raw"], ImageRef)
    assert decode_image(rows[0]["picture"]).getpixel((0, 0)) == (0, 0, 255)
    assert decode_image(rows[0]["raw"]).getpixel((0, 0)) == (0, 128, 0)
    assert rows[1]["picture"] is None and rows[1]["raw"] == b""  # missing images stay recognisable


def test_examples_beyond_the_memory_budget_are_encoded_per_batch_identically(tmp_path, random_tiny_ckpt, caplog):
    processor = load_processor(random_tiny_ckpt)
    rows = [_row(i) for i in range(4)] + [_row(4, question="many " * 300)]  # the last one is over-long in both modes
    samples, modes = expand_modes(rows, "dual")
    with caplog.at_level(logging.WARNING):
        kept = EncodedExamples(processor, samples, modes, max_length=200, cache_mb=None)
        lazy = EncodedExamples(processor, samples, modes, max_length=200, cache_mb=0)
    assert kept.skipped == lazy.skipped == {"overlong": 2} and "skipped 2 over-long examples" in caplog.text
    assert len(kept) == len(lazy) == 8 and lazy.cached_bytes == 0 < kept.cached_bytes
    for i in range(len(kept)):
        a, b = kept[i], lazy[i]
        assert (a["id"], a["mode"]) == (b["id"], b["mode"]) and a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))
    with pytest.raises(ValueError, match="r4"):
        EncodedExamples(processor, samples, modes, max_length=200, on_overlong="raise", cache_mb=0)


def test_the_encoded_examples_budget_is_a_checked_config_key():
    from dualtune.config_checks import ConfigError, check_config

    assert compose("train").algo.encoded_cache_mb == 1024
    with pytest.raises(ConfigError, match="algo.encoded_cache_mb=-1"):
        check_config(compose("train", ["algo.encoded_cache_mb=-1"]), "train")
