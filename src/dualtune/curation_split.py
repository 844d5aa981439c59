"""Split the training data into parts by a Dual Tuning report: the data-refinement validation (Figs. 5-7, digest §8).

A *task* is a subtask row ``(domain, subtask)`` of a Thinking-Boundary report (``thinking_boundary.json``).
Its **predicted gain** for a split (:func:`predicted_gain`) and its **part** (:func:`task_part`):

* ``gain_da`` (Fig. 5, retrained DA-only): Gain_DA; part ``negative`` when Gain_DA < 0, else ``positive``;
* ``gain_cot`` (Fig. 6, retrained CoT-only): Gain_CoT; same sign rule;
* ``q3`` (Fig. 7, retrained with Dual Tuning): max(Gain_DA, Gain_CoT); part ``q3`` when both gains < 0
  (strict, the digest's Q3 rule, so ``max < 0``), else ``rest`` (the three other regions and the ties).

Zero is never negative (the negative sides are strict, as Q3 is), so a 0 gain lands on the positive / rest side;
its predicted *sign* is 0, and the study does not count it for agreement. The digest reads the figures' split as
"two halves by Gain_DA" whose left side is the negative tasks: the sign split (``rule=sign``, default).
``rule=median`` instead cuts the tasks sorted by predicted gain into halves (the upper ``ceil(n/2)`` are
``positive``; gain splits only).

Training samples reach a task through their tags (:func:`tag_rows`), first from the data, then a tagger:

1. the row's own ``(domain, subtask)`` is a report task (the lab; any run evaluated on its training domain);
2. else its ``subtask`` or one of its ``meta`` fields ``subject`` / ``subtask`` / ``task`` / ``category``
   equals exactly one task's subtask name, normalized (lowercase; ``_``, ``-`` and spaces alike), e.g. a
   OneThinker row with ``subject: "Basic Medical Science"`` -> MMMU ``Basic_Medical_Science``;
3. else the configured tagger ``tagger(row, tasks) -> [candidate tasks]``: ``keyword`` (default,
   :func:`keyword_tagger`), ``none``, or any ``"package.module:function"`` (e.g. an LLM tagger).

One candidate tags the row; none is a counted skip ``untagged``, several ``ambiguous_tag``.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

from dualtune.schema import sample_meta

log = logging.getLogger(__name__)

SPLITS = {"gain_da": ("positive", "negative"), "gain_cot": ("positive", "negative"), "q3": ("q3", "rest")}
MATCHING_MODE = {"gain_da": "direct", "gain_cot": "cot", "q3": "dual"}  # the retraining mode of each figure
PARTS = ("positive", "negative", "q3", "rest")
RULES = ("sign", "median")
META_TAG_FIELDS = ("subject", "subtask", "task", "category")
REASONS = {
    "kept_refine_part": "its task is in the selected part of the refinement split",
    "dropped_refine_other_part": "its task is in the other part of the refinement split",
    "dropped_refine_untagged": "no report task matched the sample (data tags and tagger)",
    "dropped_refine_ambiguous": "several report tasks matched the sample",
}


def predicted_gain(row: dict, split: str) -> float:
    """The report's gain that predicts the retraining outcome of ``split`` for one subtask row."""
    if split == "gain_da":
        return float(row["Gain_DA"])
    if split == "gain_cot":
        return float(row["Gain_CoT"])
    if split == "q3":
        return max(float(row["Gain_DA"]), float(row["Gain_CoT"]))
    raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")


def sign(x: float) -> int:
    """+1, -1 or 0."""
    return (x > 0) - (x < 0)


def task_part(row: dict, split: str) -> str:
    """The part of one report subtask row under the sign rule (module docstring)."""
    negative = predicted_gain(row, split) < 0
    return SPLITS[split][1 if negative else 0] if split != "q3" else ("q3" if negative else "rest")


def split_tasks(subtask_rows: list[dict], split: str, rule: str = "sign") -> dict[tuple[str, str], str]:
    """``{(domain, subtask): part}`` for every report subtask row."""
    if rule not in RULES:
        raise ValueError(f"unknown split rule {rule!r}; expected one of {RULES}")
    keys = [(str(r["domain"]), str(r["subtask"])) for r in subtask_rows]
    if rule == "sign":
        return {k: task_part(r, split) for k, r in zip(keys, subtask_rows)}
    if split == "q3":
        raise ValueError("rule=median splits by one gain: use it with split=gain_da or gain_cot")
    # Halves by rank: descending gain, ties broken by name; the upper ceil(n/2) tasks are "positive".
    order = sorted(range(len(keys)), key=lambda i: (-predicted_gain(subtask_rows[i], split), keys[i]))
    upper = set(order[: math.ceil(len(order) / 2)])
    return {keys[i]: ("positive" if i in upper else "negative") for i in range(len(keys))}


def read_report(path, domains=None) -> list[dict]:
    """The subtask rows of a Thinking-Boundary report (a run dir or its ``thinking_boundary.json``), only those
    of ``domains`` when given. Raises FileNotFoundError / ValueError naming the path."""
    file = Path(path)
    if file.is_dir():
        file = file / "thinking_boundary.json"
    if not file.is_file():
        raise FileNotFoundError(f"no Thinking-Boundary report at {file}: run the Dual Tuning job (train.py) first")
    rows = json.loads(file.read_text()).get("subtasks") or []
    if domains:
        rows = [r for r in rows if str(r["domain"]) in {str(d) for d in domains}]
    if not rows:
        raise ValueError(f"{file}: no subtask rows" + (f" in domains {list(domains)}" if domains else ""))
    return rows


def normalize(name) -> str:
    """A tag or subtask name compared loosely: lowercase, runs of non-alphanumerics as one space."""
    return re.sub(r"[^0-9a-z]+", " ", str(name).lower()).strip()


