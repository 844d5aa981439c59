"""Data-integrity faults through the real entry paths (load_domain + the recipes) on tiny `domain=hf` datasets:
caches keyed by image content, corrupt / missing images as named skips (or strict errors), duplicate ids."""

from __future__ import annotations

import io
import json
import logging

import pytest
from datasets import Dataset, DatasetDict
from PIL import Image

from dualtune.data.sources import load_domain
from dualtune.recipes.evaluate import evaluate, run_eval
from dualtune.recipes.score import score
from dualtune.recipes.select import run_selection
from dualtune.recipes.train import train
from dualtune.schema import FEATURES, SampleError
from tests.conftest import compose

FAST = ["mode.max_new_tokens.direct=2", "mode.max_new_tokens.cot=3"]


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (28, 28), color).save(buf, format="PNG")
    return buf.getvalue()


def _row(rid, color="red", answer="1", video=(), image=None, **kw) -> dict:
    """A schema row with one still image (``image`` overrides the PNG of ``color``) and optional frames."""
    row = {"id": rid, "domain": "d", "subtask": "s", "images": [image or {"bytes": _png(color), "path": None}],
           "video": [{"bytes": _png(c), "path": None} for c in video], "question": "How many squares?",
           "options": [], "answer": answer, "answer_type": "number", "cot": "one", "source": "t", "meta": "{}"}
    row.update(kw)
    return row


def _save_to_disk(path, train_rows, test_rows) -> str:
    DatasetDict({"train": Dataset.from_list(train_rows, features=FEATURES),
                 "test": Dataset.from_list(test_rows, features=FEATURES)}).save_to_disk(str(path))
    return str(path)


def _save_parquet(path, train_rows, test_rows) -> str:
    """A local dataset dir (train.parquet / test.parquet, read by ``load_dataset``): unlike ``save_to_disk``
    it keeps path-only images, so an image file can go missing."""
    path.mkdir(parents=True)
    for split, rows in (("train", train_rows), ("test", test_rows)):
        Dataset.from_list(rows, features=FEATURES).to_parquet(str(path / f"{split}.parquet"))
    return str(path)


def _broken_rows(prefix, tmp_path) -> list[dict]:
    """One good row, one with corrupt image bytes, one whose image file no longer exists."""
    missing = tmp_path / f"{prefix}_gone.png"
    Image.new("RGB", (28, 28), "blue").save(missing)
    rows = [_row(f"{prefix}_ok"), _row(f"{prefix}_bad", image={"bytes": b"not a png", "path": None}),
            _row(f"{prefix}_miss", image={"bytes": None, "path": str(missing)})]
    return rows


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    """A randomly initialised tiny Qwen2.5-VL (no pretraining: these tests need a model, not a good one)."""
    from dualtune.models.tiny import build_tiny_checkpoint

    corpus = ["How many squares? Answer directly with a single number.", "<think>one</think><answer>1</answer>"] * 4
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), corpus, vocab_size=300, hidden_size=64,
                                     layers=2, intermediate_size=128, vision_hidden=32, vision_depth=1))


