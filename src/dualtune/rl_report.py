"""RL after Dual Tuning (Dual Tuning paper §6, Tables 6-7): does RL from a Dual-Tuned checkpoint change
the Thinking-Boundary verdict?

Inputs are two Thinking-Boundary reports (`dualtune.boundary.boundary_report`):

* the **RL run's** (``train.py algo=grpo init_from=<dual-tuning run dir>/model``): its base columns are
  the ORIGINAL base model (``B_S``, ``B_L``) and its tuned columns are the RL model (``DT^RL_S``, ``DT^RL_L``);
* the **dual-tuning run's** ``thinking_boundary.json`` (next to the ``init_from`` model dir), if it exists,
  for ``DT_S`` / ``DT_L`` before RL.

Metrics (digest §2.2), all with the original base's ``B_max = max(B_S, B_L)`` as denominator::

    Gain^RL_DA  = (DT^RL_S - B_max) / B_max * 100
    Gain^RL_CoT = (DT^RL_L - B_max) / B_max * 100
    GAP^RL_DT   = DT^RL_L - DT^RL_S

Outputs ``rl_boundary.{json,csv,md}``. Column names use ``RL`` in place of the superscript.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from dualtune.boundary import boundary_metrics, classify_region, round_floats

log = logging.getLogger(__name__)
REPORT_NAME = "rl_boundary"
BASE_MATCH_TOL = 0.011  # points; the dual-tuning report is read back rounded to 2 decimals
COLUMNS = ("domain", "subtask", "row_type", "n", "B_S", "B_L", "B_max", "DT_S", "DT_L", "Gain_DA", "Gain_CoT",
           "GAP_DT", "region_DT", "DT_RL_S", "DT_RL_L", "Gain_RL_DA", "Gain_RL_CoT", "GAP_RL_DT", "region_RL",
           "same_region", "uncertain_DT", "uncertain_RL", "base_mismatch")


_STORED = ("Gain_DA", "Gain_CoT", "GAP_DT", "region")


def rl_metrics(B_S: float, B_L: float, DT_RL_S: float, DT_RL_L: float) -> dict:
    """``B_max``, ``Gain_RL_DA``, ``Gain_RL_CoT`` (relative %) and ``GAP_RL_DT`` (points) of RL accuracies
    against the original base; gains are absolute points when ``B_max == 0`` (``gain_absolute``)."""
    m = boundary_metrics(B_S, B_L, DT_RL_S, DT_RL_L)
    return {"B_max": m["B_max"], "Gain_RL_DA": m["Gain_DA"], "Gain_RL_CoT": m["Gain_CoT"],
            "GAP_RL_DT": m["GAP_DT"], "gain_absolute": m["gain_absolute"]}


def rl_row(B_S: float, B_L: float, DT_RL_S: float, DT_RL_L: float, DT_S: float | None = None,
           DT_L: float | None = None, tol: float = 0.0) -> dict:
    """One table row: base, Dual Tuning (when ``DT_S``/``DT_L`` are given) and RL metrics, both regions
    (`classify_region`) and ``same_region`` (None without Dual Tuning numbers)."""
    rl = rl_metrics(B_S, B_L, DT_RL_S, DT_RL_L)
    row = {"B_S": B_S, "B_L": B_L, "B_max": rl["B_max"], "DT_S": DT_S, "DT_L": DT_L, "Gain_DA": None,
           "Gain_CoT": None, "GAP_DT": None, "region_DT": None, "DT_RL_S": DT_RL_S, "DT_RL_L": DT_RL_L,
           "Gain_RL_DA": rl["Gain_RL_DA"], "Gain_RL_CoT": rl["Gain_RL_CoT"], "GAP_RL_DT": rl["GAP_RL_DT"],
           "region_RL": classify_region(rl["Gain_RL_DA"], rl["Gain_RL_CoT"], rl["GAP_RL_DT"], tol),
           "same_region": None, "gain_absolute": rl["gain_absolute"]}
    if DT_S is not None and DT_L is not None:
        dt = boundary_metrics(B_S, B_L, DT_S, DT_L)
        row.update(Gain_DA=dt["Gain_DA"], Gain_CoT=dt["Gain_CoT"], GAP_DT=dt["GAP_DT"],
                   region_DT=classify_region(dt["Gain_DA"], dt["Gain_CoT"], dt["GAP_DT"], tol))
        row["same_region"] = row["region_DT"] == row["region_RL"]
    return row


def _report_rows(report: dict) -> list[tuple[str, dict]]:
    """(row_type, row) pairs of a boundary report: subtask rows then aggregates."""
    return [("subtask", r) for r in report.get("subtasks", [])] + \
        [("aggregate", r) for r in report.get("aggregates", [])]


def rl_table(rl_boundary: dict, dt_boundary: dict | None = None, tol: float = 0.0) -> list[dict]:
    """Rows joining the RL run's boundary report with the dual-tuning run's on (domain, subtask).

    Dual Tuning columns are None for tasks missing from ``dt_boundary`` (or without one). When both
    reports saw the same base accuracies, the dual-tuning report's own gains and region are kept;
    otherwise ``base_mismatch`` is set (different test items or base model) and the Dual Tuning metrics
    are recomputed from its accuracies against the RL run's ``B_max``."""
    before = {(r["domain"], r["subtask"]): r for _, r in _report_rows(dt_boundary or {})}
    rows = []
    for row_type, r in _report_rows(rl_boundary):
        prior = before.get((r["domain"], r["subtask"]))
        row = {"domain": r["domain"], "subtask": r["subtask"], "row_type": row_type, "n": r.get("n")}
        row.update(rl_row(r["B_S"], r["B_L"], r["DT_S"], r["DT_L"], prior and prior["DT_S"],
                          prior and prior["DT_L"], tol))
        row["base_mismatch"] = None if prior is None else bool(
            abs(prior["B_S"] - r["B_S"]) > BASE_MATCH_TOL or abs(prior["B_L"] - r["B_L"]) > BASE_MATCH_TOL)
        if prior is not None and not row["base_mismatch"] and all(k in prior for k in _STORED):
            # Same base: keep the dual-tuning report's own gains and region (computed before rounding).
            row.update(Gain_DA=prior["Gain_DA"], Gain_CoT=prior["Gain_CoT"], GAP_DT=prior["GAP_DT"],
                       region_DT=prior["region"], uncertain_DT=prior.get("uncertain"))
            row["same_region"] = row["region_DT"] == row["region_RL"]
        if "ci" in r:  # the RL run's paired-bootstrap CIs are the CIs of the RL metrics
            row["ci_RL"] = {"Gain_RL_DA": r["ci"]["Gain_DA"], "Gain_RL_CoT": r["ci"]["Gain_CoT"],
                            "GAP_RL_DT": r["ci"]["GAP_DT"]}
        row["uncertain_RL"] = r.get("uncertain")
        rows.append(row)
    return rows


