"""Build, cache and load lab datasets (`datasets.DatasetDict` with the shared sample schema).

Determinism: sample i of subtask s in split p with seed k is generated from its own RNG seeded
by SHA-256("dualtune-lab|k|p|s|i"), so a sample never depends on which other subtasks, splits or
sample counts were requested. Train and test draw from different streams (the split is hashed).

Noise policy: planted noise (``label_noise``, ``cot_error_rate``) is applied only when
``split == "train"``; every other split is clean, so evaluation measures the truth.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from dualtune.lab.draw import png_bytes
from dualtune.lab.generic import generic_samples
from dualtune.lab.registry import DOMAIN_VERSIONS, DOMAINS, GENERIC, SELECTION_LAB, finalize, resolve_knobs, sample_rng, subtasks_for
from dualtune.prompting.templates import cot_target_answer as cot_answer  # noqa: F401 (one definition)
from dualtune.schema import FEATURES, validate_rows
from dualtune.utils.hashing import stable_hash

# Bump whenever generated content changes, so cached builds are invalidated.
LAB_VERSION = "10"
DEFAULT_N_TRAIN = 64
DEFAULT_N_TEST = 32
SPLITS = ("train", "test")


def generate_split(domain: str, split: str, n_per_subtask: int, seed: int,
                   knobs: dict | None = None) -> list[dict]:
    """Finalized samples (PIL images, JSON ``meta``) of every subtask of ``domain`` for ``split``.

    ``domain`` is one of ``DOMAINS``, "all" (every target domain) or "generic" (then
    ``n_per_subtask`` samples per generic subtask). ``knobs`` overrides subtask knobs (see
    ``registry.resolve_knobs``); noise knobs are forced to 0 unless ``split == "train"``.
    """
    if domain == GENERIC:
        return generic_samples(n_per_subtask * len(subtasks_for(GENERIC)), seed, split=split, knobs=knobs)
    rows = []
    for subtask in subtasks_for(domain):
        resolved = resolve_knobs(subtask, knobs, split)
        for i in range(n_per_subtask):
            sample = subtask.make(sample_rng(seed, split, subtask.name, i), resolved)
            rows.append(finalize(sample, subtask, split, i))
    return rows


def lab_text_corpus(seed: int = 0, n_per_subtask: int = 50) -> list[str]:
    """Every question / option / rationale / answer string of train samples of all subtasks
    (target and generic), for training the tokenizer."""
    rows = generate_split("all", "train", n_per_subtask, seed)
    rows += generate_split(GENERIC, "train", n_per_subtask, seed)
    texts = []
    for row in rows:
        texts.extend([row["question"], *row["options"], row["cot"], row["answer"]])
    return texts


def _encode_images(row: dict) -> dict:
    """Replace PIL images/frames with deterministic PNG ``{"bytes", "path"}`` dicts."""
    encode = lambda imgs: [{"bytes": png_bytes(img), "path": None} for img in imgs]  # noqa: E731
    return dict(row, images=encode(row["images"]), video=encode(row["video"]))


def build_lab(domain: str, out_dir, n_train: int = DEFAULT_N_TRAIN, n_test: int = DEFAULT_N_TEST,
              seed: int = 0, knobs: dict | None = None):
    """Generate train/test splits, validate them strictly, and ``save_to_disk(out_dir)``.

    ``n_train`` / ``n_test`` are per subtask. Returns the in-memory ``DatasetDict``.
    """
    from datasets import Dataset, DatasetDict

    splits = {}
    for split, n in zip(SPLITS, (n_train, n_test)):
        rows = [_encode_images(r) for r in generate_split(domain, split, n, seed, knobs)]
        rows, _ = validate_rows(rows, strict=True, name=f"lab-{domain}-{split}")
        splits[split] = Dataset.from_list(rows, features=FEATURES)
    dataset = DatasetDict(splits)
    dataset.save_to_disk(str(out_dir))
    return dataset


def cache_key(domain: str, n_train: int, n_test: int, seed: int, knobs: dict | None) -> str:
    """Short hash of the build parameters and ``LAB_VERSION`` (names the cache directory)."""
    params = {"domain": domain, "n_train": n_train, "n_test": n_test, "seed": seed,
              "knobs": knobs or {}, "version": LAB_VERSION}
    if domain in DOMAIN_VERSIONS:
        params["domain_version"] = DOMAIN_VERSIONS[domain]
    return stable_hash(params)


def load_lab(domain: str, cache_dir, n_train: int = DEFAULT_N_TRAIN, n_test: int = DEFAULT_N_TEST,
             seed: int = 0, knobs: dict | None = None):
    """Load the lab ``DatasetDict`` from ``cache_dir/lab-<domain>-<hash>``, building it on first use.

    The build happens in a temporary sibling directory that is renamed into place, so a crashed
    or concurrent build never leaves a half-written cache entry behind.
    """
    from datasets import load_from_disk

    if domain not in (*DOMAINS, "all", GENERIC, SELECTION_LAB):
        raise ValueError(f"unknown lab domain {domain!r}")
    target = Path(cache_dir) / f"lab-{domain}-{cache_key(domain, n_train, n_test, seed, knobs)}"
    if not (target / "dataset_dict.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            build_lab(domain, tmp, n_train=n_train, n_test=n_test, seed=seed, knobs=knobs)
            try:
                os.rename(tmp, target)
            except OSError:
                # Another process finished the same build first; keep its copy.
                if not (target / "dataset_dict.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(target))
