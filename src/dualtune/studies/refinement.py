"""Data-refinement validation (Dual Tuning Figs. 5-7, digest §8): does retraining on one part of a report's split
move each task the way the report predicted?

    python -m dualtune.studies.refinement REPORT_RUN PART_RUN_OR_SWEEP... [--out DIR] [--gain same_mode|boundary]
        [--n-boot 1000] [--seed 0] [--resample items|tasks|both]

``REPORT_RUN`` is the Dual Tuning run whose ``thinking_boundary.json`` split the data; the part runs are the
``selection=refine`` jobs (run dirs, or a multirun dir above them; other runs are skipped with a log line).
For every task (a report subtask row) of every split, the run(s) trained on *its own* part give the measured
gain, their seeds pooled (items of each seed kept apart):

* ``same_mode`` (default; the digest's reading of the figures' colour, §8.1): the tuned minus the base
  accuracy in the split's mode, in points: gain_da -> DT_S - B_S, gain_cot -> DT_L - B_L, q3 (Dual Tuning,
  both modes) -> the larger of the two;
* ``boundary``: the report's own definition on the part run (Gain_DA / Gain_CoT relative to B_max; q3: max).

Prediction: the sign of the report's gain (`dualtune.curation_split.predicted_gain`). **Agreement** counts the
tasks with a non-zero predicted sign; a task agrees when its measured gain has that sign (a measured 0
disagrees). CIs: percentile ``1 - alpha`` of a bootstrap that redraws each task's items with replacement,
paired across B_S, B_L, DT_S, DT_L (``items``, as the boundary CIs; `dualtune.bootstrap`), and/or redraws
the tasks (``tasks``; ``both`` = tasks, then items). Outputs in ``--out`` (default ``<REPORT_RUN>/refinement``):
``refinement.md``, ``refinement_tasks.csv``, ``refinement_summary.csv``, ``fig5_gain_da.png``,
``fig6_gain_cot.png``, ``fig7_q3.png`` (`dualtune.studies.refinement_plot`).
"""
from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from dualtune.bootstrap import as_score_array, gain
from dualtune.curation_split import MATCHING_MODE, SPLITS, predicted_gain, read_report, sign, split_tasks

log = logging.getLogger(__name__)

KINDS = ("same_mode", "boundary")
RESAMPLE = ("items", "tasks", "both")
FIGURE = {"gain_da": 5, "gain_cot": 6, "q3": 7}
SCORES = ("B_S", "B_L", "DT_S", "DT_L")


