"""Per-sample result files of lmms-eval and VLMEvalKit -> Thinking-Boundary items.

A user who evaluates with one of these kits runs it four times (base / tuned model x direct-answer / CoT
prompt) and hands the four per-sample files to ``python -m dualtune.boundary --kit ...``; :func:`kit_items`
turns them into the per-item rows ``{domain, subtask, id, B_S, B_L, DT_S, DT_L}`` of
`dualtune.boundary.boundary_report` (paired bootstrap CIs included) without re-evaluating in dualtune.

**lmms-eval** (``--log_samples``): ``<output_path>/<model>/<date>_samples_<task>.jsonl``, one JSON object per
line with ``doc_id``, ``doc`` (the dataset row, images removed), ``target``, ``arguments``, ``resps``,
``filtered_resps`` (+ hashes) and one key per metric the task's ``process_results`` returned, e.g.
``exact_match: 1.0`` or MMMU's ``mmmu_acc: {id, subdomain, question_type, answer, parsed_pred}``. Older
releases wrote ``<task>.json`` = ``{"args", ..., "logs": [samples]}``; both are read. ``metric``: the metric
key (auto: the only top-level key, other than the fields above, whose first-row value scores).
``subtask_field``: a key of the metric dict, of ``doc`` or of the sample (e.g. ``subdomain``, ``category``);
default: one subtask named after the task (from the file name). ``id_field``: default ``doc_id``.

**VLMEvalKit**: the judged per-sample table a dataset's ``evaluate`` dumps next to the predictions, e.g.
``<model>_<dataset>_<judge>_result.xlsx`` for MCQ (index, question, A, B, ..., answer, category,
[l2-category], prediction, hit) or a Y/N table with ``score``; xlsx, csv, tsv, json or jsonl. ``metric``
(``--score-column``): auto = the first of :data:`SCORE_COLUMNS` present. ``subtask_field``: default
``category`` when the column exists, else one subtask named after the domain. ``id_field``: default ``index``.

**Per-item score** (0..1) of a metric value or table cell: `dualtune.evaluation.kit_scores.value_score`
(bools, numbers in [0, 1], ``true``/``false`` text, lists -> mean, dicts with a correctness field, MMMU-style
``parsed_pred`` + ``answer`` dicts); anything else is an error naming the file, the item and the value.

**Pairing**: ids present in all four files become items; ids missing from some file are counted per file
and logged (an error when nothing pairs); a duplicate id within one file is an error naming it. Domain
(default: the base direct-answer file's task / file name) and subtasks come from the base direct-answer file.
"""
from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dualtune.evaluation.kit_scores import value_score

log = logging.getLogger(__name__)

RUN_KEYS = ("B_S", "B_L", "DT_S", "DT_L")
RUN_LABELS = {"B_S": "base-direct", "B_L": "base-cot", "DT_S": "tuned-direct", "DT_L": "tuned-cot"}
SCORE_COLUMNS = ("hit", "score", "correct")
# Top-level keys of an lmms-eval / lm-eval sample that are not metrics.
LMMS_SAMPLE_KEYS = frozenset({"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "doc_hash",
                              "prompt_hash", "target_hash", "token_counts", "success", "task", "split",
                              "input_text", "image_paths", "input", "filter", "metrics"})


@dataclass
class KitRun:
    """One per-sample file: its name (task / dataset), the metric read, and per-id score and subtask."""
    path: Path
    name: str
    metric: str
    scores: dict[str, float] = field(default_factory=dict)
    subtasks: dict[str, str | None] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)

    def add(self, item_id, score: float, subtask) -> None:
        """Record one item (a repeated id is kept aside for :meth:`check`)."""
        key = _norm_id(item_id, f"{self.path}")
        if key in self.scores:
            self.duplicates.append(key)
            return
        self.scores[key] = score
        self.subtasks[key] = None if subtask is None else str(subtask)

    def check(self) -> KitRun:
        """Self, or a ValueError naming the ids that occur more than once in the file."""
        if self.duplicates:
            dups = sorted(set(self.duplicates))
            raise ValueError(f"{self.path}: {len(dups)} duplicate id(s) {dups[:20]} (ids must be unique within a "
                             f"file; several filters or repeats in one file?)")
        return self