def keyword_tagger(row: dict, tasks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Tasks whose normalized subtask name occurs as whole words in the row's question; a name contained in a
    longer matched name is dropped ("art" inside "art theory")."""
    text = f" {normalize(row.get('question') or '')} "
    found = [t for t in tasks if normalize(t[1]) and f" {normalize(t[1])} " in text]
    names = {normalize(t[1]) for t in found}
    return [t for t in found if not any(n != normalize(t[1]) and f" {normalize(t[1])} " in f" {n} " for n in names)]


def no_tagger(row: dict, tasks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The tagger that tags nothing (only the data's own tags count)."""
    return []


TAGGERS = {"keyword": keyword_tagger, "none": no_tagger}


def resolve_tagger(name: str):
    """A tagger by registry name (:data:`TAGGERS`) or ``"package.module:function"``."""
    if name in TAGGERS:
        return TAGGERS[name]
    if ":" not in str(name):
        raise ValueError(f"unknown tagger {name!r}; expected one of {sorted(TAGGERS)} or 'package.module:function'")
    module, func = str(name).split(":", 1)
    return getattr(importlib.import_module(module), func)


def data_tags(row: dict, tasks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Tasks named by the row's own tags (rules 1-2 of the module docstring)."""
    key = (str(row.get("domain")), str(row.get("subtask")))
    if key in tasks:
        return [key]
    try:
        meta = sample_meta(row)
    except ValueError:
        meta = {}
    for value in (row.get("subtask"), *(meta.get(f) for f in META_TAG_FIELDS)):
        if value is None or not normalize(value):
            continue
        hits = [t for t in tasks if normalize(t[1]) == normalize(value)]
        if hits:
            return hits
    return []


def tag_rows(rows: list[dict], tasks: list[tuple[str, str]], tagger="keyword") -> tuple[list, list[str]]:
    """Per row its task (or None) and how it was tagged: ``data``, ``tagger``, ``untagged`` or ``ambiguous_tag``."""
    func = resolve_tagger(tagger) if isinstance(tagger, str) else tagger
    tags, how = [], []
    for row in rows:
        hits, source = data_tags(row, tasks), "data"
        if not hits:
            hits, source = list(dict.fromkeys(tuple(t) for t in func(row, tasks))), "tagger"
        tags.append(hits[0] if len(hits) == 1 else None)
        how.append(source if len(hits) == 1 else ("untagged" if not hits else "ambiguous_tag"))
    return tags, how


def refine_problems(sel) -> list[str]:
    """Config problems of a ``selection=refine`` node (a dict): a report that is set must exist, the part must
    belong to the split (`dualtune.config_checks` reports them before any data is loaded). A null report (the
    shipped default) is left to :func:`select_part`, which fails naming the key."""
    if not isinstance(sel, dict):
        return []
    problems, report, split, part = [], sel.get("report"), sel.get("split"), sel.get("part")
    if report and not (Path(report).is_file() or (Path(report) / "thinking_boundary.json").is_file()):
        problems.append(f"selection.report={report!r}: no thinking_boundary.json there (run the Dual Tuning job first)")
    if split in SPLITS and part not in SPLITS[split]:
        problems.append(f"selection.part={part!r}: split {split} has parts {SPLITS[split]}")
    return problems


def select_part(sel, rows: list[dict]):
    """``selection=refine``: keep the rows whose task is in ``sel.part`` of ``sel.split`` over the report
    ``sel.report``. Returns ``(kept, reasons, info)`` as every selector (`dualtune.scoring.selectors`)."""
    get = sel.get  # a dict or a DictConfig
    split, part, rule = get("split"), get("part"), get("rule") or "sign"
    if not get("report"):
        raise ValueError("selection=refine needs selection.report=<Dual Tuning run dir> (its thinking_boundary.json); "
                         "sweeps: refine.report=<run dir>")
    if split not in SPLITS or part not in SPLITS[split]:
        raise ValueError(f"selection.split={split!r} / part={part!r}: expected split in {sorted(SPLITS)} "
                         f"with part in {SPLITS.get(split, SPLITS)}")
    domains = get("report_domains")
    parts = split_tasks(read_report(get("report"), list(domains) if domains else None), split, rule)
    tags, how = tag_rows(rows, list(parts), get("tagger") or "keyword")
    reasons = [{"untagged": "dropped_refine_untagged", "ambiguous_tag": "dropped_refine_ambiguous"}[h] if t is None
               else ("kept_refine_part" if parts[t] == part else "dropped_refine_other_part")
               for t, h in zip(tags, how)]
    in_part = sorted(f"{d}/{s}" for (d, s), p in parts.items() if p == part)
    if not in_part:
        raise ValueError(f"selection=refine: part {part!r} of split {split!r} holds no task of {get('report')} "
                         f"(parts: {dict(Counter(parts.values()))}); there is nothing to train on")
    tagged = dict(sorted(Counter(how).items()))
    if tagged.get("untagged") or tagged.get("ambiguous_tag"):
        log.warning("selection=refine: %d untagged and %d ambiguous training samples skipped (tags: %s)",
                    tagged.get("untagged", 0), tagged.get("ambiguous_tag", 0), tagged)
    info = {"report": str(get("report")), "split": split, "part": part, "rule": rule,
            "matching_mode": MATCHING_MODE[split], "tasks_in_part": in_part,
            "parts": {f"{d}/{s}": p for (d, s), p in sorted(parts.items())}, "tagged": tagged,
            "columns": {"refine_task": ["" if t is None else f"{t[0]}/{t[1]}" for t in tags]}}
    return np.array([r == "kept_refine_part" for r in reasons], dtype=bool), reasons, info
