"""Provenance of a score file, and how score stores are found and reused.

``provenance.json`` records the model (id, path, fingerprint), the prompt template, the decoding
parameters, the seed, the conditions and ACE settings — the *matching* fields, whose hash
names the store — plus informational fields (git sha, config hash, dataset size, time) that
never block reuse. Two runs reuse each other's scores iff their matching fields are equal.

Within a store, each score row carries its sample's content digest (``utils.hashing.sample_digest``: id,
question, options, answer and the images / video frames by content); only rows whose digest matches
the current sample are reused, so a sample whose image changed is scored again. The informational
``dataset_digest`` hashes those per-sample digests (the dataset's content, not only its ids).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from dualtune.scoring.attention import AceSettings
from dualtune.scoring.rollouts import ROLLOUT_CACHE_VERSION, RolloutSettings
from dualtune.scoring.store import ScoreStore
from dualtune.utils.hashing import git_sha, stable_hash

SCORES_VERSION = 1  # bump when the meaning of a stored score column changes
INFO_KEYS = ("git_sha", "config_hash", "created", "n_samples", "dataset_digest", "model_path", "hash")


@dataclass(frozen=True)
class ScoringPlan:
    """What must be computed per sample: rollout conditions and (optionally) ACE."""

    rollouts: RolloutSettings
    conditions: tuple[str, ...] = ("mm", "txt")
    ace: AceSettings | None = None
    ace_scope: str = "all"           # all | needed (S_CDE plus the DRM band, rap.md §5 line 3)
    ace_scope_lam_c: float | None = None  # lambda_c that defines "needed" (only then)


def matching_fields(prov: dict) -> dict:
    """The fields of a provenance that must be equal for scores to be reused."""
    return {k: v for k, v in prov.items() if k not in INFO_KEYS}


def provenance_hash(prov: dict) -> str:
    """Stable hash of the matching fields (names the store directory)."""
    return stable_hash(matching_fields(prov))


def build_provenance(plan: ScoringPlan, model_info: dict, template: str, config=None,
                     dataset_ids=None) -> dict:
    """Provenance dict for ``plan``; ``model_info`` = {name, fingerprint, ...} plus an informational ``path``.

    ``dataset_ids``: the sample ids, or a mapping ``{id: sample content digest}`` (then the informational
    ``dataset_digest`` covers the content, images included).
    """
    model_info = dict(model_info)
    if dataset_ids is not None:
        content = sorted((str(k), str(v)) for k, v in dataset_ids.items()) if hasattr(dataset_ids, "items") \
            else sorted(map(str, dataset_ids))
    model_path = model_info.pop("path", None)
    prov = {
        "version": SCORES_VERSION,
        "rollout_cache_version": ROLLOUT_CACHE_VERSION,
        "model": model_info,
        "model_path": model_path,
        "prompt_template": template,
        "mode": plan.rollouts.mode,
        "decoding": plan.rollouts.decoding(),
        "num_generations": int(plan.rollouts.num_generations),
        "seed": int(plan.rollouts.seed),
        "conditions": list(plan.conditions),
        "ace": plan.ace.provenance() if plan.ace else None,
        "ace_scope": plan.ace_scope if plan.ace else None,
        "ace_scope_lam_c": plan.ace_scope_lam_c if plan.ace and plan.ace_scope == "needed" else None,
        "git_sha": git_sha(),
        "config_hash": stable_hash(config) if config is not None else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "n_samples": len(dataset_ids) if dataset_ids is not None else None,
        "dataset_digest": stable_hash(content) if dataset_ids is not None else None,
    }
    prov["hash"] = provenance_hash(prov)
    return prov


def provenance_matches(stored: dict | None, wanted: dict) -> bool:
    """True iff ``stored`` has the same matching fields as ``wanted``."""
    return stored is not None and matching_fields(stored) == matching_fields(wanted)


def resolve_store(root, prov: dict) -> tuple[ScoreStore, bool]:
    """The store to use for ``prov`` under ``root`` and whether it already existed with matching provenance.

    ``root`` itself is used when it holds a matching ``provenance.json`` (e.g. a previous run dir
    or an explicit store); otherwise ``root/<provenance hash>``, created if needed. A store whose
    provenance does not match is never written to.
    """
    root = Path(root)
    direct = ScoreStore(root)
    if provenance_matches(direct.read_provenance(), prov):
        return direct, True
    store = ScoreStore(root / provenance_hash(prov))
    stored = store.read_provenance()
    if stored is not None and not provenance_matches(stored, prov):
        raise RuntimeError(f"score store {store.path} holds a different provenance (hash collision?)")
    existed = stored is not None
    store.init(prov)
    return store, existed
