"""Load a domain's train/test samples: the procedural lab, any dataset already in the sample schema
(``source: hf``), or a dataset in its own published format through its adapter (``source: published``).

Rows are validated with `dualtune.schema.validate_rows`: invalid rows are counted and logged (or raise
with ``strict=True``); nothing is dropped silently. Rows are small dicts: their text, and every image /
video frame as a lazy `dualtune.utils.image_refs.ImageRef` into the dataset's Arrow files on disk (the
lab's and a ``source: hf`` dataset's memory-mapped cache, a published dataset's ``load_dataset`` cache), so
memory does not grow with the dataset's images. The validator decodes each image once to check it (a
corrupt or missing image is a counted skip naming its row, never a crash inside ``datasets``) without
keeping it; images are decoded again at use, one batch at a time (`dualtune.data.encoding`). Duplicate ids
follow the rule in `dualtune.schema`; ids shared by train and test are logged (leakage) but kept.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

from omegaconf import OmegaConf

from dualtune.data.arrow_rows import lazy_rows
from dualtune.schema import FEATURES, validate_rows, warn_split_overlap
from dualtune.schema import sample_meta  # noqa: F401  (re-exported: its old home)

log = logging.getLogger(__name__)


def _load_hf(hf_cfg):
    """A DatasetDict from a `save_to_disk` directory or a hub id (``load_dataset``)."""
    import datasets

    path = str(hf_cfg.path)
    if Path(path).is_dir() and (Path(path) / "dataset_dict.json").exists():
        return _load_saved_dict(Path(path))
    from dualtune.data.published import local_cache_kwargs

    return datasets.load_dataset(path, hf_cfg.get("name"), **local_cache_kwargs(path))


def _load_saved_dict(path: Path):
    """``load_from_disk`` split by split: a split saved with no rows has no data files, which
    ``datasets`` cannot load (IndexError); it becomes an empty split with its saved features, so the
    empty-data check can name it."""
    import datasets

    splits = {}
    for split in json.loads((path / "dataset_dict.json").read_text())["splits"]:
        state = json.loads((path / split / "state.json").read_text())
        if state.get("_data_files"):
            splits[split] = datasets.load_from_disk(str(path / split))
        else:
            info = json.loads((path / split / "dataset_info.json").read_text())
            features = datasets.Features.from_dict(info["features"]) if info.get("features") else None
            splits[split] = datasets.Dataset.from_dict({k: [] for k in features or {}}, features=features)
    return datasets.DatasetDict(splits)


def _check_columns(ds, name: str) -> None:
    missing = [c for c in FEATURES if c not in ds.column_names]
    if missing:
        raise ValueError(f"{name}: dataset lacks schema columns {missing}; see dualtune.schema.FEATURES")


def load_domain(domain_cfg, cache_dir, seed: int = 0, strict: bool = False,
                skipped: dict | None = None) -> dict[str, list[dict]]:
    """Return {"train": rows, "test": rows} for the configured domain, validated.

    ``skipped`` (a dict, optional) receives, per split, every input row that was not kept, as
    ``{"id", "reason"}`` (adapter skips and validation skips), so outputs can list every input row.
    ``domain_cfg.cot_source`` (a CoT source name or path, optional) replaces the training rationales by
    synthesized ones (`dualtune.data.cot_sources.apply_cot_source`)."""
    skipped = {} if skipped is None else skipped
    if domain_cfg.source == "lab":
        from dualtune.lab import load_lab

        splits = {}
        knobs = domain_cfg.get("knobs")
        knobs = OmegaConf.to_container(knobs) if OmegaConf.is_config(knobs) else knobs
        for dom in domain_cfg.domains:
            sizes = dict(n_train=int(domain_cfg.n_train_per_subtask), n_test=int(domain_cfg.n_test_per_subtask))
            if dom == "selection_lab":  # RAP's selection lab: own subtask table and cache (lab/selection_lab.py)
                from dualtune.lab.selection_lab import load_selection_lab

                dd = load_selection_lab(Path(cache_dir) / "lab", **sizes, seed=seed, knobs=knobs)
            else:
                dd = load_lab(dom, Path(cache_dir) / "lab", **sizes, seed=seed, knobs=knobs)
            for split in ("train", "test"):  # rows are streamed into the validator, never listed twice
                splits[split] = itertools.chain(splits.get(split, ()), lazy_rows(dd[split]))
            del dd  # the rows read the Arrow files themselves (dualtune.data.arrow_rows): let the dataset go
    elif domain_cfg.source == "hf":
        dd = _load_hf(domain_cfg.hf)
        splits = {}
        for split, key in (("train", domain_cfg.hf.train_split), ("test", domain_cfg.hf.test_split)):
            if key not in dd:
                raise ValueError(f"split {key!r} not in dataset {domain_cfg.hf.path} (has {list(dd)})")
            _check_columns(dd[key], f"{domain_cfg.hf.path}[{key}]")
            splits[split] = lazy_rows(dd[key])
        del dd  # the rows read the Arrow files themselves (dualtune.data.arrow_rows): let the dataset go
    elif domain_cfg.source == "published":
        from dualtune.data.published import load_published

        splits = load_published(domain_cfg, skipped)
    else:
        raise ValueError(f"unknown domain source {domain_cfg.source!r}; expected lab, hf or published")
    out = {}
    for split, rows in splits.items():
        out[split], report = validate_rows(rows, strict=strict, name=f"{domain_cfg.name}/{split}")
        log.info("%s/%s: %s", domain_cfg.name, split, report.summary())
        skipped.setdefault(split, []).extend(report.rows)
    if domain_cfg.get("cot_source") and "train" in out:  # synthesized rationales (python cot.py; data/cot_sources.py)
        from dualtune.data.cot_sources import apply_cot_source

        out["train"] = apply_cot_source(out["train"], domain_cfg.cot_source, cache_dir,
                                        domain_cfg.get("cot_source_missing") or "keep", skipped.setdefault("train", []))
    warn_split_overlap(out, name=domain_cfg.name)
    return out


def limit_samples(samples: list[dict], limit) -> list[dict]:
    """The first ``limit`` samples of every subtask (all when ``limit`` is None)."""
    if not limit:
        return samples
    seen, out = {}, []
    for s in samples:
        key = (s["domain"], s["subtask"])
        if seen.get(key, 0) < int(limit):
            seen[key] = seen.get(key, 0) + 1
            out.append(s)
    return out
