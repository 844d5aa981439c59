"""Every published-format domain config (``conf/domain/*.yaml`` with ``source: published``) pointed at a snapshot
in another layout gets a ValueError naming the columns its adapter needs and the columns found: never a
KeyError, never every row skipped. A record that cannot be parsed at the top of a file stays a counted skip."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dualtune.data.adapters import get_adapter
from dualtune.data.sources import load_domain
from tests.conftest import CONF_DIR, compose
from tests.published import write_parquet_snapshot
from tests.trainsets import write_jsonl, write_png

WRONG = [{"qid": "1", "text": "q"}, {"qid": "2", "text": "r"}]
PUBLISHED = sorted(p.stem for p in Path(CONF_DIR, "domain").glob("*.yaml")
                   if OmegaConf.load(p).get("source") == "published")


def _parquet(root: Path, domain) -> Path:
    """A hub-style parquet snapshot with the wrong columns under the first configured subset and split."""
    subsets = domain.subsets
    subset = subsets if isinstance(subsets, str) else (subsets[0] if subsets else None)
    split = domain.splits.train if domain.splits.train is not None else domain.splits.test
    return write_parquet_snapshot(root, {subset or "default": {split: WRONG}})


def _json_file(name: str):
    """A snapshot holding the wrong records in the file a json-based adapter reads (``name`` inside it)."""
    def write(root: Path, domain) -> Path:
        if name.endswith(".jsonl"):
            write_jsonl(root / name, WRONG)
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            records = {r["qid"]: r for r in WRONG} if name.endswith("dataset.json") else WRONG
            (root / name).write_text(json.dumps(records), encoding="utf-8")
        return root
    return write


# Adapters that read files of their own (``read``) get the wrong records in that file; the rest a parquet snapshot.
WRITERS = {"logicvista": _json_file("data/dataset.json"), "onethinker": _json_file("onethinker_sft_image.json"),
           "spacer": _json_file("SpaceR-151k.jsonl"), "mm_eureka": _json_file("dataset.jsonl")}
# Adapters with several published layouts name each layout's columns (checked in their ``read``).
LAYOUT_COLUMNS = {("mm_eureka", "jsonl"): "JSONL_COLUMNS", ("mm_eureka", "parquet"): "MMK12_COLUMNS"}
CASES = [(name, "file" if name in WRITERS else "parquet") for name in PUBLISHED] + [("mm_eureka", "parquet")]


def test_every_published_config_is_covered():
    assert {"mathvista", "mmmu", "mathverse_text_only", "vsibench", "spacer", "thinklite_vl_hard"} <= set(PUBLISHED)
    assert len(PUBLISHED) == 15


@pytest.mark.parametrize("name, kind", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_wrong_layout_is_an_error_naming_the_columns(tmp_path, hf_datasets_cache, name, kind):
    domain = compose("evaluate", [f"domain={name}"]).domain
    write = WRITERS[name] if kind == "file" else _parquet
    snapshot = write(tmp_path / f"{name}_wrong", domain)
    adapter = get_adapter(domain.adapter)
    layout = "jsonl" if kind == "file" else "parquet"
    required = list(getattr(adapter, LAYOUT_COLUMNS.get((name, layout), "REQUIRED_COLUMNS")))
    cfg = compose("evaluate", [f"domain={name}", f"domain.path={snapshot}"])
    with pytest.raises(ValueError) as err:
        load_domain(cfg.domain, tmp_path / "cache")
    message = str(err.value)
    assert f"lacks the columns {required}" in message, message
    assert re.search(r"columns found: \[[^\]]*'qid', 'text'\]", message), message
    assert f"dualtune/data/adapters/{adapter.__name__.rsplit('.', 1)[-1]}.py" in message


def test_an_unparsable_first_record_is_a_counted_skip_not_a_layout_error(tmp_path, caplog):
    """The layout is judged on the first record that parses: a broken first line of a jsonl (mm_eureka) or a
    non-object first element of a json array (onethinker) is skipped and counted, the rest is read."""
    eureka = tmp_path / "MM-Eureka-Dataset"
    write_png(eureka / "K12" / "a.png")
    record = {"id": "ok", "conversations": [{"role": "user", "content": "<image>How many?"}], "answer": "3",
              "image_urls": ["K12/a.png"]}
    (eureka / "dataset.jsonl").write_text('{"id": "cut", "conv\n' + json.dumps(record) + "\n", encoding="utf-8")
    thinker = tmp_path / "OneThinker-train-data"
    write_png(thinker / "images" / "a.png")
    good = {"messages": [{"role": "user", "content": "<image>How many?"},
                        {"role": "assistant", "content": "<think>two and one</think><answer>3</answer>"}],
            "images": ["images/a.png"]}
    (thinker / "onethinker_sft_image.json").write_text(json.dumps(["not a record", good]), encoding="utf-8")
    for name, root in (("mm_eureka", eureka), ("onethinker", thinker)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            rows = load_domain(compose("score", [f"domain={name}", f"domain.path={root}"]).domain,
                               tmp_path / f"cache_{name}")["train"]
        assert [r["answer"] for r in rows] == ["3"], name
        assert "adapter skipped 1 rows (malformed record" in caplog.text, name
