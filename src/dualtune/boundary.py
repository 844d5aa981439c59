"""Thinking-Boundary metrics (Dual Tuning, arXiv 2603.04415 §2) as pure, hand-checkable functions.

All accuracies are in percent. ``B_S``/``B_L`` are the base model's scores under the direct-answer (S) and
CoT (L) prompts, ``DT_S``/``DT_L`` the dual-tuned model's. Both gains share the denominator
``B_max = max(B_S, B_L)``, so ``Gain_CoT > Gain_DA  <=>  GAP_DT > 0`` and the paper's Q1/Q2/Q3 regions reduce
to sign tests (see :func:`classify_region`). CLI: ``python -m dualtune.boundary IN.csv [-o OUT.csv] [--tol X]``
from per-task accuracies, or ``--kit lmms-eval|vlmevalkit --base-direct F --base-cot F --tuned-direct F
--tuned-cot F [--metric KEY] [--subtask-field F] [--report-dir DIR]`` from a kit's per-sample files (items
paired by id; paired bootstrap CIs, ``uncertain`` flag; `dualtune.evaluation.kits`; ``--help`` for the rest).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from dualtune.aggregates import DEFAULT_AGGREGATE, aggregate_weights, subtask_weights, weighted_accuracy
from dualtune.bootstrap import as_score_array as _as_score_array
from dualtune.bootstrap import paired_bootstrap  # noqa: F401 - re-exported (moved to dualtune.bootstrap)

REGIONS = ("cot", "direct", "negative", "tie")
ACC_KEYS = ("B_S", "B_L", "DT_S", "DT_L")
CI_KEYS = ("Gain_DA", "Gain_CoT", "GAP_DT")
ROW_KEYS = ("n", *ACC_KEYS, "GAP_B", "GAP_DT", "Gain_DA", "Gain_CoT", "region", "uncertain", "ci",
            "gain_absolute")
CLI_OUT_COLUMNS = ("task", *ACC_KEYS, "GAP_B", "GAP_DT", "Gain_DA", "Gain_CoT", "region")


def boundary_metrics(B_S: float, B_L: float, DT_S: float, DT_L: float) -> dict:
    """Gaps (absolute points) and gains (relative % vs ``B_max``); absolute points if ``B_max == 0``."""
    values = (B_S, B_L, DT_S, DT_L)
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"accuracies must be finite and >= 0, got {values}")
    b_max = max(B_S, B_L)
    gain_absolute = b_max == 0
    # Relative gain vs the best base inference mode; undefined at B_max = 0, so fall back to points.
    scale = 1.0 if gain_absolute else 100.0 / b_max
    return {
        "B_max": b_max,
        "GAP_B": B_L - B_S,
        "GAP_DT": DT_L - DT_S,
        "Gain_DA": (DT_S - b_max) * scale,
        "Gain_CoT": (DT_L - b_max) * scale,
        "gain_absolute": gain_absolute,
    }


def classify_region(gain_da: float, gain_cot: float, gap_dt: float, tol: float = 0.0) -> str:
    """Region of a task, checked in this order: ``cot`` (Gain_CoT > tol and GAP_DT > tol, the Thinking
    Boundary / Q1), ``direct`` (Gain_DA > tol and GAP_DT < -tol, Q2), ``negative`` (both gains < -tol, Q3),
    else ``tie`` (a value on a border, e.g. GAP_DT == 0 as for CV-Bench Depth)."""
    if gain_cot > tol and gap_dt > tol:
        return "cot"
    if gain_da > tol and gap_dt < -tol:
        return "direct"
    if gain_da < -tol and gain_cot < -tol:
        return "negative"
    return "tie"


# Which quantities decided each region, and the side of the threshold each must be on.
_DECIDERS = {
    "cot": (("Gain_CoT", ">"), ("GAP_DT", ">")),
    "direct": (("Gain_DA", ">"), ("GAP_DT", "<")),
    "negative": (("Gain_DA", "<"), ("Gain_CoT", "<")),
}


def is_uncertain(region: str, ci: dict, tol: float = 0.0) -> bool:
    """True if a CI of a quantity that decided ``region`` reaches its threshold (0 when tol == 0).

    A ``>`` decision is uncertain when ``lo <= tol``, a ``<`` decision when ``hi >= -tol`` (a CI touching
    the threshold counts as crossing it). ``tie`` returns False: no decision was made, so there is nothing
    to be uncertain about; ties are reported as such instead.
    """
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}; expected one of {REGIONS}")
    for key, side in _DECIDERS.get(region, ()):
        lo, hi = ci[key]
        if (side == ">" and lo <= tol) or (side == "<" and hi >= -tol):
            return True
    return False


def round_floats(obj, ndigits: int | None = 2):
    """Recursively round floats in dicts/lists/tuples (tuples -> lists); ``ndigits=None``: full precision."""
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, (float, np.floating)):
        return float(obj) if ndigits is None else round(float(obj), ndigits)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, dict):
        return {k: round_floats(v, ndigits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v, ndigits) for v in obj]
    return obj


def boundary_row(name_fields: dict, base_S, base_L, dt_S, dt_L, tol: float = 0.0, n_boot: int = 1000,
                 seed: int = 0, weights=None) -> dict:
    """One unrounded report row from per-item 0..1 scores: accuracies, gaps, gains, region, paired
    bootstrap CIs (``ci``) and the ``uncertain`` flag, prefixed by ``name_fields`` (e.g. domain, subtask).
    ``weights``: per-item weights of a non-pooled accuracy (`dualtune.aggregates`); None = plain means."""
    clash = set(name_fields) & set(ROW_KEYS)
    if clash:
        raise ValueError(f"name_fields may not use reserved keys {sorted(clash)}")
    arrays = [_as_score_array(k, a) for k, a in zip(ACC_KEYS, (base_S, base_L, dt_S, dt_L))]
    if len({a.size for a in arrays}) != 1:
        raise ValueError("boundary_row: the four score lists must have the same length (same items)")
    # fsum makes equal totals give bit-identical accuracies, so exact ties stay exact (GAP == 0.0).
    accs = {k: weighted_accuracy(a.tolist(), weights) for k, a in zip(ACC_KEYS, arrays)}
    m = boundary_metrics(**accs)
    region = classify_region(m["Gain_DA"], m["Gain_CoT"], m["GAP_DT"], tol)
    ci = paired_bootstrap(*arrays, n_boot=n_boot, seed=seed, weights=weights)
    row = dict(name_fields)
    row.update(n=int(arrays[0].size), **accs, GAP_B=m["GAP_B"], GAP_DT=m["GAP_DT"], Gain_DA=m["Gain_DA"],
               Gain_CoT=m["Gain_CoT"], region=region, uncertain=is_uncertain(region, ci, tol),
               ci={k: list(ci[k]) for k in CI_KEYS}, gain_absolute=m["gain_absolute"])
    return row


def _row_from_items(name_fields: dict, items: list[dict], tol, n_boot, seed, weights=None) -> dict:
    """Row over a list of per-item dicts (pooled, or weighted by ``weights``)."""
    scores = [[float(it[k]) for it in items] for k in ACC_KEYS]
    return boundary_row(name_fields, *scores, tol=tol, n_boot=n_boot, seed=seed, weights=weights)


def boundary_report(items: list[dict], tol: float = 0.0, n_boot: int = 1000, seed: int = 0,
                    planted: dict | None = None, aggregate: str | dict = DEFAULT_AGGREGATE) -> dict:
    """Per-subtask rows plus per-domain aggregates (subtask ``"ALL"``) and, with more than one domain, an
    overall ``domain == "all"`` row. ``items``: ``{domain, subtask, id, B_S, B_L, DT_S, DT_L}`` (optional
    ``variant`` / ``group``, `dualtune.aggregates`). ``aggregate``: how ALL rows average (weighted | macro |
    cvbench), one kind or a mapping domain -> kind (absent domains and the "all" row: weighted unless the
    mapping names them). Subtask rows average their variants when items carry several."""
    planted = planted or {}
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    seen: set[tuple] = set()
    for it in items:
        missing = [k for k in ("domain", "subtask", "id", *ACC_KEYS) if k not in it]
        if missing:
            raise ValueError(f"item {it.get('id')!r} lacks keys {missing}")
        key = (str(it["domain"]), str(it["subtask"]), it["id"])
        if key in seen:
            raise ValueError(f"duplicate item id {key}")
        seen.add(key)
        groups[key[:2]].append(it)
    if not groups:
        raise ValueError("boundary_report: no items")
    subtasks = []
    for domain, subtask in sorted(groups):
        group = groups[(domain, subtask)]
        row = _row_from_items({"domain": domain, "subtask": subtask}, group, tol, n_boot, seed,
                              subtask_weights(group))
        row["planted_region"] = planted.get(subtask)
        subtasks.append(row)
    # Aggregates average the items of a domain (or of everything) as domain.aggregate says (default: pooled).
    kinds = dict(aggregate) if isinstance(aggregate, dict) else None
    by_domain: dict[str, list[dict]] = defaultdict(list)
    for (domain, _), group in groups.items():
        by_domain[domain].extend(group)
    pools = [(d, by_domain[d]) for d in sorted(by_domain)]
    if len(pools) > 1:
        pools.append(("all", [it for _, g in pools for it in g]))
    aggregates, used = [], {}
    for domain, pool in pools:
        kind = aggregate if kinds is None else kinds.get(domain, DEFAULT_AGGREGATE)
        row = _row_from_items({"domain": domain, "subtask": "ALL"}, pool, tol, n_boot, seed,
                              aggregate_weights(pool, kind))
        used[domain] = kind
        row["planted_region"] = None
        aggregates.append(row)
    return {"subtasks": subtasks, "aggregates": aggregates, "aggregate_kinds": used}


def _flat_row(row: dict, kind: str) -> dict:
    """A report row with ``ci`` flattened into ``<quantity>_lo``/``_hi`` columns."""
    flat = {k: v for k, v in row.items() if k != "ci"}
    flat["row_type"] = kind
    for key in CI_KEYS:
        flat[f"{key}_lo"], flat[f"{key}_hi"] = row["ci"][key]
    return flat


def pair_items(base, tuned) -> list[dict]:
    """Per-item rows {domain, subtask, id, B_S, B_L, DT_S, DT_L, variant, group} (this module's input) from the
    base and tuned `EvalResult`s, matched by item id."""
    tuned_by_id = {i["id"]: i for i in tuned.to_items()}
    return [{"domain": b["domain"], "subtask": b["subtask"], "id": b["id"], "B_S": b["S"], "B_L": b["L"],
             "DT_S": tuned_by_id[b["id"]]["S"], "DT_L": tuned_by_id[b["id"]]["L"],
             "variant": b.get("variant"), "group": b.get("group")}
            for b in base.to_items() if b["id"] in tuned_by_id]


def recovered_regions(subtasks) -> tuple[int, int] | None:
    """``(rows in their planted region, rows with a planted region)`` of a report's subtask rows; None when no
    row has one (real data; the lab plants a region per subtask)."""
    planted = [r for r in subtasks if r.get("planted_region") is not None]
    return (sum(r["region"] == r["planted_region"] for r in planted), len(planted)) if planted else None


def _markdown(df: pd.DataFrame, recovered: tuple[int, int] | None) -> str:
    """Readable markdown table; ``?`` marks uncertain regions, ``†`` absolute-point gains."""
    cols = ["domain", "subtask", "n", *ACC_KEYS, "GAP_B", "GAP_DT", "Gain_DA", "Gain_CoT", "region",
            "planted"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.to_dict("records"):
        gain_mark = "†" if r["gain_absolute"] else ""
        cells = [r["domain"], r["subtask"], r["n"], *(f"{r[k]:.2f}" for k in ACC_KEYS + ("GAP_B", "GAP_DT")),
                 f"{r['Gain_DA']:.2f}{gain_mark}", f"{r['Gain_CoT']:.2f}{gain_mark}",
                 r["region"] + ("?" if r["uncertain"] else ""),
                 "-" if pd.isna(r["planted_region"]) else r["planted_region"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    notes = ["", "`?`: a quantity that decided the region has a bootstrap CI reaching 0 (uncertain).",
             "`†`: B_max = 0, gains are absolute points instead of relative %."]
    if recovered is not None:
        notes.append(f"recovered planted regions: {recovered[0]}/{recovered[1]}")
    return "# Thinking Boundary\n\n" + "\n".join(lines + notes) + "\n"


def report_table(report: dict) -> pd.DataFrame:
    """A report as one flat table: subtask rows, then aggregates; ``ci`` as ``<quantity>_lo``/``_hi``."""
    return pd.DataFrame([_flat_row(r, kind) for part, kind in (("subtasks", "subtask"), ("aggregates", "aggregate"))
                         for r in report[part]])


def write_report(report: dict, out_dir, config: dict | None = None) -> dict[str, Path]:
    """Write ``thinking_boundary.{json,csv,md}`` into ``out_dir`` (json/csv full precision; md rounded)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"thinking_boundary.{ext}" for ext in ("json", "csv", "md")}
    payload = round_floats({**report, "config": config or {}}, ndigits=None)
    paths["json"].write_text(json.dumps(payload, indent=2, default=str) + "\n")
    df = report_table(payload)
    df.to_csv(paths["csv"], index=False)
    paths["md"].write_text(_markdown(df, recovered_regions(payload["subtasks"])))
    return paths


