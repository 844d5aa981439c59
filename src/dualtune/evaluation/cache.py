"""Cache of base-model evaluation results, keyed by everything that can change a prediction.

Layout: ``{cache_dir}/eval/{key}/records.jsonl`` (the records, written last, so its presence marks a complete
entry) and ``meta.json`` (the key fields, for humans). Both are written atomically (temp file + os.replace),
so an interrupted run never leaves a half entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Callable

from dualtune.evaluation.runner import EvalResult, read_records, records_to_jsonl
from dualtune.prompting.templates import DEFAULT_TEMPLATES
from dualtune.utils.hashing import stable_hash, visual_digest
from dualtune.utils.io import atomic_write_text

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # bump when record fields or scoring change in a way old entries must not survive


def _plain(obj):
    """Convert mappings / sequences (OmegaConf containers included) to plain JSON-able Python."""
    if hasattr(obj, "items"):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) or (hasattr(obj, "__iter__") and not isinstance(obj, (str, bytes))):
        return [_plain(v) for v in obj]
    return obj


def samples_digest(samples: list[dict]) -> str:
    """Hash of the evaluated samples' content, in order: ids, answers, question texts, options and the
    images / video frames by content (``utils.hashing.visual_digest``), so new pixels miss the cache."""
    h = hashlib.sha256()
    for s in samples:
        fields = [s["id"], s.get("domain"), s.get("subtask"), s["answer"], s.get("answer_type"),
                  s.get("question"), list(s.get("options") or []), visual_digest(s)]
        h.update(json.dumps(fields, ensure_ascii=False).encode())
    return h.hexdigest()


def eval_key_fields(samples: list[dict], modes, templates=None, max_new_tokens=None, numeric_metric=None,
                    max_prompt_length=None, decoding: dict | None = None) -> dict:
    """The standard key fields for `cached_evaluate` (``templates=None`` means the default templates)."""
    return {
        "samples": samples_digest(samples),
        "n_samples": len(samples),
        "modes": list(modes),
        "templates": _plain(templates or DEFAULT_TEMPLATES),
        "max_new_tokens": _plain(max_new_tokens or {}),
        "numeric_metric": _plain(numeric_metric or {}),
        "max_prompt_length": max_prompt_length,
        "decoding": _plain(decoding or {"do_sample": False}),
    }


def eval_cache_key(model_path, key_fields: dict) -> str:
    """sha256 (first 24 hex chars) of the model fingerprint, the cache version and the key fields."""
    from dualtune.models.loading import model_fingerprint

    payload = {"model": model_fingerprint(model_path), "version": CACHE_VERSION, "fields": _plain(key_fields)}
    return stable_hash(payload, length=24)


def cached_evaluate(cache_dir, model_path, key_fields: dict, fn: Callable[[], EvalResult]) -> EvalResult:
    """Return the cached result for (model, key_fields) or run ``fn()`` and store its records.

    A hit loads the records (``result.cached`` is True) and never calls ``fn``; an unreadable entry is
    treated as a miss and overwritten.
    """
    key = eval_cache_key(model_path, key_fields)
    entry = Path(cache_dir) / "eval" / key
    records_path = entry / "records.jsonl"
    if records_path.is_file():
        try:
            result = EvalResult.from_records(read_records(records_path), cached=True)
            log.info("eval cache hit %s (%d records)", entry, len(result.records))
            return result
        except (OSError, ValueError) as err:  # json.JSONDecodeError is a ValueError
            log.warning("eval cache entry %s unreadable (%s); recomputing", entry, err)
    result = fn()
    meta = {"key": key, "model_path": str(model_path), "fields": _plain(key_fields),
            "wall_time_s": result.wall_time_s, "n_records": len(result.records)}
    atomic_write_text(entry / "meta.json", json.dumps(meta, indent=2, default=str) + "\n")
    atomic_write_text(records_path, records_to_jsonl(result.records))
    log.info("eval cache stored %s (%d records)", entry, len(result.records))
    return result