def rl_summary(rows: list[dict]) -> dict:
    """How many subtasks keep their Dual Tuning region after RL (the paper's "RL does not alter the
    conclusions"), and which change."""
    compared = [r for r in rows if r["row_type"] == "subtask" and r["same_region"] is not None]
    changed = [f"{r['domain']}/{r['subtask']}: {r['region_DT']} -> {r['region_RL']}"
               for r in compared if not r["same_region"]]
    return {"n_subtasks": sum(r["row_type"] == "subtask" for r in rows), "n_compared": len(compared),
            "n_same_region": len(compared) - len(changed), "changed": changed,
            "base_mismatch": [f"{r['domain']}/{r['subtask']}" for r in rows if r.get("base_mismatch")]}


def dual_tuning_report_path(init_from) -> Path | None:
    """``thinking_boundary.json`` of the dual-tuning run that produced ``init_from`` (``<run>/model`` or
    the run dir itself); None when there is none."""
    if not init_from:
        return None
    start = Path(str(init_from))
    for candidate in (start.parent / "thinking_boundary.json", start / "thinking_boundary.json"):
        if candidate.is_file():
            return candidate
    return None


def _fmt(value, mark: str = "") -> str:
    """Markdown cell: 2 decimals for numbers, ``-`` for missing values."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return f"{value:.2f}{mark}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _markdown(rows: list[dict], summary: dict, source: str | None) -> str:
    """Tables 6-7 layout: base, Dual Tuning and RL columns per task, then the regions before/after RL."""
    head = ["domain", "subtask", "n", "B_max", "DT_S", "DT_L", "Gain_DA", "Gain_CoT", "GAP_DT", "DT^RL_S",
            "DT^RL_L", "Gain^RL_DA", "Gain^RL_CoT", "GAP^RL_DT", "region DT -> RL"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        mark = "†" if r["gain_absolute"] else ""
        region = (f"{r['region_DT'] or '-'}{'?' if r.get('uncertain_DT') else ''} -> "
                  f"{r['region_RL']}{'?' if r.get('uncertain_RL') else ''}")
        cells = [r["domain"], r["subtask"], r["n"], _fmt(r["B_max"]), _fmt(r["DT_S"]), _fmt(r["DT_L"]),
                 _fmt(r["Gain_DA"], mark), _fmt(r["Gain_CoT"], mark), _fmt(r["GAP_DT"]), _fmt(r["DT_RL_S"]),
                 _fmt(r["DT_RL_L"]), _fmt(r["Gain_RL_DA"], mark), _fmt(r["Gain_RL_CoT"], mark),
                 _fmt(r["GAP_RL_DT"]), region]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    notes = ["", "B_max = max(B_S, B_L) of the ORIGINAL base model; Gain^RL_* = (DT^RL_* - B_max) / B_max * 100;"
             " GAP^RL_DT = DT^RL_L - DT^RL_S.",
             f"Dual Tuning numbers from: {source or 'not available (no thinking_boundary.json next to init_from)'}.",
             "`?`: region uncertain (a deciding bootstrap CI reaches 0); `†`: B_max = 0, gains in absolute points.",
             f"Subtasks keeping their Dual Tuning region after RL: {summary['n_same_region']}/{summary['n_compared']}."]
    if summary["changed"]:
        notes.append("Changed: " + "; ".join(summary["changed"]))
    if summary["base_mismatch"]:
        notes.append("WARNING: base accuracies differ between the runs for " + ", ".join(summary["base_mismatch"]))
    return "# RL after Dual Tuning\n\n" + "\n".join(lines + notes) + "\n"


def write_rl_report(rows: list[dict], out_dir, source: str | None = None, config: dict | None = None) -> dict:
    """Write ``rl_boundary.{json,csv,md}`` (json/csv full precision; md rounded); returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{REPORT_NAME}.{ext}" for ext in ("json", "csv", "md")}
    summary = rl_summary(rows)
    payload = round_floats({"rows": rows, "summary": summary, "dual_tuning_report": source, "config": config or {}},
                           ndigits=None)
    paths["json"].write_text(json.dumps(payload, indent=2, default=str) + "\n")
    pd.DataFrame(payload["rows"]).reindex(columns=list(COLUMNS)).to_csv(paths["csv"], index=False)
    paths["md"].write_text(_markdown(payload["rows"], summary, source))
    return paths


def write_rl_report_for_run(cfg, boundary: dict | None, out_dir) -> dict | None:
    """Train-recipe hook: for an RL run started from a checkpoint (``init_from`` set, algo not plain SFT),
    write the RL-after-Dual-Tuning report next to the Thinking-Boundary report; otherwise do nothing."""
    if boundary is None or not cfg.get("init_from") or cfg.algo.name == "sft":
        return None
    source = dual_tuning_report_path(cfg.init_from)
    dt_boundary = json.loads(source.read_text()) if source else None
    if source is None:
        log.warning("no thinking_boundary.json next to init_from=%s: RL report without Dual Tuning columns",
                    cfg.init_from)
    rows = rl_table(boundary, dt_boundary, tol=float(cfg.eval.tol))
    paths = write_rl_report(rows, out_dir, str(source) if source else None,
                            OmegaConf.to_container(cfg, resolve=True))
    summary = rl_summary(rows)
    log.info("RL report %s: %d/%d subtasks keep their Dual Tuning region", paths["md"],
             summary["n_same_region"], summary["n_compared"])
    return {"rows": rows, "summary": summary, "paths": paths}
