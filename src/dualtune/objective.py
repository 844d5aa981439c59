"""The objective a run returns to a Hydra sweeper (Optuna): one float read from the run's results by a path.

lightning-hydra-template's ``optimized_metric`` convention: ``train.py``'s main returns
``objective_value(cfg.objective, run_results(out))`` and ``hydra/sweeper=optuna_tpe`` maximizes it.

Path syntax (``cfg.objective``; dots separate the parts, names are matched exactly):

* ``boundary.<row>.<metric>``: a row of the Thinking-Boundary report (thinking_boundary.json). ``<row>`` is
  ``ALL`` (the overall aggregate: domain ``all`` when the report has several domains, else the one domain's
  ALL row), a domain name (that domain's ALL row) or a subtask name (must be unique across domains).
  ``<metric>`` is any numeric column: ``B_S B_L DT_S DT_L GAP_B GAP_DT Gain_DA Gain_CoT n``.
* ``boundary.<domain>.<subtask>.<metric>``: one subtask row (``<subtask>`` may be ``ALL``).
* ``boundary.regions.<region>``: how many subtasks fall in ``<region>`` (cot | direct | negative | tie).
* ``boundary.recovered``: how many subtasks land in their planted region (lab domains only).
* ``eval_tuned.<mode>.<kind>`` / ``eval_base.<mode>.<kind>``: an accuracy of the tuned / base model's
  evaluation (eval_summary.json) over all domains; ``<mode>`` is direct | cot; ``<kind>`` is ``accuracy``
  (= ``weighted``, sample-pooled) or ``macro`` (mean over subtasks).
* ``eval_tuned.<domain>.<mode>.<kind>``: the same for one domain.
"""

from __future__ import annotations

import json
from pathlib import Path

from dualtune.boundary import recovered_regions

SOURCES = ("boundary", "eval_tuned", "eval_base")


class ObjectiveError(ValueError):
    """The objective path does not name a number in this run's results."""


def run_results(out_dir) -> dict:
    """The results an objective path reads, from a finished run dir (missing files are absent keys)."""
    out = Path(out_dir)
    files = {"boundary": out / "thinking_boundary.json", "eval_tuned": out / "eval_tuned" / "eval_summary.json",
             "eval_base": out / "eval_base" / "eval_summary.json"}
    return {key: json.loads(path.read_text()) for key, path in files.items() if path.exists()}


def _number(value, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ObjectiveError(f"objective {path!r}: {value!r} is not a number")
    return float(value)


def _boundary_row(report: dict, parts: list[str], path: str) -> dict:
    aggregates, subtasks = report.get("aggregates", []), report.get("subtasks", [])
    if len(parts) == 2:
        domain, subtask = parts
        rows = [r for r in aggregates + subtasks if r["domain"] == domain and r["subtask"] == subtask]
    elif parts[0] == "ALL":
        overall = [r for r in aggregates if r["domain"] == "all"]
        rows = overall or (aggregates if len(aggregates) == 1 else [])
    else:
        rows = [r for r in aggregates if r["domain"] == parts[0]] or [r for r in subtasks if r["subtask"] == parts[0]]
    if len(rows) != 1:
        names = sorted({r["domain"] for r in aggregates} | {r["subtask"] for r in subtasks})
        why = "is ambiguous" if rows else "matches no row"
        raise ObjectiveError(f"objective {path!r}: {'.'.join(parts)!r} {why}; rows: ALL, {', '.join(names)}")
    return rows[0]


def _boundary(report: dict, parts: list[str], path: str) -> float:
    if parts == ["recovered"]:
        recovered = recovered_regions(report.get("subtasks", []))
        if recovered is None:
            raise ObjectiveError(f"objective {path!r}: the report has no planted regions (not a lab domain)")
        return float(recovered[0])
    if len(parts) == 2 and parts[0] == "regions":
        return float(sum(r["region"] == parts[1] for r in report.get("subtasks", [])))
    if len(parts) not in (2, 3):
        raise ObjectiveError(f"objective {path!r}: expected boundary.<row>.<metric> or "
                             "boundary.<domain>.<subtask>.<metric>")
    row = _boundary_row(report, parts[:-1], path)
    if parts[-1] not in row:
        raise ObjectiveError(f"objective {path!r}: no column {parts[-1]!r}; columns: {', '.join(row)}")
    return _number(row[parts[-1]], path)


def _eval(summary: dict, parts: list[str], path: str) -> float:
    if len(parts) == 2:
        parts = ["all", *parts]
    if len(parts) != 3:
        raise ObjectiveError(f"objective {path!r}: expected <eval>.[<domain>.]<mode>.<accuracy|macro|weighted>")
    domain, mode, kind = parts
    kind = "weighted" if kind == "accuracy" else kind
    rows = [r for r in summary.get("aggregates", []) if r["domain"] == domain and r["mode"] == mode]
    if not rows or kind not in rows[0]:
        have = sorted({f"{r['domain']}.{r['mode']}" for r in summary.get("aggregates", [])})
        raise ObjectiveError(f"objective {path!r}: no {domain}.{mode}.{kind}; evaluated: {', '.join(have)}")
    return _number(rows[0][kind], path)


def objective_value(path: str | None, results: dict) -> float | None:
    """The float at ``path`` (syntax: module docstring) in ``results`` (`run_results`); None when path is
    None. Raises `ObjectiveError` naming the path and what exists when it names nothing numeric."""
    if path is None:
        return None
    parts = str(path).split(".")
    source, rest = parts[0], parts[1:]
    if source not in SOURCES:
        raise ObjectiveError(f"objective {path!r}: must start with one of {', '.join(SOURCES)}")
    if source not in results:
        raise ObjectiveError(f"objective {path!r}: this run wrote no {source} results (eval.enabled=false?)")
    if source == "boundary":
        return _boundary(results[source], rest, path)
    return _eval(results[source], rest, path)
