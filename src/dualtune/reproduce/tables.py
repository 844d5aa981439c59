"""The paper's table layouts from a sweep's runs, grouped by configuration (seeds: mean ± sample std).

Each builder returns ``(csv rows, markdown)``: csv rows carry every number at full precision (``<key>`` the
mean, ``<key>_std`` the sample std, ``n_seeds``), markdown is rounded for reading.

* `modes_table` - Tables 1/2: one row per configuration (training data x mode S / L / SL), Eval-S / Eval-L
  per evaluated domain (its ALL row), plus the untuned Baseline per model;
* `boundary_table` - Tables 3-5: per configuration with a Thinking-Boundary report, per subtask and ALL row;
* `sweep_table` - any sweep: one row per configuration with its headline metrics;
* `auto_think_table` - auto-think evaluations: the think rate per subtask next to the forced modes.

Paper numbers (``paper=True``) sit in columns named ``paper ...`` only on the rows they were measured for
(`paper_numbers.applies`); `paper_reference` prints them as separate, labelled tables otherwise.
"""

from __future__ import annotations

from collections import defaultdict

from dualtune.boundary import recovered_regions
from dualtune.reproduce import paper_numbers as pn
from dualtune.reproduce.seeds import fmt, mean_std, pooled_report, region_counts

ACCS = ("B_S", "B_L", "DT_S", "DT_L")
METRICS = (*ACCS, "GAP_B", "GAP_DT", "Gain_DA", "Gain_CoT")
CI_KEYS = ("Gain_DA", "Gain_CoT", "GAP_DT")


def markdown(columns, rows) -> str:
    """A GitHub markdown table of ``rows`` (lists of cells) under ``columns``."""
    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows]) + "\n"


def _stat(row: dict, key: str, values) -> str:
    """Put mean / std of ``values`` into csv ``row`` under ``key`` / ``key_std``; return the md cell."""
    mean, std, _ = mean_std(values)
    row[key], row[f"{key}_std"] = mean, std
    return fmt(mean, std)


def _mode_code(run) -> str:
    """S / L / SL for direct / cot / dual training (the paper's notation), else the mode's name."""
    name = run.get("mode.name")
    return pn.MODE_CODES.get(name, str(name))


def domain_accuracies(run, which: str) -> dict[str, tuple[float, float]]:
    """``{domain: (direct acc, cot acc)}`` of the ALL rows of the ``base`` or ``tuned`` model: from the
    boundary report (each domain's configured aggregate), else from the eval summary (``weighted``)."""
    if run.boundary:
        keys = ("B_S", "B_L") if which == "base" else ("DT_S", "DT_L")
        return {r["domain"]: (r[keys[0]], r[keys[1]]) for r in run.boundary["aggregates"]}
    summary = run.eval_base if which == "base" else run.eval_tuned
    out: dict[str, dict] = defaultdict(dict)
    for r in (summary or {}).get("aggregates", []):
        out[r["domain"]][r["mode"]] = r["weighted"]
    return {d: (m.get("direct"), m.get("cot")) for d, m in out.items() if set(m) & {"direct", "cot"}}


