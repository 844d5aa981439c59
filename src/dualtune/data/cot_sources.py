"""Synthesized CoT sources: rationales written by ``python cot.py`` and joined into a domain's training split.

A source is a directory (``${cache_dir}/cot_sources/<name>/``, or any path) holding::

    provenance.json       teacher (name, path, fingerprint), decoding, tries, seed, variant, date, version, git sha
    parts/part-*.parquet  one file per synthesized batch (atomic; a rerun skips the ids already there)
    rationales.parquet    every part merged, one row per sample id (written atomically at the end of a run)
    summary.json          accept rate per subtask, mean rationale length in tokens, reject reasons

Rows are keyed by sample ``id`` plus the sample's content ``digest`` (id, question, options, answer, answer type,
images by content), so a rationale is never joined onto a sample whose content changed. A row with an empty
``rationale`` (rejected by every try under ``cot.on_reject=drop``) gives its sample no rationale.

``domain.cot_source=<name or path>`` makes `load_domain` call `apply_cot_source` on the training split: each
sample's ``cot`` becomes the source's rationale (and, for a teacher's rationale, a planted ``meta.cot_answer`` is
dropped: a synthesized rationale concludes with the gold answer). Samples the source lacks are counted and logged;
they keep their own rationale (``domain.cot_source_missing=keep``) or are skipped (``drop``, reason
``no_cot_source_rationale``).

``cot.variant=condensed`` (issue 12's thinking-pattern study) stores `condense` of each rationale (the teacher's,
or with ``cot.from_dataset=true`` the data's own, no teacher): its last sentence only (``cot.condensed_sentences``),
where sentences end at '.', '!' or '?' followed by whitespace, or at a line break.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from dualtune.scoring.store import ScoreStore
from dualtune.utils.hashing import sample_digest

log = logging.getLogger(__name__)

SOURCES_SUBDIR = "cot_sources"
MISSING_POLICIES = ("keep", "drop")
VARIANTS = ("full", "condensed")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")


class CotSourceStore(ScoreStore):
    """A `ScoreStore` (atomic parts, resume, locked merge) whose merged file is ``rationales.parquet``."""

    def __init__(self, path):
        super().__init__(path)
        self.merged_path = self.path / "rationales.parquet"
        self.summary_path = self.path / "summary.json"


def source_dir(source: str, cache_dir) -> Path:
    """The directory of a CoT source: ``source`` itself when it names a path (has a '/' or is a directory),
    else ``<cache_dir>/cot_sources/<source>``."""
    source = str(source)
    if "/" in source or Path(source).is_dir():
        return Path(source).expanduser()
    return Path(cache_dir) / SOURCES_SUBDIR / source


def source_problem(source: str, cache_dir) -> str | None:
    """Why ``source`` cannot be read (no such directory / no provenance.json), or None when it can."""
    path = source_dir(source, cache_dir)
    if not (path / "provenance.json").is_file():
        return (f"no CoT source at {path} (no provenance.json); synthesize it first with "
                f"`python cot.py cot.source_name=<name> domain=...`, or give the source's directory")
    return None


def content_digest(sample: dict) -> str:
    """The content digest rows are keyed by: id, question, options, answer, answer type, images by content
    (`dualtune.utils.hashing.sample_digest`, the score store's key too, so both agree on a sample)."""
    return sample_digest(sample)


def condense(rationale: str, n_sentences: int = 1) -> str:
    """The last ``n_sentences`` sentences of ``rationale`` (all of it when it has fewer). Sentences end at
    '.', '!' or '?' followed by whitespace, or at a line break; surrounding whitespace is stripped.

    >>> condense("red: 3. blue: 2. 3 + 2 = 5.")
    '3 + 2 = 5.'
    """
    if int(n_sentences) < 1:
        raise ValueError(f"n_sentences must be >= 1, got {n_sentences}")
    sentences = [s.strip() for s in _SENTENCE_END.split((rationale or "").strip()) if s.strip()]
    return " ".join(sentences[-int(n_sentences):])


def read_rationales(source: str, cache_dir) -> dict[tuple[str, str], tuple[str, str]]:
    """``{(id, digest): (rationale, origin)}`` of a source's rows that hold a rationale (merged file and parts;
    one id may have several digests, e.g. a teacher-free source built over the lab data of several seeds);
    origin ``teacher`` (synthesized), ``original`` (kept by ``cot.on_reject=keep_original``) or ``dataset``
    (``cot.from_dataset=true``: the data's own rationale, possibly condensed)."""
    problem = source_problem(source, cache_dir)
    if problem:
        raise FileNotFoundError(problem)
    df = CotSourceStore(source_dir(source, cache_dir)).read()
    if df.empty:
        return {}
    origins = df["origin"] if "origin" in df else ["teacher"] * len(df)
    return {(str(i), str(d)): (str(r), str(o)) for i, d, r, o in zip(df["id"], df["digest"], df["rationale"], origins)
            if isinstance(r, str) and r.strip()}


def apply_cot_source(rows: list[dict], source: str, cache_dir, missing: str = "keep",
                     skipped: list | None = None) -> list[dict]:
    """``rows`` with each ``cot`` replaced by the source's rationale for the same id and content digest.

    Rows the source lacks (no row, no rationale, or a different digest) are counted and logged, and are kept
    with their own rationale (``missing="keep"``) or left out (``"drop"``: appended to ``skipped`` as
    ``{"id", "reason": "no_cot_source_rationale"}``)."""
    if missing not in MISSING_POLICIES:
        raise ValueError(f"domain.cot_source_missing must be one of {MISSING_POLICIES}, got {missing!r}")
    rationales = read_rationales(source, cache_dir)
    known_ids = {i for i, _ in rationales}
    out, n_missing, n_stale = [], 0, 0
    for row in rows:
        rationale, origin = rationales.get((str(row["id"]), content_digest(row)), (None, None))
        if rationale is None and str(row["id"]) in known_ids:
            n_stale += 1
        if rationale is None:
            n_missing += 1
            if missing == "drop":
                if skipped is not None:
                    skipped.append({"id": row["id"], "reason": "no_cot_source_rationale"})
                continue
            out.append(row)
            continue
        meta = _without_cot_answer(row.get("meta")) if origin == "teacher" else row.get("meta")
        out.append(dict(row, cot=rationale, meta=meta))
    log.info("CoT source %s: %d/%d training samples take its rationale", source_dir(source, cache_dir),
             len(rows) - n_missing, len(rows))
    if n_missing:
        log.warning("CoT source %s lacks %d/%d training samples (%d of them changed since synthesis); they are %s",
                    source, n_missing, len(rows), n_stale,
                    "dropped" if missing == "drop" else "kept with their own rationale")
    return out


def _without_cot_answer(meta):
    """``meta`` (a JSON string or a dict) without ``cot_answer``, in the form it came in."""
    from dualtune.schema import sample_meta

    decoded = sample_meta({"meta": meta})
    if "cot_answer" not in decoded:
        return meta
    decoded.pop("cot_answer")
    return json.dumps(decoded) if isinstance(meta, str) else decoded


def summarize(records: list[dict]) -> dict:
    """Accept rate per (domain, subtask) and overall, the mean rationale length in tokens of the accepted
    (teacher) rationales, how many kept their original one, and the reject reasons, from source rows."""
    from collections import Counter

    def block(rs):
        accepted = [r for r in rs if r["accepted"]]
        tokens = [int(r["n_tokens"]) for r in accepted]
        return {"n": len(rs), "accepted": len(accepted), "accept_rate": len(accepted) / len(rs) if rs else 0.0,
                "mean_rationale_tokens": sum(tokens) / len(tokens) if tokens else None,
                "mean_tries_accepted": (sum(int(r["tries_used"]) for r in accepted) / len(accepted)
                                        if accepted else None)}

    groups: dict = {}
    for r in records:
        groups.setdefault((r["domain"], r["subtask"]), []).append(r)
    return {**block(records), "rejected": sum(not r["accepted"] for r in records),
            "kept_original": sum(r.get("origin") == "original" for r in records),
            "reject_reasons": dict(Counter(r["reject_reason"] for r in records if not r["accepted"])),
            "per_subtask": [{"domain": d, "subtask": s, **block(rs)} for (d, s), rs in sorted(groups.items())]}