def _norm_id(value, where: str) -> str:
    """Id as a string; integral floats (pandas) lose their ``.0`` so ``3`` and ``3.0`` pair."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"{where}: an item has no id")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _scores(value) -> bool:
    try:
        value_score(value)
    except (ValueError, KeyError, TypeError):
        return False
    return True


def _lmms_samples(path: Path) -> list[dict]:
    """Samples of a ``*_samples_<task>.jsonl`` file or of an older ``<task>.json`` with ``logs``."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        samples = data.get("logs") if isinstance(data, dict) else data
        if not isinstance(samples, list):
            raise ValueError(f"{path}: expected a list of samples or a dict with 'logs'")
        return samples
    samples = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                samples.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not JSON ({err.msg})") from None
    return samples


def lmms_task_name(path) -> str:
    """Task name of an lmms-eval samples file: ``<date>_samples_<task>.jsonl`` or ``<task>.json``."""
    stem = Path(path).stem
    return stem.split("_samples_", 1)[1] if "_samples_" in stem else stem


def _lookup(sample: dict, metric_value, name: str, what: str, path: Path):
    """``name`` from the metric dict, then ``doc``, then the sample's top level; error naming the keys."""
    doc = sample.get("doc") if isinstance(sample.get("doc"), dict) else {}
    for source in (metric_value if isinstance(metric_value, dict) else {}, doc, sample):
        if name in source:
            return source[name]
    raise ValueError(f"{path}: sample {sample.get('doc_id')!r} has no {what} field {name!r} (not in the metric "
                     f"dict, doc {sorted(doc)} or sample {sorted(sample)})")


def read_lmms_eval(path, metric: str | None = None, subtask_field: str | None = None,
                   id_field: str | None = None) -> KitRun:
    """One lmms-eval ``--log_samples`` file as a :class:`KitRun` (module docstring for the options)."""
    path = Path(path)
    samples = _lmms_samples(path)
    if not samples:
        raise ValueError(f"{path}: no samples")
    bad = next((i for i, s in enumerate(samples) if not isinstance(s, dict)), None)
    if bad is not None:
        raise ValueError(f"{path}: sample {bad} is not a JSON object")
    found = [k for k in samples[0] if k not in LMMS_SAMPLE_KEYS]
    if metric is None:
        candidates = [k for k in found if _scores(samples[0][k])]
        if len(candidates) != 1:
            raise ValueError(f"{path}: cannot pick the metric automatically ({len(candidates)} scoring keys: "
                             f"{candidates}; metric keys found: {found}); pass --metric")
        metric = candidates[0]
    task = lmms_task_name(path)
    run = KitRun(path, task, metric)
    for sample in samples:
        where = f"{path}: sample {sample.get('doc_id')!r}"
        if metric not in sample:
            raise ValueError(f"{where} has no metric {metric!r}; metric keys found: "
                             f"{[k for k in sample if k not in LMMS_SAMPLE_KEYS]}")
        value = sample[metric]
        try:
            score = value_score(value)
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{where}, metric {metric!r}: {err}") from None
        item_id = _lookup(sample, value, id_field or "doc_id", "id", path)
        subtask = _lookup(sample, value, subtask_field, "subtask", path) if subtask_field else task
        run.add(item_id, score, subtask)
    return run.check()