def modes_table(groups, paper: bool = False) -> tuple[list[dict], str]:
    """Tables 1/2: Baseline rows (per model; base evaluations of distinct seeds) then one row per
    configuration; per domain ``<domain> Eval-S`` / ``Eval-L`` (mean ± std over seeds)."""
    domains = list(dict.fromkeys(d for _, runs in groups for r in runs
                                 for which in ("base", "tuned") for d in domain_accuracies(r, which)))
    baselines: dict[str, dict] = defaultdict(dict)  # model -> {(seed, domain): (S, L)}
    for _, runs in groups:
        for run in runs:
            for d, accs in domain_accuracies(run, "base").items():
                baselines[str(run.get("model.name"))].setdefault((run.seed, d), accs)
    entries = [(f"Baseline ({m})", m, "—", "—", {d: [a for (_, dd), a in vals.items() if dd == d] for d in domains})
               for m, vals in baselines.items()]
    names = [f"{runs[0].get('domain.name')}-{_mode_code(runs[0])}" for _, runs in groups]  # the paper's "I-S"
    for name, (label, runs) in zip(names, groups):
        per_domain = {d: [domain_accuracies(r, "tuned").get(d) for r in runs] for d in domains}
        name = name if names.count(name) == 1 else f"{name} [{label}]"
        entries.append((name, runs[0].get("model.name"), runs[0].get("domain.name"), _mode_code(runs[0]),
                        {d: [a for a in v if a is not None] for d, v in per_domain.items()}))
    columns = ["row", "data", "train mode", "seeds", *[f"{d} Eval-{m}" for d in domains for m in "SL"]]
    csv_rows, md_rows = [], []
    for name, model, data, code, per_domain in entries:
        row = {"row": name, "model": model, "data": data, "train mode": code,
               "n_seeds": max((len(v) for v in per_domain.values()), default=0)}
        cells = [name, data, code, row["n_seeds"]]
        for d in domains:
            for i, m in enumerate("SL"):
                cells.append(_stat(row, f"{d} Eval-{m}", [a[i] for a in per_domain[d]]))
                paper_acc = pn.TABLE1.get("Baseline", {}).get(d) or pn.TABLE2.get("Baseline", {}).get(d)
                if paper and name.startswith("Baseline") and pn.applies(model, d) and paper_acc:
                    row[f"paper {d} Eval-{m}"] = paper_acc[i]
                    cells[-1] += f" (paper: {paper_acc[i]:.2f})"
        csv_rows.append(row)
        md_rows.append(cells)
    note = "\nEval-S / Eval-L: accuracy (%) under the direct-answer / CoT prompt; mean ± sample std over seeds."
    return csv_rows, "## Table 1/2 layout: training mode x data, evaluated in both modes\n\n" + markdown(
        columns, md_rows) + note + "\n"


def _region_cell(rows: list[dict], pooled: dict | None) -> tuple[str, str, dict]:
    """(region, CI) cells and the CI bounds (``<key>_lo`` / ``_hi``): one seed -> its region (``?``
    uncertain) and 95% CIs; several -> the pooled report's region and CIs plus the seeds' regions."""
    source = rows[0] if len(rows) == 1 else pooled
    if source is None:
        return region_counts(r["region"] for r in rows), "—", {}
    region = source["region"] + ("?" if source["uncertain"] else "")
    if len(rows) > 1:
        region += f" (seeds: {region_counts(r['region'] for r in rows)})"
    ci = "; ".join(f"{k} [{source['ci'][k][0]:.1f}, {source['ci'][k][1]:.1f}]" for k in CI_KEYS)
    return region, ci, {f"{k}_{side}": source["ci"][k][i] for k in CI_KEYS for i, side in enumerate(("lo", "hi"))}


def boundary_table(groups, paper: bool = False) -> tuple[list[dict], str]:
    """Tables 3-5: per configuration with boundary reports, one row per (domain, subtask) then the ALL rows:
    accuracies, gaps, gains (mean ± std), region and CIs (`_region_cell`), planted region (lab)."""
    csv_rows, parts = [], []
    for label, runs in groups:
        runs = [r for r in runs if r.boundary]
        if not runs:
            continue
        pooled = pooled_report(runs) if len(runs) > 1 else None
        pooled_rows = {(r["domain"], r["subtask"]): r for part in ("subtasks", "aggregates")
                       for r in (pooled or {}).get(part, [])}
        keys = list(dict.fromkeys((r["domain"], r["subtask"]) for run in runs
                                  for part in ("subtasks", "aggregates") for r in run.boundary[part]))
        model = runs[0].get("model.name")
        with_paper = paper and any(pn.applies(model, d) and pn.table3_row(d, s) for d, s in keys)
        columns = ["domain", "subtask", "n", *METRICS, "region", "95% CI", "planted"]
        columns += ["paper task", "paper Gain_DA", "paper Gain_CoT", "paper GAP_DT", "paper region"] * with_paper
        md_rows = []
        for domain, subtask in keys:
            rows = [r for run in runs for part in ("subtasks", "aggregates") for r in run.boundary[part]
                    if (r["domain"], r["subtask"]) == (domain, subtask)]
            row = {"config": label, "domain": domain, "subtask": subtask, "n_seeds": len(rows),
                   "n": rows[0]["n"], "planted": rows[0].get("planted_region")}
            cells = [domain, subtask, row["n"], *(_stat(row, k, [r[k] for r in rows]) for k in METRICS)]
            region, ci, bounds = _region_cell(rows, pooled_rows.get((domain, subtask)))
            row.update(region=region, **bounds)
            row["regions_per_seed"] = ";".join(r["region"] for r in rows)
            cells += [region, ci, row["planted"] or "—"]
            ref = pn.table3_row(domain, subtask) if with_paper and pn.applies(model, domain) else None
            if with_paper:
                for key in ("task", "Gain_DA", "Gain_CoT", "GAP_DT", "region"):
                    row[f"paper {key}"] = ref[key] if ref else None
                cells += [ref["task"], *(f"{ref[k]:.2f}" for k in CI_KEYS), ref["region"]] if ref else ["—"] * 5
            csv_rows.append(row)
            md_rows.append(cells)
        recovered = [recovered_regions(run.boundary["subtasks"]) or (0, 0) for run in runs]
        pooled_note = ("; region and CI: the report of all seeds' items pooled (paired bootstrap), with the "
                       "seeds' own regions in brackets")
        notes = [f"seeds {[r.seed for r in runs]}; numbers: mean ± sample std over seeds; `?`: a deciding CI "
                 "reaches 0" + (pooled_note if len(runs) > 1 else "")]
        if any(total for _, total in recovered):
            notes.append("recovered planted regions per seed: " + ", ".join(f"{k}/{n}" for k, n in recovered))
        parts.append(f"### {label}\n\n" + markdown(columns, md_rows) + "\n" + "\n".join(notes) + "\n")
    if not parts:
        return [], ""
    return csv_rows, "## Table 3-5 layout: the Thinking Boundary per subtask\n\n" + "\n".join(parts)