# ----------------------------------------------------------------------------- pure math
def measured_gain(B_S, B_L, DT_S, DT_L, split: str, kind: str = "same_mode"):
    """The measured gain of a split's retraining from accuracies in % (floats or arrays of draws)."""
    if kind not in KINDS:
        raise ValueError(f"unknown gain kind {kind!r}; expected one of {KINDS}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    if kind == "same_mode":
        da, cot = np.subtract(DT_S, B_S), np.subtract(DT_L, B_L)
    else:
        b_max = np.maximum(B_S, B_L)
        da, cot = gain(np.asarray(DT_S, float), b_max), gain(np.asarray(DT_L, float), b_max)
    value = {"gain_da": da, "gain_cot": cot}.get(split)
    return np.maximum(da, cot) if value is None else value


def agreement(predicted_signs, measured) -> tuple[int, int]:
    """``(n_agree, n_counted)``: tasks with a non-zero predicted sign, and those whose measured value has it."""
    pred = np.sign(np.asarray(predicted_signs, dtype=float))
    counted = pred != 0
    return int(np.sum(np.sign(np.asarray(measured, dtype=float))[counted] == pred[counted])), int(counted.sum())


def bootstrap_agreement(tasks: list[dict], split: str, kind: str = "same_mode", n_boot: int = 1000, seed: int = 0,
                        resample: str = "items", alpha: float = 0.05) -> dict:
    """Bootstrap of the agreement rate over ``tasks`` (``{"pred_sign", "B_S", "B_L", "DT_S", "DT_L"}``, the
    last four per-item 0..1 scores, paired). Returns ``{"rate", "ci", "task_ci": [(lo, hi) per task]}``; the
    rate is None (ci too) when no task has a non-zero predicted sign."""
    if resample not in RESAMPLE or n_boot < 1 or not 0 < alpha < 1:
        raise ValueError(f"need resample in {RESAMPLE}, n_boot >= 1 and 0 < alpha < 1")
    rng = np.random.default_rng(seed)
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    draws = []  # per task: (n_boot,) measured-gain draws
    for t in tasks:
        arrays = [as_score_array(k, t[k]) for k in SCORES]
        n = arrays[0].size
        if any(a.size != n for a in arrays):
            raise ValueError("bootstrap_agreement: a task's four score lists must have the same length")
        if resample == "tasks":
            accs = [np.full(n_boot, a.mean() * 100.0) for a in arrays]
        else:
            idx = rng.integers(0, n, size=(n_boot, n))
            accs = [a[idx].mean(axis=1) * 100.0 for a in arrays]
        draws.append(measured_gain(*accs, split=split, kind=kind))
    task_ci = [tuple(float(x) for x in np.percentile(d, q)) for d in draws]
    pred = np.array([np.sign(t["pred_sign"]) for t in tasks], dtype=float)
    if not np.any(pred != 0):
        return {"rate": None, "ci": None, "task_ci": task_ci}
    point = [measured_gain(*(np.mean(t[k]) * 100.0 for k in SCORES), split=split, kind=kind) for t in tasks]
    n_agree, n_counted = agreement(pred, point)
    hits = np.sign(np.stack(draws, axis=1)) == pred  # (n_boot, T)
    counted = np.broadcast_to(pred != 0, hits.shape)
    if resample in ("tasks", "both"):
        pick = rng.integers(0, len(tasks), size=(n_boot, len(tasks)))
        hits, counted = np.take_along_axis(hits, pick, 1), np.take_along_axis(counted, pick, 1)
    with np.errstate(invalid="ignore"):
        rates = (hits & counted).sum(axis=1) / counted.sum(axis=1)
    rates = rates[np.isfinite(rates)]  # a task draw with no counted task has no rate
    return {"rate": n_agree / n_counted, "ci": tuple(float(x) for x in np.percentile(rates, q)), "task_ci": task_ci}


# ----------------------------------------------------------------------------- runs
def part_items(run) -> dict[tuple[str, str], list[dict]]:
    """``{(domain, subtask): [paired item]}`` of a part run (`dualtune.reproduce.collect.Run`), ids prefixed by
    its seed; {} without both prediction files."""
    from dualtune.evaluation.runner import EvalResult, read_records
    from dualtune.boundary import pair_items

    paths = run.predictions("base"), run.predictions("tuned")
    if None in paths or paths[0] == paths[1]:
        return {}
    base, tuned = (EvalResult.from_records([r for r in read_records(p) if "mode" in r]) for p in paths)
    out = defaultdict(list)
    for it in pair_items(base, tuned):
        out[(str(it["domain"]), str(it["subtask"]))].append(dict(it, id=f"seed{run.seed}/{it['id']}"))
    return out


def find_part_runs(paths, report_dir) -> dict[tuple[str, str], list]:
    """``{(split, part): [Run]}`` of the ``selection=refine`` runs under ``paths`` that read ``report_dir``."""
    from dualtune.reproduce.collect import find_run_dirs, read_run

    report = Path(report_dir).resolve()
    found: dict[tuple[str, str], list] = defaultdict(list)
    for path in paths:
        dirs = find_run_dirs(path)[0] if not (Path(path) / ".hydra").is_dir() else [Path(path)]
        for run in map(read_run, dirs):
            sel = run.config.get("selection") or {}
            src = Path(str(sel.get("report") or "")).resolve()
            if sel.get("name") != "refine" or src not in (report, report / "thinking_boundary.json"):
                log.info("skipping %s: not a selection=refine run of %s", run.path, report)
                continue
            if run.get("mode.name") != MATCHING_MODE[sel["split"]]:
                log.warning("%s: split %s retrained in mode %s, not %s", run.path, sel["split"],
                            run.get("mode.name"), MATCHING_MODE[sel["split"]])
            found[(sel["split"], sel["part"])].append(run)
    return found


def split_rows(report_rows: list[dict], runs: dict, split: str, kind: str, rule: str = "sign") -> list[dict]:
    """One row per report task of ``split`` measured on its own part's runs (tasks without one are left out)."""
    parts = split_tasks(report_rows, split, rule)
    rows = []
    for r in report_rows:
        key = (str(r["domain"]), str(r["subtask"]))
        part = parts[key]
        items = [it for run in runs.get((split, part), []) for it in part_items(run).get(key, [])]
        if not items:
            continue
        pred = predicted_gain(r, split)
        decider = {"gain_da": "Gain_DA", "gain_cot": "Gain_CoT"}.get(split) or \
            ("Gain_DA" if float(r["Gain_DA"]) >= float(r["Gain_CoT"]) else "Gain_CoT")
        lo, hi = (r.get("ci") or {}).get(decider, (None, None))
        accs = {k: float(np.mean([it[k] for it in items]) * 100.0) for k in SCORES}
        rows.append({"figure": FIGURE[split], "split": split, "part": part, "domain": key[0], "subtask": key[1],
                     "region": r.get("region"), "predicted_gain": pred, "predicted_sign": sign(pred),
                     "predicted_uncertain": None if lo is None else bool(lo <= 0 <= hi),
                     "runs": len(runs[(split, part)]), "n": len(items), **accs,
                     "measured_gain": float(measured_gain(*accs.values(), split=split, kind=kind)),
                     "_items": {k: [it[k] for it in items] for k in SCORES}})
    return rows


def refinement_study(report_dir, part_paths, kind: str = "same_mode", n_boot: int = 1000, seed: int = 0,
                     resample: str = "items") -> dict:
    """``{"tasks": rows, "summary": rows}``: per-task predictions and measurements, per split / part agreement."""
    runs = find_part_runs(part_paths, report_dir)
    if not runs:
        raise FileNotFoundError(f"no selection=refine run of {report_dir} under {[str(p) for p in part_paths]}")
    tasks, summary = [], []
    for split in SPLITS:
        sels = [r.config["selection"] for (s, _), rs in runs.items() if s == split for r in rs]
        if not sels:
            continue
        settings = {(sel.get("rule") or "sign", tuple(sel.get("report_domains") or ())) for sel in sels}
        if len(settings) > 1:  # the parts must come from one split of one task set
            raise ValueError(f"split {split}: part runs differ in (rule, report_domains): {sorted(settings)}")
        rule, domains = settings.pop()
        rows = split_rows(read_report(report_dir, list(domains) or None), runs, split, kind, rule)
        for scope in (None, *SPLITS[split]):
            sub = [r for r in rows if scope is None or r["part"] == scope]
            boot = bootstrap_agreement([{"pred_sign": r["predicted_sign"], **r["_items"]} for r in sub], split, kind,
                                       n_boot, seed, resample) if sub else {"rate": None, "ci": None, "task_ci": []}
            if scope is None:
                for r, (lo, hi) in zip(sub, boot["task_ci"]):
                    r.update(measured_lo=lo, measured_hi=hi, agree=None if r["predicted_sign"] == 0
                             else bool(sign(r["measured_gain"]) == r["predicted_sign"]))
            n_agree, n_counted = agreement([r["predicted_sign"] for r in sub], [r["measured_gain"] for r in sub])
            summary.append({"figure": FIGURE[split], "split": split, "part": scope or "all",
                            "mode": MATCHING_MODE[split], "tasks": len(sub), "counted": n_counted, "agree": n_agree,
                            "rate": boot["rate"], "ci_lo": (boot["ci"] or (None, None))[0],
                            "ci_hi": (boot["ci"] or (None, None))[1]})
        tasks += rows
    for r in tasks:
        r.pop("_items")
    return {"tasks": tasks, "summary": summary, "gain": kind, "resample": resample, "n_boot": n_boot}


def main(argv=None) -> int:
    """Command line (module docstring): compute, write md / csv / png, print the markdown."""
    from dualtune.studies.refinement_plot import write_study

    parser = argparse.ArgumentParser(prog="python -m dualtune.studies.refinement", description=__doc__.split("\n")[0])
    parser.add_argument("report", help="the Dual Tuning run dir whose thinking_boundary.json split the data")
    parser.add_argument("parts", nargs="+", help="selection=refine run dirs, or a multirun dir above them")
    parser.add_argument("--out", help="output dir (default: <report>/refinement)")
    parser.add_argument("--gain", choices=KINDS, default="same_mode", help="measured gain (default same_mode)")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resample", choices=RESAMPLE, default="items", help="bootstrap level (default items)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        study = refinement_study(args.report, args.parts, args.gain, args.n_boot, args.seed, args.resample)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    out = Path(args.out or Path(args.report) / "refinement")
    files = write_study(study, out)
    print((out / "refinement.md").read_text())
    print(f"written to {out}: " + ", ".join(p.name for p in files))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
