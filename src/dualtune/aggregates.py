"""How a benchmark's ALL row (and a subtask made of variants) averages its items: ``domain.aggregate``.

Every kind is a *nested mean*: items are grouped by a path of keys, every group at a level weighs the
same inside its parent, and the items of a leaf group weigh the same. Kinds:

* ``weighted`` (default; the lab, and the Dual Tuning paper's CV-Bench ALL row): no grouping, i.e. the
  pooled, sample-weighted mean;
* ``macro``: the unweighted mean of the subtask accuracies (VSI-Bench's overall and the paper's
  VSI-Bench / MMMU rows); path ((domain, subtask), variant);
* ``cvbench``: the Cambrian / CV-Bench official number, path = the item's ``group`` (CV-Bench writes
  ``[type, source]``): ``((ADE20K + COCO) / 2 + Omni3D) / 2``, i.e. the mean of the 2D accuracy (itself
  the mean over its sources) and the 3D accuracy (dataset card; lmms-eval
  ``cv_bench/utils.py::cv_bench_default_aggregate_results``).

An item may carry a ``variant`` (from its sample's ``meta["variant"]``): a subtask whose official score is
the unweighted mean over variants (VSI-Bench ``object_rel_direction`` = mean of easy / medium / hard,
``vsibench/utils.py::vsibench_aggregate_results``) is then averaged over its variants, in its subtask row
and inside ``macro``. Items without variants are plain means, as before.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

AGGREGATES = ("weighted", "macro", "cvbench")
DEFAULT_AGGREGATE = "weighted"


def item_grouping(sample: dict) -> dict:
    """``{"variant", "group"}`` of a sample, from its ``meta`` (None when absent), for evaluation records."""
    from dualtune.schema import sample_meta  # lazy: the boundary CLI stays light (no datasets import)

    meta = sample_meta(sample)
    group = meta.get("group")
    return {"variant": meta.get("variant"), "group": list(group) if group else None}


def nested_weights(paths: list[tuple]) -> np.ndarray:
    """Per-item weights (summing to 1) whose weighted mean is the nested mean over ``paths`` (one key tuple
    per item, all of the same length): equal shares per group at every level, per item in a leaf group."""
    weights = np.zeros(len(paths))

    def split(indices: list[int], level: int, share: float) -> None:
        if not indices:
            return
        if level == len(paths[indices[0]]):
            weights[indices] = share / len(indices)
            return
        groups: dict = defaultdict(list)
        for i in indices:
            groups[paths[i][level]].append(i)
        for members in groups.values():
            split(members, level + 1, share / len(groups))

    split(list(range(len(paths))), 0, 1.0)
    return weights


def _uniform(weights: np.ndarray) -> bool:
    return bool(np.allclose(weights, weights[0]))


def subtask_weights(items: list[dict]) -> np.ndarray | None:
    """Weights of one subtask's items: the mean over their variants when they have several, else None
    (a plain mean)."""
    weights = nested_weights([(it.get("variant") or "",) for it in items])
    return None if _uniform(weights) else weights


def aggregate_weights(items: list[dict], kind: str) -> np.ndarray | None:
    """Weights of an ALL row over ``items`` under ``kind`` (module docstring); None = the plain pooled mean.
    ``cvbench`` needs every item's ``group``; the error names an item without one."""
    if kind not in AGGREGATES:
        raise ValueError(f"unknown aggregate {kind!r}; expected one of {AGGREGATES}")
    if kind == "weighted":
        return None
    if kind == "macro":  # a subtask is (domain, subtask): two domains' "count" rows are two subtasks
        paths = [((str(it.get("domain", "")), str(it["subtask"])), it.get("variant") or "") for it in items]
    else:
        missing = [it.get("id") for it in items if not it.get("group")]
        if missing:
            raise ValueError(f"aggregate=cvbench needs every item's group (meta.group, e.g. [type, source]); "
                             f"items without one: {missing[:5]}")
        depth = {len(it["group"]) for it in items}
        if len(depth) != 1:
            raise ValueError(f"aggregate=cvbench: items have groups of different depths {sorted(depth)}")
        paths = [tuple(str(g) for g in it["group"]) for it in items]
    weights = nested_weights(paths)
    return None if _uniform(weights) else weights


def weighted_accuracy(scores, weights) -> float:
    """Accuracy in percent of 0..1 ``scores``: the plain mean, or the ``weights``-weighted mean."""
    import math

    scores = [float(s) for s in scores]
    if weights is None:
        return math.fsum(scores) / len(scores) * 100.0
    weights = [float(w) for w in weights]
    return math.fsum(w * s for w, s in zip(weights, scores)) / math.fsum(weights) * 100.0
