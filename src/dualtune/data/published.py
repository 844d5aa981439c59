"""The one loader for datasets in their published formats (``domain.source: published``).

``domain.path`` is the hub id (default in each ``conf/domain/<name>.yaml``) or a local directory holding
a snapshot of the hub repo exactly as published (parquet shards, jsonl + image folders, ...). Each
configured split (``domain.splits.train`` / ``domain.splits.test``; ``null`` = the dataset has none, e.g.
an evaluation benchmark has no train split) is read for every HF config in ``domain.subsets`` (``null`` =
the default config; MMMU merges its 30 subject configs), mapped row by row through the adapter
(`dualtune.data.adapters`), and handed to the schema validator like any other source. Rows the adapter
skips are counted and logged with their ids, never dropped silently.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from omegaconf import OmegaConf

from dualtune.data.adapters import AdapterContext, SkipRow, get_adapter
from dualtune.data.arrow_rows import lazy_rows
from dualtune.utils.hashing import stable_hash

log = logging.getLogger(__name__)
SPLIT_KEYS = ("train", "test")


def local_cache_kwargs(path: str) -> dict:
    """``load_dataset`` keyword arguments that key a LOCAL snapshot's Arrow cache by its content.

    ``datasets`` names the cache of a local directory after the directory's name and layout only, so a
    second snapshot with the same name (or the same snapshot edited in place) silently returned the first
    one's rows. Here the cache dir is keyed by the absolute path and every file's (relative path, size,
    mtime): changed data means a new cache. Hub ids keep ``datasets``' own (revision-keyed) cache.
    """
    import datasets

    root = Path(path)
    if not root.is_dir():
        return {}
    files = sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in root.rglob("*") if p.is_file() and ".cache" not in p.parts)
    key = stable_hash({"path": str(root.resolve()), "files": files}, length=16)
    return {"cache_dir": str(Path(datasets.config.HF_DATASETS_CACHE) / "dualtune-local" / key)}


def read_hf_split(path: str, subset: str | None, split: str) -> Iterable[dict]:
    """Rows of ``load_dataset(path, name=subset, split=split)`` (hub id or local snapshot dir), read one batch
    at a time, with every image column (``Image``, a list of them, or raw ``binary`` bytes) as lazy
    `dualtune.utils.image_refs.ImageRef` s into the memory-mapped Arrow cache ``load_dataset`` wrote: no image
    is decoded or held in memory here, and a corrupt one reaches the validator instead of crashing here."""
    import datasets

    return lazy_rows(datasets.load_dataset(path, name=subset, split=split, **local_cache_kwargs(path)))


def check_layout(rows: Iterable[dict], required, where: str, adapter: str) -> Iterator[dict]:
    """``rows`` unchanged, once the first row that could be parsed (not a ``_error`` record of
    `dualtune.data.adapters.training_sets.read_json_records`, which is a counted skip) has every column of
    ``required``; otherwise a ValueError naming the missing columns and the columns found, instead of every
    row being skipped. The loader applies it with the adapter's ``REQUIRED_COLUMNS``; an adapter whose
    published layouts differ in their columns applies it in its ``read`` (``adapter`` = its module name)."""
    checked = not required
    for row in rows:
        if not checked and not row.get("_error"):
            missing = [c for c in required if c not in row]
            if missing:
                raise ValueError(f"{where} lacks the columns {missing} that the {adapter!r} adapter reads; columns "
                                 f"found: {sorted(row)}. Is domain.path the dataset as its owners publish it? "
                                 f"(format: dualtune/data/adapters/{adapter}.py)")
            checked = True
        yield row


def _options(domain_cfg) -> dict:
    opts = domain_cfg.get("options")
    return OmegaConf.to_container(opts, resolve=True) if OmegaConf.is_config(opts) else dict(opts or {})


def load_published_split(domain_cfg, split_key: str, skipped: list | None = None) -> list[dict]:
    """Schema rows of one configured split (``split_key`` = train | test); [] when the split is null.
    Rows the adapter skips are counted, logged, and appended to ``skipped`` as ``{"id", "reason"}``."""
    split = (domain_cfg.get("splits") or {}).get(split_key)
    if split is None:
        return []
    adapter = get_adapter(domain_cfg.adapter)
    path = str(domain_cfg.path)
    root = Path(path) if Path(path).is_dir() else None
    read = getattr(adapter, "read", read_hf_split)
    module = adapter.__name__.rsplit(".", 1)[-1]
    rows, counts, skipped_ids = [], Counter(), {}
    subsets = domain_cfg.get("subsets")
    for subset in [subsets] if isinstance(subsets, str) else list(subsets or [None]):
        ctx = AdapterContext(root=root, subset=subset, split=str(split), domain=str(domain_cfg.name),
                             options=_options(domain_cfg))
        raws = check_layout(read(path, subset, str(split)), getattr(adapter, "REQUIRED_COLUMNS", ()),
                            f"{domain_cfg.name}: {path} [{subset or 'default'}/{split}]", module)
        for index, raw in enumerate(raws):
            try:
                rows.append(adapter.to_sample(dict(raw), ctx))
            except KeyError as missing:  # the data is not in the layout the adapter documents
                raise ValueError(
                    f"{domain_cfg.name}: the {domain_cfg.adapter!r} adapter needs column {missing} that "
                    f"{path} [{subset or 'default'}/{split}] lacks; columns found: {sorted(raw)}. Is domain.path "
                    f"the dataset as its owners publish it? (format: dualtune/data/adapters/{module}.py)") from None
            except SkipRow as why:
                reason = str(why)
                rid = raw.get("id", raw.get("pid", raw.get("index", f"{subset}/{split}#{index}")))
                counts[reason] += 1
                skipped_ids.setdefault(reason, []).append(rid)
                if skipped is not None:
                    skipped.append({"id": rid, "reason": f"adapter: {reason}"})
    if counts:
        for reason, count in counts.items():
            log.warning("%s/%s: adapter skipped %d rows (%s), e.g. ids %s", domain_cfg.name, split_key, count,
                        reason, skipped_ids[reason][:10])
    log.info("%s/%s: %d rows read from %s (%s)", domain_cfg.name, split_key, len(rows), path, split)
    return rows


def load_published(domain_cfg, skipped: dict | None = None) -> dict[str, list[dict]]:
    """{"train": rows, "test": rows} of a published dataset through its adapter (unvalidated); adapter
    skips per split go to ``skipped[split]`` when given."""
    skipped = {} if skipped is None else skipped
    splits = {key: load_published_split(domain_cfg, key, skipped.setdefault(key, [])) for key in SPLIT_KEYS}
    warn_missing_rationales(splits["train"], f"{domain_cfg.name}/train")
    return splits


def warn_missing_rationales(rows: list[dict], name: str) -> int:
    """Warn once, with the count, when training ``rows`` carry no rationale (empty ``cot``): CoT-mode training
    on them has no reasoning target. Returns the count."""
    missing = sum(1 for row in rows if not str(row.get("cot") or "").strip())
    if missing:
        log.warning("%s: %d of %d training rows have no rationale (empty `cot`), so CoT training (mode=cot or "
                    "mode=dual) has no reasoning target for them (an empty <think></think>). The CoT-synthesis "
                    "stage is planned but `python cot.py` is not available yet; supply rationales in a `cot` "
                    "column instead: save the rows in the sample schema (dualtune.schema.FEATURES) with `cot` "
                    "filled and train with domain=hf domain.hf.path=<dir>, or train with mode=direct.",
                    name, missing, len(rows))
    return missing