def boundary_table(df: pd.DataFrame, tol: float = 0.0) -> pd.DataFrame:
    """CLI core: from columns ``task,B_S,B_L,DT_S,DT_L`` (others ignored) add gaps, gains and region,
    rounded to 2 decimals. Raises ValueError naming missing or non-numeric columns."""
    missing = [c for c in ("task", *ACC_KEYS) if c not in df.columns]
    if missing:
        raise ValueError(f"input is missing required column(s): {', '.join(missing)}")
    out = df[["task", *ACC_KEYS]].copy()
    for col in ACC_KEYS:
        values = pd.to_numeric(out[col], errors="coerce")
        if values.isna().any():
            bad = out.loc[values.isna(), "task"].tolist()
            raise ValueError(f"column {col} has missing or non-numeric values for task(s) {bad}")
        out[col] = values.astype(float)
    records = []
    for r in out.to_dict("records"):
        m = boundary_metrics(*(r[k] for k in ACC_KEYS))
        m["region"] = classify_region(m["Gain_DA"], m["Gain_CoT"], m["GAP_DT"], tol)
        records.append({**r, **m})
    table = pd.DataFrame(records, columns=[*CLI_OUT_COLUMNS, "gain_absolute"])
    absolute = table.loc[table["gain_absolute"], "task"].tolist()
    if absolute:
        print(f"warning: B_max = 0 for {absolute}; their gains are absolute points", file=sys.stderr)
    return table[list(CLI_OUT_COLUMNS)].round(2)


