"""Rollouts for data selection: two conditions, batched generation, shared scoring, one cache.

Conditions (RAP's CDE, digest rap.md §2): ``mm`` = image + text, ``txt`` = the image removed
entirely *and* its placeholder tokens removed from the prompt. ``txt`` is produced by handing
the generator an image-free copy of the sample (:func:`strip_images`); the chat template then
gets no image entries and the processor no pixels, which is exactly the prompt of
``encode_generation_batch(..., text_only=True)`` (tested).

Every rollout is judged with the shared extractor (``prompting.score_output``, exact numeric
match so that correctness is 0/1), the CoT format check and the released code's overall reward
``0.9 * correct + 0.1 * format`` (rap.md §6.2).

The cache (:class:`RolloutCache`) is keyed by model fingerprint, prompt template, decoding
parameters and seed — *not* by the number of rollouts M: an entry holding m rollouts of a
sample serves any request for M <= m, and a request for more generates only the missing ones.
So RAP (M = 5), a pass-rate band (M = 8) and a length selector all share one set of rollouts.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dualtune.prompting.answers import cot_format_ok, score_output
from dualtune.selection.released_code import released_reward
from dualtune.utils.hashing import sample_digest, stable_hash

log = logging.getLogger(__name__)

CONDITIONS = ("mm", "txt")
ROLLOUT_CACHE_VERSION = 1  # bump when judging or record fields change


@dataclass(frozen=True)
class RolloutSettings:
    """How rollouts are sampled: answer mode, M per condition, decoding parameters, seed."""

    mode: str = "cot"
    num_generations: int = 5
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    do_sample: bool = True
    seed: int = 0

    def decoding(self) -> dict:
        """Decoding parameters that change a rollout (everything but M)."""
        out = asdict(self)
        out.pop("num_generations")
        return out


def strip_images(sample: dict) -> dict:
    """Image-free copy of ``sample`` (no images, no video frames, no video file): the CDE text-only input."""
    from dualtune.prompting.templates import without_visuals

    return without_visuals(sample)


def condition_inputs(samples, condition: str) -> list[dict]:
    """What the generator sees: the samples as they are (``mm``) or image-free copies (``txt``)."""
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    return list(samples) if condition == "mm" else [strip_images(s) for s in samples]


def judge(text: str, sample: dict, mode: str) -> tuple[bool, bool, float]:
    """``(correct, format_ok, reward)`` of one rollout text (format is always ok in direct mode)."""
    _, score = score_output(text, sample, "exact")
    correct = bool(score >= 1.0 - 1e-9)
    format_ok = cot_format_ok(text) if mode == "cot" else True
    return correct, format_ok, released_reward(correct, format_ok)


def rollout_cache_key(model_fingerprint: str, template: str, settings: RolloutSettings, backend: str = "hf") -> str:
    """Cache key: model hash, prompt template, decoding parameters, seed (not M), and the generation backend
    unless it is hf (sampled rollouts of another engine are other draws; hf keys are what they always were)."""
    payload = {"model": model_fingerprint, "template": template, "decoding": settings.decoding(),
               "v": ROLLOUT_CACHE_VERSION}
    if backend != "hf":
        payload["backend"] = backend
    return stable_hash(payload, length=20)


def batch_seed(seed: int, condition: str, start: int, ids) -> int:
    """Deterministic torch seed of one generation call (same batch -> same rollouts)."""
    return int(stable_hash([seed, condition, start, list(ids)]), 16) % (2**31 - 1)


class GeneratorRolloutBackend:
    """Rollouts from a `dualtune.generation` backend (``generation.backend: hf | vllm``)."""

    def __init__(self, generator):
        self.generator = generator

    def generate(self, samples, condition: str, settings: RolloutSettings, n: int, seed: int) -> list[list[dict]]:
        """``n`` rollouts per sample as ``{text, token_ids, truncated}``, seeded with ``seed``; the caller's global
        RNG state is preserved. ``samples`` are the condition's inputs (see :func:`condition_inputs`: already
        image-free for the text-only condition); ``condition`` is informational."""
        inputs = list(samples)
        outs = self.generator.generate(
            inputs, settings.mode, n=n, max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
            top_p=settings.top_p, do_sample=settings.do_sample, seed=seed)
        rollouts = [{"text": o["completion_text"], "token_ids": o["completion_ids"].tolist(),
                     "truncated": bool(o["truncated"])} for o in outs]
        return [rollouts[i * n:(i + 1) * n] for i in range(len(inputs))]


class HFRolloutBackend(GeneratorRolloutBackend):
    """Rollouts from a Hugging Face VLM through ``training.rollout.generate_completions`` (`HFGenerator`: the
    global torch RNG is forked and seeded per call, so scoring never shifts a training run's random stream)."""

    def __init__(self, model, processor, templates=None, micro_batch_size: int = 32):
        from dualtune.generation.hf import HFGenerator

        self.model, self.processor = model, processor
        self.templates, self.micro_batch_size = templates, int(micro_batch_size)
        super().__init__(HFGenerator(model, processor, templates, micro_batch_size=self.micro_batch_size))


class RolloutCache:
    """Per-sample rollouts on disk: ``<root>/<key>/part-*.parquet``, one file per generation call.

    A part is written to a temp name and ``os.replace``-d, so a killed run leaves either the whole
    part or nothing. Rows: ``id, digest, cond, start, texts, token_ids, truncated, correct,
    format_ok, reward`` — the rollouts ``start .. start + len(texts) - 1`` of one sample.
    """

    def __init__(self, root, key: str):
        self.dir = Path(root) / key
        self.key = key
        self._chunks: dict[tuple, list[dict]] = defaultdict(list)

    def load(self, digests: dict) -> int:
        """Read the parts, keeping rows of the given ``{id: digest}`` only; return rows loaded."""
        import pandas as pd

        self._chunks.clear()
        loaded = 0
        for part in sorted(self.dir.glob("part-*.parquet")):
            for row in pd.read_parquet(part).to_dict("records"):
                if digests.get(row["id"]) == row["digest"]:
                    self._chunks[(row["id"], row["cond"])].append(row)
                    loaded += 1
        return loaded

    def get(self, sample_id, condition: str) -> list[dict]:
        """Cached rollouts of a sample, in rollout-index order (contiguous from 0)."""
        out = []
        for chunk in sorted(self._chunks.get((sample_id, condition), []), key=lambda c: c["start"]):
            if chunk["start"] != len(out):  # a duplicate or a gap: keep the contiguous prefix
                continue
            for k in range(len(chunk["texts"])):
                out.append({"text": chunk["texts"][k], "token_ids": list(chunk["token_ids"][k]),
                            "truncated": bool(chunk["truncated"][k]), "correct": bool(chunk["correct"][k]),
                            "format_ok": bool(chunk["format_ok"][k]), "reward": float(chunk["reward"][k])})
        return out

    def add(self, rows: list[dict]) -> None:
        """Write ``rows`` as one part atomically and index them."""
        import pandas as pd

        from dualtune.scoring.store import write_parquet_atomic

        if not rows:
            return
        write_parquet_atomic(pd.DataFrame(rows), self.dir / f"part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet")
        for row in rows:
            self._chunks[(row["id"], row["cond"])].append(row)


def collect_rollouts(backend, cache: RolloutCache, samples, condition: str, settings: RolloutSettings,
                     stats: dict) -> list[list[dict]]:
    """M judged rollouts per sample for ``condition``: cached ones first, the missing ones generated.

    Samples are grouped by how many rollouts they lack, so a fresh batch is one batched
    generation call. ``stats`` accumulates ``generated_tokens``, ``cached_tokens``,
    ``rollouts_generated``, ``rollouts_cached`` and ``generate_s``.
    """
    m = int(settings.num_generations)
    have = {s["id"]: cache.get(s["id"], condition) for s in samples}
    by_need: dict[int, list[dict]] = defaultdict(list)
    for s in samples:
        need = m - len(have[s["id"]])
        if need > 0:
            by_need[need].append(s)
    for need, group in sorted(by_need.items()):
        start = m - need
        ids = [s["id"] for s in group]
        begin = time.perf_counter()
        generated = backend.generate(condition_inputs(group, condition), condition, settings, need,
                                     batch_seed(settings.seed, condition, start, ids))
        stats["generate_s"] = stats.get("generate_s", 0.0) + time.perf_counter() - begin
        rows = []
        for s, outs in zip(group, generated):
            verdicts = [judge(o["text"], s, settings.mode) for o in outs]
            rows.append({"id": s["id"], "digest": sample_digest(s), "cond": condition, "start": start,
                         "texts": [o["text"] for o in outs], "token_ids": [list(o["token_ids"]) for o in outs],
                         "truncated": [bool(o["truncated"]) for o in outs],
                         "correct": [v[0] for v in verdicts], "format_ok": [v[1] for v in verdicts],
                         "reward": [v[2] for v in verdicts]})
            stats["generated_tokens"] = stats.get("generated_tokens", 0) + sum(len(o["token_ids"]) for o in outs)
            stats["rollouts_generated"] = stats.get("rollouts_generated", 0) + len(outs)
        cache.add(rows)
    result = []
    for s in samples:
        cached = min(len(have[s["id"]]), m)
        stats["cached_tokens"] = stats.get("cached_tokens", 0) + sum(len(r["token_ids"]) for r in have[s["id"]][:m])
        stats["rollouts_cached"] = stats.get("rollouts_cached", 0) + cached
        rollouts = cache.get(s["id"], condition)[:m]
        if len(rollouts) != m:
            raise RuntimeError(f"sample {s['id']!r}: {len(rollouts)} {condition} rollouts, expected {m}")
        result.append(rollouts)
    return result


def rollout_summary(rollouts: list[dict]) -> dict:
    """Per-condition sample fields: correctness / reward lists, pass rate, mean generated tokens."""
    correct = [bool(r["correct"]) for r in rollouts]
    return {"correct": correct, "rewards": [float(r["reward"]) for r in rollouts],
            "pass_rate": float(np.mean(correct)) if correct else float("nan"),
            "tokens": float(np.mean([len(r["token_ids"]) for r in rollouts])) if rollouts else float("nan")}
