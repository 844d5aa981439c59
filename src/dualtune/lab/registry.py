"""Registry of lab subtasks, knob resolution, and small helpers shared by the subtask makers.

A `Subtask` couples a generator ``make(rng, knobs) -> sample`` with its *planted truth*: the
Dual Tuning region it was designed to land in ("cot", "direct" or "negative") and its rate of
language-prior samples (questions whose text alone gives the answer away).

Target subtasks (domains in `DOMAINS`) live in `SUBTASKS`. The generic pretraining subtasks
(domain "generic", region "generic") live in the separate `GENERIC_SUBTASKS`, so that
`SUBTASKS`, `planted_regions()` and `subtasks_for("all")` only ever see target subtasks.

Knob overrides (``knobs`` argument of the builder) are a dict whose keys are either
- a knob name (e.g. ``"label_noise": 0.5``): applies to every subtask that declares that knob, or
- a subtask name mapping to a dict (e.g. ``"color_at": {"n_shapes": 8}``): applies to that one.
Unknown knob or subtask names raise ``ValueError`` (typos must not pass silently).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import random
from dataclasses import dataclass
from typing import Callable


DOMAINS = ("spatial", "math", "multidiscipline")
REGIONS = ("cot", "direct", "negative")
GENERIC = "generic"
SELECTION_LAB = "selection_lab"  # RAP selection lab (selection_lab.py): own table, never in "all"
# Domains versioned on their own besides LAB_VERSION (part of their cache key, lab/build.py): bump a domain's
# entry when its generated content changes.
DOMAIN_VERSIONS = {SELECTION_LAB: "1"}
# Knobs that plant training-only noise; the builder zeroes them on every split except "train".
NOISE_KNOBS = ("label_noise", "cot_error_rate")
NOISE_KINDS = ("confusion", "uniform")
_MAKER_MODULES = ("spatial", "mathtasks", "multidiscipline", "generic", "selection_lab")


@dataclass(frozen=True, eq=False)
class Subtask:
    """One procedural subtask with its planted Dual Tuning region and default knobs."""

    name: str
    domain: str
    planted_region: str
    language_prior_rate: float
    description: str
    knobs: dict
    make: Callable[[random.Random, dict], dict]


SUBTASKS: dict[str, Subtask] = {}
GENERIC_SUBTASKS: dict[str, Subtask] = {}
SELECTION_SUBTASKS: dict[str, Subtask] = {}


def register(name: str, domain: str, region: str, description: str, language_prior_rate: float = 0.0,
             knobs: dict | None = None):
    """Decorator registering ``make(rng, knobs)`` as subtask ``name``.

    ``language_prior_rate`` becomes the default of the knob of the same name, so it can be
    overridden per build like any other knob.
    """
    if domain in (GENERIC, SELECTION_LAB):
        if region != domain:
            raise ValueError(f"{domain} subtask {name!r} must have region {domain!r}")
    elif domain not in DOMAINS or region not in REGIONS:
        raise ValueError(f"subtask {name!r}: bad domain {domain!r} or region {region!r}")
    if not 0.0 <= language_prior_rate <= 1.0:
        raise ValueError(f"subtask {name!r}: language_prior_rate must be in [0, 1]")

    def decorator(make):
        all_knobs = dict(knobs or {}, language_prior_rate=language_prior_rate)
        table = {GENERIC: GENERIC_SUBTASKS, SELECTION_LAB: SELECTION_SUBTASKS}.get(domain, SUBTASKS)
        if name in SUBTASKS or name in GENERIC_SUBTASKS or name in SELECTION_SUBTASKS:
            raise ValueError(f"subtask {name!r} registered twice")
        table[name] = Subtask(name, domain, region, language_prior_rate, description, all_knobs, make)
        return make

    return decorator


def _ensure_loaded() -> None:
    """Import every maker module so their @register decorators have run."""
    for module in _MAKER_MODULES:
        importlib.import_module(f"dualtune.lab.{module}")


def subtasks_for(domain: str) -> list[Subtask]:
    """Subtasks of ``domain``; "all" = every target domain (never the generic mixture)."""
    _ensure_loaded()
    if domain == GENERIC:
        return list(GENERIC_SUBTASKS.values())
    if domain == SELECTION_LAB:
        return list(SELECTION_SUBTASKS.values())
    if domain == "all":
        return [s for d in DOMAINS for s in SUBTASKS.values() if s.domain == d]
    if domain not in DOMAINS:
        raise ValueError(f"unknown lab domain {domain!r}; expected one of {DOMAINS + ('all', GENERIC, SELECTION_LAB)}")
    return [s for s in SUBTASKS.values() if s.domain == domain]


def get_subtask(name: str) -> Subtask:
    """Look a subtask up by name (target or generic)."""
    _ensure_loaded()
    if name in SUBTASKS:
        return SUBTASKS[name]
    if name in GENERIC_SUBTASKS:
        return GENERIC_SUBTASKS[name]
    if name in SELECTION_SUBTASKS:
        return SELECTION_SUBTASKS[name]
    raise KeyError(f"unknown lab subtask {name!r}")


def planted_regions() -> dict[str, str]:
    """Map target subtask name -> planted region ("cot" | "direct" | "negative")."""
    _ensure_loaded()
    return {name: s.planted_region for name, s in SUBTASKS.items()}


def resolve_knobs(subtask: Subtask, overrides: dict | None, split: str) -> dict:
    """Defaults of ``subtask`` updated by global then per-subtask ``overrides``; noise off unless train."""
    _ensure_loaded()
    overrides = dict(overrides or {})
    tables = (SUBTASKS, GENERIC_SUBTASKS, SELECTION_SUBTASKS)
    known_knobs = {k for table in tables for s in table.values() for k in s.knobs}
    known_names = {name for table in tables for name in table}
    knobs = dict(subtask.knobs)
    for key, value in overrides.items():
        if key in known_names:
            if not isinstance(value, dict):
                raise ValueError(f"per-subtask knobs for {key!r} must be a dict")
            continue
        if key not in known_knobs:
            raise ValueError(f"unknown lab knob {key!r}")
        if key in knobs:
            knobs[key] = value
    for key, value in dict(overrides.get(subtask.name) or {}).items():
        if key not in subtask.knobs:
            raise ValueError(f"subtask {subtask.name!r} has no knob {key!r}; knobs: {sorted(subtask.knobs)}")
        knobs[key] = value
    # Planted noise is a property of the training data only: evaluation must measure truth.
    if split != "train":
        knobs.update({k: 0.0 for k in NOISE_KNOBS if k in knobs})
    if knobs.get("noise_kind", "confusion") not in NOISE_KINDS:
        raise ValueError(f"noise_kind must be one of {NOISE_KINDS}")
    return knobs


# ----------------------------------------------------------------------------------------------
# Helpers shared by subtask makers
# ----------------------------------------------------------------------------------------------


def flip(rng: random.Random, rate: float) -> bool:
    """One Bernoulli(rate) draw (always consumes exactly one random number)."""
    return rng.random() < rate


def color_choice(color: str) -> tuple[list[str], str]:
    """A color question's (options, answer): no options, and the color word itself as the answer.

    Color questions are answered with a word (``answer_type="text"``) rather than an option letter,
    so a tiny model answers with one content readout instead of also searching an option list.
    """
    return [], color


def new_sample(question: str, answer: str, answer_type: str, cot: str, meta: dict,
               images=None, video=None, options=None) -> dict:
    """Sample dict as returned by ``make`` (the builder adds id/domain/subtask/source)."""
    meta = {"language_prior": False, **meta}
    return {
        "images": list(images or []),
        "video": list(video or []),
        "question": question,
        "options": list(options or []),
        "answer": answer,
        "answer_type": answer_type,
        "cot": cot,
        "meta": meta,
    }


def plural(count: int, noun: str) -> str:
    """'1 block' / '3 blocks'."""
    return f"{count} {noun}" + ("" if count == 1 else "s")


def stable_seed(*parts) -> int:
    """64-bit seed from a SHA-256 of ``parts`` (stable across processes, unlike ``hash()``)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def sample_rng(seed: int, split: str, subtask: str, index: int) -> random.Random:
    """RNG of one sample: depends only on (seed, split, subtask, index)."""
    return random.Random(stable_seed("dualtune-lab", seed, split, subtask, index))


def finalize(sample: dict, subtask: Subtask, split: str, index: int) -> dict:
    """Add id/domain/subtask/source and JSON-encode ``meta`` (sorted keys, with planted_region)."""
    meta = dict(sample["meta"], planted_region=subtask.planted_region)
    return {
        "id": f"{subtask.name}-{split}-{index:05d}",
        "domain": subtask.domain,
        "subtask": subtask.name,
        **{k: v for k, v in sample.items() if k != "meta"},
        "source": "lab",
        "meta": json.dumps(meta, sort_keys=True),
    }