def _kit_table(args) -> pd.DataFrame:
    """The ``--kit`` path: items from the four per-sample files, report (+ ``--report-dir`` files), table."""
    from dualtune.evaluation.kits import kit_items  # lazy: the CSV path stays light

    items, summary = kit_items(args.kit, {k: getattr(args, k) for k in ACC_KEYS}, metric=args.metric,
                               subtask_field=args.subtask_field, id_field=args.id_field, domain=args.domain)
    print("paired:", json.dumps(summary), file=sys.stderr)
    report = boundary_report(items, tol=args.tol, n_boot=args.n_boot, seed=args.seed)
    if args.report_dir:
        write_report(report, args.report_dir, config=dict(summary, tol=args.tol, n_boot=args.n_boot, seed=args.seed))
    return report_table(round_floats(report, ndigits=None)).drop(columns="planted_region").round(2)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (module docstring): write the boundary table to ``-o`` or stdout."""
    parser = argparse.ArgumentParser(prog="python -m dualtune.boundary", description="Thinking-Boundary metrics "
                                     "from per-task accuracies (%) or from an evaluation kit's per-sample files.")
    parser.add_argument("input", nargs="?", help="CSV with columns task,B_S,B_L,DT_S,DT_L (other columns ignored)")
    parser.add_argument("-o", "--output", help="output CSV (default: stdout)")
    parser.add_argument("--tol", type=float, default=0.0, help="region threshold (default 0 = strict sign)")
    kit = parser.add_argument_group("evaluation-kit files instead of IN.csv (dualtune.evaluation.kits)")
    kit.add_argument("--kit", choices=("lmms-eval", "vlmevalkit"), help="the kit that wrote the four files")
    for key, flag in zip(ACC_KEYS, ("base-direct", "base-cot", "tuned-direct", "tuned-cot")):
        kit.add_argument(f"--{flag}", dest=key, metavar="FILE", help=f"per-sample file of the {key} run")
    kit.add_argument("--metric", "--score-column", help="lmms-eval metric key / VLMEvalKit score column "
                     "(default: the only scoring key; VLMEvalKit: hit, score, correct)")
    kit.add_argument("--subtask-field", help="subtask: metric-dict / doc key or column (default: task / category)")
    kit.add_argument("--id-field", help="item id key / column (default: doc_id / index)")
    kit.add_argument("--domain", help="domain name (default: the base-direct file's task / name)")
    kit.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    kit.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    kit.add_argument("--report-dir", help="also write thinking_boundary.{json,csv,md} (full precision) here")
    args = parser.parse_args(argv)
    if (args.input is None) == (args.kit is None):
        parser.error("give either IN.csv or --kit with the four per-sample files")
    try:
        table = _kit_table(args) if args.kit else boundary_table(pd.read_csv(args.input), tol=args.tol)
    except (ValueError, OSError) as err:
        parser.error(f"{args.input or args.kit}: {err}")
    table.to_csv(args.output or sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