def sweep_table(groups) -> tuple[list[dict], str]:
    """Any sweep: one row per configuration with the overall (last ALL) row's accuracies, gains and gap,
    training size and time (`dualtune.scoring.compare.run_summary`), mean ± std over seeds."""
    from dualtune.scoring.compare import overall_row, run_summary

    keys = ("B_S", "B_L", "DT_S", "DT_L", "Gain_DA", "Gain_CoT", "GAP_DT", "train samples", "SFT wall s")
    if any((r.path / "selection.json").is_file() for _, runs in groups for r in runs):  # selection sweeps
        keys += ("language-prior kept",)
    columns = ["config", "model", "domain", "mode", "algo", "selection", "seeds", *keys, "overall region"]
    csv_rows, md_rows = [], []
    for label, runs in groups:
        summaries = []
        for run in runs:
            if run.boundary:
                summaries.append({**run_summary(label, run.path, steps=False), **overall_row(run.boundary)})
            else:  # no boundary report (e.g. one eval mode): the tuned / base eval's overall accuracies
                base, tuned = domain_accuracies(run, "base"), domain_accuracies(run, "tuned")
                b, t = base.get("all") or next(iter(base.values()), (None, None)), tuned.get("all") or next(
                    iter(tuned.values()), (None, None))
                summaries.append({"B_S": b[0], "B_L": b[1], "DT_S": t[0], "DT_L": t[1]})
        row = {"config": label, **{g: runs[0].get(f"{g}.name") for g in columns[1:6]},
               "seeds": " ".join(str(r.seed) for r in runs), "n_seeds": len(runs)}
        cells = [row[c] for c in columns[:7]] + [_stat(row, k, [s.get(k) for s in summaries]) for k in keys]
        row["overall region"] = region_counts(s["region"] for s in summaries if s.get("region"))
        csv_rows.append(row)
        md_rows.append(cells + [row["overall region"] or "—"])
    return csv_rows, "## Sweep: one row per configuration\n\n" + markdown(columns, md_rows) + (
        "\nOverall = the report's last ALL row (all domains); mean ± sample std over seeds.\n")


def step_table(groups) -> tuple[list[dict], str]:
    """Accuracy during training (runs with ``algo.eval_steps``: their ``eval_steps.csv``): one row per
    (configuration, step, mode), mean ± std over seeds — RAP Fig. 1a's accuracy-vs-steps curves."""
    import pandas as pd

    csv_rows, md_rows = [], []
    for label, runs in groups:
        frames = [pd.read_csv(r.path / "eval_steps.csv") for r in runs if (r.path / "eval_steps.csv").is_file()]
        if not frames:
            continue
        merged = pd.concat(frames)
        for (step, mode), part in merged.groupby(["step", "mode"], sort=True):
            row = {"config": label, "step": int(step), "mode": mode, "n_seeds": len(part)}
            cell = _stat(row, "accuracy", part["accuracy"].tolist())
            csv_rows.append(row)
            md_rows.append([label, int(step), mode, len(part), cell])
    if not csv_rows:
        return [], ""
    return csv_rows, "## Accuracy during training (algo.eval_steps)\n\n" + markdown(
        ["config", "step", "mode", "seeds", "accuracy"], md_rows) + "\nmean ± sample std over seeds; overall pooled accuracy of the test split.\n"


