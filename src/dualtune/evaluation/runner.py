"""Evaluate a model in both answer modes: batched greedy generation, shared scoring, tables.

One record per (sample, mode): ``{id, domain, subtask, mode, question, options, answer_type, output,
extracted, answer, score, truncated, n_tokens, skipped, status}``. A prompt longer than ``max_prompt_length`` is never truncated: it is skipped, logged,
scored 0 and counted in ``EvalResult.skipped``, so accuracies keep every sample in the denominator.
Accuracies reported by `EvalResult` are in percent; record scores stay in [0, 1]. ``n_tokens`` counts the
generated tokens including the closing EOS (``truncated``: the budget ran out before an EOS).
Mode ``auto`` (auto-think, `dualtune.prompting.templates`) adds per-subtask ``think_rate`` to the summary.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from dualtune.aggregates import aggregate_weights, item_grouping, subtask_weights, weighted_accuracy
from dualtune.data.encoding import OverlongError, encode_generation_batch
from dualtune.evaluation.think_rate import think_rates
from dualtune.prompting.answers import score_output
from dualtune.prompting.templates import AUTO, EVAL_MODES, MODES, budget_mode, check_mode
from dualtune.utils.io import atomic_write_text

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = {"direct": 16, "cot": 160}
OVERALL = "all"  # the domain name of the aggregate over every domain


def _mean(values) -> float:
    """Exact-sum mean of ``values`` (0.0 for an empty list)."""
    values = list(values)
    return math.fsum(values) / len(values) if values else 0.0


@dataclass
class EvalResult:
    """Per-(sample, mode) records plus the views the paper needs (all accuracies in percent)."""

    records: list[dict]
    wall_time_s: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    # math-verify checks of this evaluation that were cut off (timeouts / too_large / crashed), scored 0.
    math_checks: dict[str, int] = field(default_factory=dict)
    # Input rows never evaluated (adapter / validation skips), as {"id", "reason"}: listed in the outputs.
    input_skips: list[dict] = field(default_factory=list)

    @classmethod
    def from_records(cls, records: list[dict], **kwargs) -> "EvalResult":
        """Rebuild a result from stored records (e.g. a cache hit or a predictions.jsonl file)."""
        return cls(records=[dict(r) for r in records], **kwargs)

    @property
    def modes(self) -> list[str]:
        """Modes present in the records, in canonical order."""
        present = {r["mode"] for r in self.records}
        return [m for m in EVAL_MODES if m in present] + sorted(present - set(EVAL_MODES))

    @property
    def skipped(self) -> dict[str, int]:
        """Number of over-long (skipped, scored 0) prompts per mode."""
        counts = {m: 0 for m in self.modes}
        for r in self.records:
            counts[r["mode"]] += int(bool(r.get("skipped")))
        return counts

    def _groups(self) -> dict[tuple[str, str, str], list[dict]]:
        """Records grouped by (domain, subtask, mode), keys sorted."""
        groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
        for r in self.records:
            groups[(r["domain"], r["subtask"], r["mode"])].append(r)
        return dict(sorted(groups.items()))

    def per_subtask(self) -> list[dict]:
        """``[{domain, subtask, mode, n, accuracy}]`` with accuracy = 100 * mean score of the subtask (the mean
        over its variants when its records carry several, e.g. VSI-Bench rel. direction; `dualtune.aggregates`)."""
        return [
            {"domain": d, "subtask": s, "mode": m, "n": len(rs),
             "accuracy": weighted_accuracy([r["score"] for r in rs], subtask_weights(rs))}
            for (d, s, m), rs in self._groups().items()
        ]

    def aggregates(self) -> list[dict]:
        """Per domain and overall (domain ``"all"``): ``{domain, mode, n, n_subtasks, macro, weighted}``.

        ``macro`` is the unweighted mean of subtask accuracies (overall: over every subtask of every domain);
        ``weighted`` pools the samples (every item weighs the same, variants or not), so large subtasks count
        more; ``cvbench`` (only where every record carries a ``group``, e.g. CV-Bench's [type, source]) is the
        nested mean over it. All kinds use `dualtune.aggregates`, as the boundary report's ALL rows do.
        """
        out = []
        for domain in sorted({r["domain"] for r in self.records}) + [OVERALL]:
            for mode in self.modes:
                recs = [r for r in self.records if r["mode"] == mode and domain in (OVERALL, r["domain"])]
                if not recs:
                    continue
                scores = [r["score"] for r in recs]
                # The same weights as the boundary report's ALL rows (one definition: dualtune.aggregates).
                row = {"domain": domain, "mode": mode, "n": len(recs),
                       "n_subtasks": len({(r["domain"], r["subtask"]) for r in recs}),
                       **{kind: weighted_accuracy(scores, aggregate_weights(recs, kind))
                          for kind in ("macro", "weighted")}}
                if all(r.get("group") for r in recs):
                    row["cvbench"] = weighted_accuracy(scores, aggregate_weights(recs, "cvbench"))
                out.append(row)
        return out

    def to_items(self) -> list[dict]:
        """Paired per-item scores ``{domain, subtask, id, S, L}`` (S: direct, L: cot) for the boundary code
        (auto-think records are not part of it)."""
        items: dict[tuple, dict] = {}
        for r in (r for r in self.records if r["mode"] in ("direct", "cot")):
            key = (r["domain"], r["subtask"], r["id"])
            item = items.setdefault(key, {"domain": r["domain"], "subtask": r["subtask"], "id": r["id"],
                                          **{k: r[k] for k in ("variant", "group") if r.get(k)}})
            item[{"direct": "S", "cot": "L"}[r["mode"]]] = float(r["score"])
        unpaired = [k[2] for k, it in items.items() if "S" not in it or "L" not in it]
        if unpaired:
            raise ValueError(f"to_items needs both modes for every item; unpaired ids: {unpaired[:5]}")
        return list(items.values())

    def mean_cot_length(self, mode: str = "cot") -> list[dict]:
        """``[{domain, subtask, n, mean_tokens}]``: mean generated tokens per subtask (skipped prompts excluded)."""
        out = []
        for (d, s, m), rs in self._groups().items():
            if m != mode:
                continue
            generated = [r["n_tokens"] for r in rs if not r.get("skipped")]
            out.append({"domain": d, "subtask": s, "n": len(generated), "mean_tokens": _mean(generated)})
        return out

    def summary(self) -> dict:
        """JSON-ready summary: per_subtask, aggregates, mean CoT length, skipped counts and wall time."""
        return {
            "per_subtask": self.per_subtask(),
            "aggregates": self.aggregates(),
            "mean_cot_length": self.mean_cot_length(),
            "skipped": self.skipped,
            "n_records": len(self.records),
            "wall_time_s": dict(self.wall_time_s),
            "cached": self.cached,
            "math_checks": dict(self.math_checks),
            "input_skipped": dict(Counter(r["reason"] for r in self.input_skips)),
            **({"think_rate": think_rates(self.records)} if AUTO in self.modes else {}),
        }


def _fits(processor, sample: dict, mode: str, templates, max_prompt_length: int | None) -> bool:
    """True unless the encoded prompt (image tokens included) is longer than ``max_prompt_length``."""
    if max_prompt_length is None:
        return True
    try:
        encode_generation_batch(processor, [sample], mode, templates, max_length=max_prompt_length)
    except OverlongError:
        return False
    return True


def _record(sample: dict, mode: str, output: str, n_tokens: int, truncated: bool, skipped: bool,
            numeric_metric: dict) -> dict:
    """One scored record; a skipped prompt scores 0 without calling the extractor."""
    if skipped:
        extracted, score = None, 0.0
    else:
        extracted, score = score_output(output, sample, numeric_metric.get(sample["domain"], "exact"))
    return {
        "id": sample["id"], "domain": sample["domain"], "subtask": sample["subtask"], "mode": mode,
        "question": sample.get("question"), "options": list(sample.get("options") or []),
        "answer_type": sample["answer_type"], "output": output, "extracted": extracted, "answer": sample["answer"],
        "score": float(score), "truncated": bool(truncated), "n_tokens": int(n_tokens), "skipped": bool(skipped),
        "status": "skipped: prompt longer than max_prompt_length" if skipped else "evaluated",
        **item_grouping(sample),  # variant / group: how official aggregates average (dualtune.aggregates)
    }


def evaluate_model(model, processor, samples: list[dict], modes=MODES, max_new_tokens: dict | None = None,
                   batch_size: int = 16, templates=None, numeric_metric: dict | None = None, out_dir=None,
                   progress: bool = True, max_prompt_length: int | None = None, generator=None) -> EvalResult:
    """Greedy-decode every sample in every mode (left-padded batches) and score with the shared extractor.

    ``numeric_metric`` maps a domain to "exact" (default) or "mra". Prompts longer than ``max_prompt_length``
    tokens are skipped (scored 0, counted). With ``out_dir`` the result is also written by `write_eval`.
    ``generator`` (a `dualtune.generation` backend, e.g. vLLM; ``model`` may then be None) gets every prompt of
    a mode in one call; by default ``model`` generates through `HFGenerator`, ``batch_size`` prompts at a time.
    """
    from tqdm.auto import tqdm

    from dualtune.generation.hf import HFGenerator
    from dualtune.prompting.mathcheck import math_checks_since, math_verify_stats

    stats_before = math_verify_stats()
    budgets = {**DEFAULT_MAX_NEW_TOKENS, **dict(max_new_tokens or {})}
    numeric_metric = dict(numeric_metric or {})
    records, wall = [], {}
    step = batch_size if generator is None else max(1, len(samples))
    generator = generator or HFGenerator(model, processor, templates, micro_batch_size=batch_size)
    was_training = model is not None and model.training
    if model is not None:
        model.eval()
    try:
        for mode in modes:
            check_mode(mode)
            start, budget = time.perf_counter(), int(budgets[budget_mode(mode)])  # auto: the CoT budget
            # Over-long prompts are set aside first so a batch never fails on one bad sample.
            fits = [_fits(processor, s, mode, templates, max_prompt_length) for s in samples]
            kept = [i for i, ok in enumerate(fits) if ok]
            outputs: dict[int, dict] = {}
            bar = tqdm(total=len(kept), desc=f"eval {mode}", disable=not progress, leave=False)
            for lo in range(0, len(kept), step):
                chunk = kept[lo: lo + step]
                outs = generator.generate([samples[i] for i in chunk], mode, n=1, max_new_tokens=budget,
                                          temperature=1.0, top_p=1.0, do_sample=False)
                outputs.update(zip(chunk, outs))
                bar.update(len(chunk))
            bar.close()
            for i, sample in enumerate(samples):
                out = outputs.get(i)
                records.append(_record(
                    sample, mode, out["completion_text"] if out else "", len(out["completion_ids"]) if out else 0,
                    bool(out and out["truncated"]), out is None, numeric_metric))
            wall[mode] = time.perf_counter() - start
            n_skip = len(samples) - len(kept)
            if n_skip:
                log.warning("eval %s: skipped %d/%d over-long prompts (max_prompt_length=%s), scored 0",
                            mode, n_skip, len(samples), max_prompt_length)
            log.info("eval %s: %d samples in %.1fs", mode, len(samples), wall[mode])
    finally:
        if model is not None:
            model.train(was_training)
    result = EvalResult(records=records, wall_time_s=wall, math_checks=math_checks_since(stats_before))
    if out_dir is not None:
        write_eval(result, out_dir)
    return result


def records_to_jsonl(records: list[dict]) -> str:
    """One JSON object per line (trailing newline included)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def read_records(path) -> list[dict]:
    """Records from a predictions JSONL file (blank lines ignored)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def eval_table(result: EvalResult) -> str:
    """Markdown: one row per subtask and per aggregate, one accuracy column per mode (with auto: its think
    rate too, pooled per domain on the weighted row), plus skips."""
    modes = result.modes
    acc = {(r["domain"], r["subtask"], r["mode"]): r for r in result.per_subtask()}
    rates = {(r["domain"], r["subtask"]): f"{r['think_rate']:.2f}" for r in think_rates(result.records)}
    auto = AUTO in modes
    header = ["domain", "subtask", "n", *[f"{m} acc %" for m in modes], *(["auto think %"] if auto else [])]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for d, s in sorted({k[:2] for k in acc}):
        n = max(acc[(d, s, m)]["n"] for m in modes if (d, s, m) in acc)
        cells = [f"{acc[(d, s, m)]['accuracy']:.2f}" if (d, s, m) in acc else "-" for m in modes]
        cells += [rates.get((d, s), "-")] if auto else []
        lines.append(f"| {d} | {s} | {n} | " + " | ".join(cells) + " |")
    agg = {(r["domain"], r["mode"]): r for r in result.aggregates()}
    for d in dict.fromkeys(k[0] for k in agg):
        for kind in ("macro", "weighted"):
            n = max(agg[(d, m)]["n"] for m in modes if (d, m) in agg)
            cells = [f"{agg[(d, m)][kind]:.2f}" if (d, m) in agg else "-" for m in modes]
            cells += [rates.get((d, "ALL"), "-") if kind == "weighted" else "-"] if auto else []
            lines.append(f"| **{d}** | *{kind}* | {n} | " + " | ".join(cells) + " |")
    skips = ", ".join(f"{m}: {k}" for m, k in result.skipped.items())
    lines += ["", f"Skipped over-long prompts (scored 0): {skips or 'none'}"]
    return "\n".join(lines) + "\n"


def write_eval(result: EvalResult, out_dir, prefix: str = "") -> dict[str, Path]:
    """Write ``{prefix}predictions.jsonl`` (every evaluated record with question, options, gold answer and
    answer type, then one line per input row that was skipped, with its reason), ``{prefix}eval_summary.json``
    and ``{prefix}eval_table.md``."""
    out_dir = Path(out_dir)
    paths = {
        "predictions": out_dir / f"{prefix}predictions.jsonl",
        "summary": out_dir / f"{prefix}eval_summary.json",
        "table": out_dir / f"{prefix}eval_table.md",
    }
    skips = [{"id": r["id"], "status": f"skipped input: {r['reason']}", "score": None} for r in result.input_skips]
    atomic_write_text(paths["predictions"], records_to_jsonl(result.records + skips))
    atomic_write_text(paths["summary"], json.dumps(result.summary(), indent=2) + "\n")
    atomic_write_text(paths["table"], eval_table(result))
    return paths
