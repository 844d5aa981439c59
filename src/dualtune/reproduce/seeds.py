"""Across seeds: mean ± sample std of a metric, and the Thinking Boundary of the items of every seed pooled.

``std`` is the sample standard deviation (ddof = 1), None for a single value. The pooled report re-runs
`dualtune.boundary.boundary_report` on the per-item scores of all seeds (item ids prefixed by the seed), so
its paired-bootstrap CI resamples the items of every seed; with equal test sets per seed its accuracies
equal the seeds' mean.
"""

from __future__ import annotations

import math
from collections import Counter


def mean_std(values) -> tuple[float | None, float | None, int]:
    """``(mean, sample std, n)`` of the non-None ``values``; ``(None, None, 0)`` for none, std None for one."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None, None, 0
    mean = math.fsum(xs) / len(xs)
    if len(xs) == 1:
        return mean, None, 1
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1)), len(xs)


def fmt(mean: float | None, std: float | None = None, digits: int = 2) -> str:
    """``"12.34 ± 1.20"`` (``"12.34"`` without a std, ``"—"`` without a value)."""
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def region_counts(regions) -> str:
    """``"cot 2, direct 1"``: how many seeds landed in each region (most frequent first)."""
    return ", ".join(f"{name} {k}" for name, k in Counter(regions).most_common())


def _items(run) -> list[dict] | None:
    """Per-item ``{domain, subtask, id, B_S, B_L, DT_S, DT_L}`` of a train run, ids prefixed by its seed
    (None without both prediction files)."""
    from dualtune.evaluation.runner import EvalResult, read_records
    from dualtune.boundary import pair_items

    paths = run.predictions("base"), run.predictions("tuned")
    if None in paths or paths[0] == paths[1]:
        return None
    base, tuned = (EvalResult.from_records([r for r in read_records(p) if "mode" in r]) for p in paths)
    return [dict(it, id=f"seed{run.seed}/{it['id']}") for it in pair_items(base, tuned)]


def pooled_report(runs) -> dict | None:
    """The boundary report over the items of all ``runs`` pooled (their own tol, n_boot, aggregate kinds and
    planted regions), or None when a run lacks its prediction files or its boundary report."""
    from dualtune.boundary import boundary_report

    items = []
    for run in runs:
        run_items = _items(run) if run.boundary else None
        if run_items is None:
            return None
        items += run_items
    first = runs[0]
    planted = {r["subtask"]: r.get("planted_region") for r in first.boundary["subtasks"]}
    return boundary_report(items, tol=float(first.get("eval.tol", 0.0)), n_boot=int(first.get("eval.n_boot", 1000)),
                           seed=first.seed, planted={k: v for k, v in planted.items() if v},
                           aggregate=first.boundary.get("aggregate_kinds") or "weighted")