@pytest.fixture(autouse=True)
def hf_cache(tmp_path, monkeypatch):
    """``load_dataset`` (parquet dirs) caches under the test's tmp dir, not ~/.cache/huggingface."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def _cfg(name, tmp_path, data, ckpt, *overrides):
    return compose(name, [f"cache_dir={tmp_path / 'cache'}", f"output_dir={tmp_path / 'out'}", "domain=hf",
                          f"domain.hf.path={data}", f"model.path={ckpt}", *FAST, *overrides])


class CountingBackend:
    """Scripted rollouts that record which sample ids were (re-)scored."""

    def __init__(self):
        self.ids: list[str] = []

    def generate(self, samples, condition, settings, n, seed):
        self.ids += [s["id"] for s in samples]
        return [[{"text": "<think>x</think><answer>1</answer>", "token_ids": [1, 2], "truncated": False}] * n
                for _ in samples]


def test_eval_cache_misses_when_only_images_change(tmp_path, ckpt):
    rows = [_row("a", "red"), _row("b", "blue", answer="2"), _row("v", "red", video=("green", "white"))]
    versions = {
        "v1": rows,
        "v2": [dict(r, images=[{"bytes": _png("black"), "path": None}]) for r in rows],  # every image replaced
        "v3": [_row("v", "red", video=("green", "black")) if r["id"] == "v" else r for r in rows],  # one frame
    }
    results = {}
    for name, test_rows in [*versions.items(), ("v1_again", rows)]:
        data = _save_to_disk(tmp_path / name, rows, test_rows)
        cfg = _cfg("evaluate", tmp_path, data, ckpt)
        test = load_domain(cfg.domain, cfg.cache_dir, strict=True)["test"]
        assert [(s["id"], s["question"], s["answer"]) for s in test] == [(r["id"], r["question"], r["answer"])
                                                                         for r in rows]
        results[name] = run_eval(cfg, ckpt, test, use_cache=True)
    assert not results["v1"].cached and results["v1_again"].cached
    assert not results["v2"].cached  # new pixels, same ids / questions / answers: recomputed
    assert not results["v3"].cached  # one video frame changed
    assert len(list((tmp_path / "cache" / "eval").iterdir())) == 3


def test_score_store_rescores_exactly_the_samples_whose_images_changed(tmp_path, ckpt):
    rows = [_row("a", "red"), _row("b", "blue"), _row("v", "red", video=("green", "white"))]
    changed = [dict(rows[0], images=[{"bytes": _png("black"), "path": None}]), rows[1],
               _row("v", "red", video=("green", "black"))]
    sel = ["selection=pass_rate", "selection.rollouts.num_generations=2", f"selection.scores_dir={tmp_path / 'scores'}",
           f"score.rollout_cache_dir={tmp_path / 'rollouts'}", "score.plots=false"]
    backends, digests = [], []
    for name, train_rows in (("v1", rows), ("v1_again", rows), ("v2", changed)):
        cfg = _cfg("score", tmp_path, _save_to_disk(tmp_path / name, train_rows, rows), ckpt, *sel)
        backends.append(CountingBackend())
        result = run_selection(cfg, load_domain(cfg.domain, cfg.cache_dir)["train"], tmp_path / f"out_{name}",
                               backend=backends[-1])
        assert result.summary["n_total"] == 3
        digests.append(json.loads((tmp_path / f"out_{name}" / "provenance.json").read_text())["dataset_digest"])
    assert sorted(backends[0].ids) == ["a", "b", "v"]
    assert backends[1].ids == []  # same content: every score reused
    assert sorted(backends[2].ids) == ["a", "v"]  # changed image / frame: re-scored; "b" reused
    assert digests[0] == digests[1] != digests[2]


def test_corrupt_and_missing_images_are_named_skips_in_evaluate_and_score(tmp_path, ckpt, caplog):
    data = _save_parquet(tmp_path / "pq", _broken_rows("t", tmp_path), _broken_rows("e", tmp_path))
    for name in ("t", "e"):
        (tmp_path / f"{name}_gone.png").unlink()
    caplog.set_level(logging.INFO)
    cfg = _cfg("evaluate", tmp_path, data, ckpt, f"checkpoint={ckpt}")
    result = evaluate(cfg)
    assert {r["id"] for r in result.records} == {"e_ok"}
    assert "hf/test: kept 1, skipped 2 (missing_image_file=1, undecodable_image=1)" in caplog.text
    assert "'e_bad'" in caplog.text and "'e_miss'" in caplog.text
    cfg = _cfg("score", tmp_path, data, ckpt, "selection=random", "selection.budget=1", "score.plots=false")
    assert score(cfg).summary["kept_ids"] == ["t_ok"]
    assert "'t_bad'" in caplog.text and "'t_miss'" in caplog.text
    with pytest.raises(SampleError, match=r"hf/train: sample 't_bad' is invalid: undecodable_image"):
        evaluate(_cfg("evaluate", tmp_path, data, ckpt, f"checkpoint={ckpt}", "strict=true"))  # both splits load
    with pytest.raises(SampleError, match=r"'t_bad' is invalid: undecodable_image"):
        score(_cfg("score", tmp_path, data, ckpt, "selection=random", "strict=true"))
    only_missing = _save_parquet(tmp_path / "pq2", [_broken_rows("t", tmp_path)[2]], [_row("e")])
    (tmp_path / "t_gone.png").unlink()
    with pytest.raises(SampleError, match=r"'t_miss' is invalid: missing_image_file .*t_gone.png"):
        load_domain(_cfg("score", tmp_path, only_missing, ckpt).domain, tmp_path, strict=True)


def test_train_skips_bad_images_and_dedupes_ids(tmp_path, ckpt, caplog):
    train_rows = [*_broken_rows("t", tmp_path), _row("t_ok"), _row("c1", answer="2"), _row("c1", answer="3"),
                  _row("x", "green")]
    test_rows = [*_broken_rows("e", tmp_path), _row("e_ok"), _row("x", "green")]
    data = _save_parquet(tmp_path / "pq", train_rows, test_rows)
    for name in ("t", "e"):
        (tmp_path / f"{name}_gone.png").unlink()
    caplog.set_level(logging.INFO)
    cfg = _cfg("train", tmp_path, data, ckpt, "logger=none", "algo.max_steps=1", "algo.batch_size=4",
               "eval.n_boot=10")
    report = train(cfg)
    assert "hf/train: kept 3, skipped 4 (conflicting_duplicate_id=1, duplicate_row=1, missing_image_file=1, " \
           "undecodable_image=1)" in caplog.text
    assert "hf/test: kept 2, skipped 3 (duplicate_row=1, missing_image_file=1, undecodable_image=1)" in caplog.text
    assert "1 ids occur with different content; kept the first row of each, skipped 1: ['c1']" in caplog.text
    assert "hf: 1 ids occur in more than one split" in caplog.text and "['x']" in caplog.text
    manifest = json.loads((tmp_path / "out" / "curation" / "manifest.json").read_text())
    routed = [i for ids in manifest["routes"].values() for i in ids]
    assert sorted(routed) == ["c1", "t_ok", "x"]  # each training id once
    assert report["subtasks"][0]["n"] == 2  # e_ok and x, each once
    with open(tmp_path / "out" / "eval_base" / "predictions.jsonl") as fh:
        records = list(map(json.loads, fh))
    keys = [(r["id"], r["mode"]) for r in records if r["status"] == "evaluated"]
    assert len(keys) == len(set(keys)) == 4
    # Every input row appears: the skipped test rows are listed with their reasons.
    skipped = sorted((r["id"], r["status"]) for r in records if r["status"] != "evaluated")
    assert [i for i, _ in skipped] == ["e_bad", "e_miss", "e_ok"] and all("skipped input" in s for _, s in skipped)


def test_conflicting_duplicate_ids_are_named_on_the_score_path(tmp_path, ckpt, caplog):
    rows = [_row("a"), _row("c1", answer="2"), _row("c1", answer="3")]
    data = _save_to_disk(tmp_path / "ds", rows, [_row("e")])
    with pytest.raises(SampleError, match=r"1 ids occur with different content: \['c1'\]"):
        score(_cfg("score", tmp_path, data, ckpt, "selection=random", "strict=true"))
    result = score(_cfg("score", tmp_path, data, ckpt, "selection=random", "selection.budget=2", "score.plots=false"))
    assert sorted(result.summary["kept_ids"]) == ["a", "c1"] and "['c1']" in caplog.text
    # Rows handed to the scorer directly (bypassing the loader) still get an error naming the id.
    cfg = _cfg("score", tmp_path, data, ckpt, "selection=pass_rate", "selection.rollouts.num_generations=2",
               f"selection.scores_dir={tmp_path / 'scores'}")
    with pytest.raises(ValueError, match=r"1 duplicate ids: \['c1'\]"):
        run_selection(cfg, rows, tmp_path / "direct", backend=CountingBackend())


def test_eval_cache_misses_when_the_pixel_limits_change(tmp_path, ckpt):
    data = _save_to_disk(tmp_path / "ds", [_row("a")], [_row("b")])
    cfg = _cfg("evaluate", tmp_path, data, ckpt)
    test = load_domain(cfg.domain, cfg.cache_dir)["test"]
    assert not run_eval(cfg, ckpt, test, use_cache=True).cached
    assert run_eval(cfg, ckpt, test, use_cache=True).cached
    smaller = _cfg("evaluate", tmp_path, data, ckpt, "model.max_pixels=3136")  # fewer image tokens per image
    assert not run_eval(smaller, ckpt, test, use_cache=True).cached