def auto_think_table(groups) -> tuple[list[dict], str]:
    """Per configuration whose tuned model was evaluated in ``auto`` mode: per subtask the think rate (tuned,
    and base when evaluated) next to the auto / direct / cot accuracies and the boundary region."""
    csv_rows, md_rows = [], []
    columns = ["config", "domain", "subtask", "think % (tuned)", "think % (base)", "auto acc", "direct acc",
               "cot acc", "region"]
    for label, runs in groups:
        runs = [r for r in runs if (r.eval_tuned or {}).get("think_rate")]
        keys = list(dict.fromkeys((t["domain"], t["subtask"]) for r in runs for t in r.eval_tuned["think_rate"]))
        for domain, subtask in keys:
            def pick(summary, part, key, mode=None):
                if part == "per_subtask" and subtask == "ALL":  # a domain's pooled accuracy
                    part, key = "aggregates", "weighted"
                return next((x[key] for x in (summary or {}).get(part, []) if x["domain"] == domain and
                             x.get("subtask", subtask) == subtask and x.get("mode", mode) == mode), None)
            row = {"config": label, "domain": domain, "subtask": subtask, "n_seeds": len(runs)}
            cells = [label, domain, subtask, _stat(row, "think_rate", [pick(r.eval_tuned, "think_rate", "think_rate")
                                                                      for r in runs]),
                     _stat(row, "think_rate_base", [pick(r.eval_base, "think_rate", "think_rate") for r in runs])]
            cells += [_stat(row, f"{m}_acc", [pick(r.eval_tuned, "per_subtask", "accuracy", m) for r in runs])
                      for m in ("auto", "direct", "cot")]
            regions = [b["region"] for r in runs if r.boundary for b in r.boundary["subtasks"]
                       if (b["domain"], b["subtask"]) == (domain, subtask)]
            row["region"] = region_counts(regions)
            csv_rows.append(row)
            md_rows.append(cells + [row["region"] or "—"])
    if not csv_rows:
        return [], ""
    return csv_rows, "## Auto-think: how often the tuned model reasons when free to choose\n\n" + markdown(
        columns, md_rows) + "\nthink %: completions that reason (`dualtune.prompting.answers.thinks`), under the neutral prompt; ALL: pooled per domain.\n"


def paper_reference() -> tuple[list[dict], str]:
    """The paper's Tables 1-3 as printed (Qwen2.5-VL-7B), as labelled reference tables."""
    rows, parts = [], []
    for key, table in (("table1", pn.TABLE1), ("table2", pn.TABLE2)):
        benches = list(dict.fromkeys(b for r in table.values() for b in r))
        md = [[name, *(f"{vals[b][i]:.2f}" for b in benches for i in (0, 1))] for name, vals in table.items()]
        rows += [{"table": key, "row": name, **{f"{b} Eval-{m}": vals[b][i] for b in benches for i, m in
                                                enumerate("SL")}} for name, vals in table.items()]
        parts.append(f"### Paper {pn.SOURCES[key]}\n\n" + markdown(
            ["row", *(f"{b} Eval-{m}" for b in benches for m in "SL")], md))
    t3 = [pn.table3_row(b, s) for b, s in pn.TABLE3]
    rows += [{"table": "table3", **r} for r in t3]
    parts.append(f"### Paper {pn.SOURCES['table3']}\n\n" + markdown(
        ["task", *METRICS, "region"], [[r["task"], *(f"{r[k]:.2f}" for k in METRICS), r["region"]] for r in t3]))
    head = ("## The paper's printed numbers (Qwen2.5-VL-7B): reference only\n\nNot produced by these runs; "
            "compare only where model and benchmark match (then they also appear as `paper ...` columns above). "
            "Gaps, gains and regions of Table 3 are recomputed from its accuracies (they match the print).\n\n")
    return rows, head + "\n".join(parts)