def _read_table(path: Path) -> pd.DataFrame:
    """A VLMEvalKit result table by suffix (xlsx needs openpyxl)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xls"):
        try:
            return pd.read_excel(path)
        except ImportError as err:
            raise ValueError(f"{path}: reading xlsx needs openpyxl ({err}); pip install openpyxl") from None
    readers = {".csv": lambda p: pd.read_csv(p), ".tsv": lambda p: pd.read_csv(p, sep="\t"),
               ".jsonl": lambda p: pd.read_json(p, lines=True), ".json": lambda p: pd.read_json(p)}
    if suffix not in readers:
        raise ValueError(f"{path}: unsupported suffix {suffix!r}; expected .xlsx, .csv, .tsv, .json or .jsonl")
    return readers[suffix](path)


def read_vlmevalkit(path, metric: str | None = None, subtask_field: str | None = None,
                    id_field: str | None = None) -> KitRun:
    """One VLMEvalKit per-sample result table as a :class:`KitRun` (module docstring for the options)."""
    path = Path(path)
    df = _read_table(path)
    columns = [str(c) for c in df.columns]
    column = metric or next((c for c in SCORE_COLUMNS if c in columns), None)
    if column not in columns:
        raise ValueError(f"{path}: no score column {repr(metric) if metric else ' / '.join(SCORE_COLUMNS)}; columns found: {columns} (pass the "
                         f"judged result file, e.g. *_result.xlsx, or --score-column)")
    id_col = id_field or "index"
    for what, col in (("id", id_col), ("subtask", subtask_field)):
        if col is not None and col not in columns:
            raise ValueError(f"{path}: no {what} column {col!r}; columns found: {columns}")
    sub_col = subtask_field or ("category" if "category" in columns else None)
    name = re.sub(r"_result$", "", path.stem)
    run = KitRun(path, name, column)
    for row in df.to_dict("records"):
        where = f"{path}: row {id_col}={row[id_col]!r}"
        value = row[column]
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{where} has no value in score column {column!r}")
        try:
            score = value_score(value.item() if hasattr(value, "item") else value)
        except ValueError as err:
            raise ValueError(f"{where}, column {column!r}: {err}") from None
        subtask = None if sub_col is None else row[sub_col]
        if sub_col is not None and (subtask is None or (isinstance(subtask, float) and math.isnan(subtask))):
            raise ValueError(f"{where} has no value in subtask column {sub_col!r}")
        run.add(row[id_col], score, subtask)
    return run.check()


READERS = {"lmms-eval": read_lmms_eval, "vlmevalkit": read_vlmevalkit}


def kit_items(kit: str, paths: dict, metric: str | None = None, subtask_field: str | None = None,
              id_field: str | None = None, domain: str | None = None) -> tuple[list[dict], dict]:
    """Boundary items from four per-sample files ``paths`` (keys B_S, B_L, DT_S, DT_L) of ``kit``, and a
    summary ``{kit, files, metrics, paired, unpaired}`` (``unpaired``: per file, the ids of the other files
    it lacks)."""
    if kit not in READERS:
        raise ValueError(f"unknown kit {kit!r}; expected one of {sorted(READERS)}")
    missing = [RUN_LABELS[k] for k in RUN_KEYS if not paths.get(k)]
    if missing:
        raise ValueError(f"--kit needs the four per-sample files; missing: {', '.join('--' + m for m in missing)}")
    runs = {k: READERS[kit](paths[k], metric, subtask_field, id_field) for k in RUN_KEYS}
    ref = runs["B_S"]
    every = set().union(*(r.scores for r in runs.values()))
    unpaired = {RUN_LABELS[k]: len(every - set(r.scores)) for k, r in runs.items()}
    common = [i for i in ref.scores if all(i in r.scores for r in runs.values())]
    if not common:
        examples = {RUN_LABELS[k]: list(r.scores)[:3] for k, r in runs.items()}
        raise ValueError(f"no item id is in all four files (first ids per file: {examples}); check --id-field")
    if any(unpaired.values()):
        log.warning("%d ids are not in all four files and are left out (ids missing per file: %s); %d paired",
                    len(every) - len(common), unpaired, len(common))
    name = domain or ref.name
    items = [{"domain": name, "subtask": ref.subtasks[i] or name, "id": i, **{k: runs[k].scores[i] for k in RUN_KEYS}}
             for i in common]
    summary = {"kit": kit, "files": {RUN_LABELS[k]: str(r.path) for k, r in runs.items()},
               "metrics": {RUN_LABELS[k]: r.metric for k, r in runs.items()}, "paired": len(common),
               "unpaired": unpaired}
    return items, summary
