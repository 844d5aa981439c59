"""The thinking-pattern study (Dual Tuning Figs. 2-3, digest §7): one configuration Dual-Tuned once per CoT source.

A *study* holds one configuration trained on two or more CoT sources ("thinking patterns": Data1 = the data's
own rationales, Data2 = a teacher's (`python cot.py`) or a condensed variant (``cot.from_dataset=true
cot.variant=condensed``)), everything else equal; each source may have several seeds. Per source and (domain,
subtask) it reports Gain_DA, Gain_CoT, GAP_DT (mean ± sample std over seeds), the region (one seed: its
report's; several: the report of all seeds' items pooled, `dualtune.reproduce.seeds.pooled_report`, or without
prediction files the region of the seed means), the tuned
model's mean generated CoT length (tokens of its CoT-mode answers, think + answer + EOS, skipped prompts
excluded: ``mean_cot_length`` of eval_tuned/eval_summary.json; ALL rows: item-weighted over the subtasks) and
Gain_token (`dualtune.gains`, from the seed means of Gain_CoT and of the length; definition: ``--gain-token``,
else the runs' ``study.gain_token``, else ``per_100_tokens``).

Outputs: ``fig2_region_shift.{md,csv}`` (region per source and whether it moved), ``fig3_gain_token.{md,csv}``
(one csv row per study, source and task), ``fig2_region_shift_<study>.png`` and ``fig3_gain_token_<study>.png``.

    python -m dualtune.reproduce <fig2_3 multirun dir>     # studies: runs that differ only in domain.cot_source
    python -m dualtune.studies.thinking_patterns RUNS_A RUNS_B [--labels Data1 Data2] [--out DIR] [--gain-token X]
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from dualtune.gains import DEFAULT_GAIN_TOKEN, GAIN_TOKEN, gain_token
from dualtune.boundary import classify_region
from dualtune.reproduce.seeds import fmt, mean_std, pooled_report
from dualtune.reproduce.tables import markdown

log = logging.getLogger(__name__)

SOURCE_KEYS = ("domain.cot_source",)  # the study's axis: which CoT source the training rationales come from
OWN = "own"  # the label of domain.cot_source = null: the data's own rationales (Data1)
GAINS = ("Gain_DA", "Gain_CoT", "GAP_DT")
CONTEXT_GROUPS = ("model", "domain", "mode", "algo", "selection")  # what the CLI pairs runs of two sources by
# Fig. 3 as printed (digest §7, read from the vector PDF; MathVista, Qwen2.5-VL-7B): (Gain_CoT, Gain_token)
# for Data1 (original) and Data2 (new).
PAPER_FIG3 = {"Comm.": ((3.65, 1.95), (6.76, 2.84)), "Arithmetic": ((2.08, 0.48), (2.65, 1.05)),
              "Statistical": ((3.29, 1.56), (4.95, 1.95)), "Algebraic": ((8.82, 1.23), (6.61, 1.37))}


@dataclass
class Study:
    """One configuration (``name``: what is held fixed) under several CoT sources: ``[(source label, runs)]``,
    the first source the reference the others' region shifts are measured from."""

    name: str
    sources: list[tuple[str, list]]


def source_label(run) -> str:
    """The CoT source a run trained on: ``domain.cot_source`` (its last path part), or `OWN` when null."""
    source = run.get("domain.cot_source")
    return Path(str(source)).name if source else OWN


def sweep_studies(groups) -> list[Study]:
    """Studies in a sweep's configurations (`dualtune.reproduce.collect.group_runs`): configurations whose
    identities differ only in `SOURCE_KEYS` form one study (own rationales first, then by source name)."""
    contexts: dict[str, list] = {}
    for label, runs in groups:
        rest = {k: v for k, v in runs[0].identity.items() if k not in SOURCE_KEYS}
        contexts.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append((label, runs))
    studies = []
    for members in contexts.values():
        if len({source_label(runs[0]) for _, runs in members}) < 2:
            continue
        members.sort(key=lambda m: (source_label(m[1][0]) != OWN, source_label(m[1][0])))
        kept = [p for p in members[0][0].split(", ") if not p.startswith(tuple(f"{k}=" for k in SOURCE_KEYS))]
        kept = [p for p in kept if p != "(one configuration)"]
        if not any(p.startswith("domain=") for p in kept):  # name the training data even when it is fixed
            kept.insert(0, f"domain={members[0][1][0].get('domain.name')}")
        name = ", ".join(kept)
        studies.append(Study(name, [(source_label(runs[0]), runs) for _, runs in members]))
    return studies


def cli_studies(paths, labels=None) -> list[Study]:
    """Studies from one path per source (a run dir, or a dir above run dirs: its seeds): runs of the sources
    are paired by their model / domain / mode / algo / selection names (`CONTEXT_GROUPS`)."""
    from dualtune.reproduce.collect import find_run_dirs, read_run

    sources = []
    for i, path in enumerate(paths):
        found, _ = find_run_dirs(path)
        runs = [read_run(d) for d in found if d.joinpath("thinking_boundary.json").is_file()]
        if not runs:
            raise FileNotFoundError(f"{path}: no run dir with a thinking_boundary.json")
        label = labels[i] if labels else source_label(runs[0])
        sources.append((label if label not in [s for s, _ in sources] else f"{label}#{i + 1}", runs))
    context = lambda run: ", ".join(f"{g}={run.get(f'{g}.name')}" for g in CONTEXT_GROUPS)  # noqa: E731
    names = list(dict.fromkeys(context(r) for _, runs in sources for r in runs))
    studies = [Study(n, [(s, sorted((r for r in runs if context(r) == n), key=lambda r: r.seed))
                         for s, runs in sources]) for n in names]
    return [s for s in studies if all(runs for _, runs in s.sources)]


def cot_tokens(run, domain: str, subtask: str, which: str = "tuned") -> float | None:
    """Mean generated CoT-mode tokens of a run's ``tuned`` / ``base`` model on a subtask (``ALL``: over the
    domain's subtasks, ``domain == "all"``: every subtask, item-weighted), or None when not recorded."""
    summary = run.eval_tuned if which == "tuned" else run.eval_base
    entries = [e for e in (summary or {}).get("mean_cot_length", []) if (e["domain"], e["subtask"]) == (domain, subtask)
               or (subtask == "ALL" and domain in ("all", e["domain"]))]
    n = sum(int(e["n"]) for e in entries)
    return sum(int(e["n"]) * float(e["mean_tokens"]) for e in entries) / n if n else None


def source_rows(runs, definition: str = DEFAULT_GAIN_TOKEN) -> list[dict]:
    """One row per (domain, subtask), then the ALL rows, of one source's runs (seeds): gains (mean, std),
    region, seeds' regions, tuned / base CoT length (mean, std) and Gain_token (None without a length > 0)."""
    runs = [r for r in runs if r.boundary]
    pooled = pooled_report(runs) if len(runs) > 1 else None
    pooled_rows = {(r["domain"], r["subtask"]): r for part in ("subtasks", "aggregates")
                   for r in (pooled or {}).get(part, [])}
    report_rows = [{(r["domain"], r["subtask"]): r for part in ("subtasks", "aggregates") for r in run.boundary[part]}
                   for run in runs]
    out = []
    for key in dict.fromkeys(k for rows in report_rows for k in rows):
        rows = [rows[key] for rows in report_rows if key in rows]
        row = {"domain": key[0], "subtask": key[1], "n": rows[0]["n"], "n_seeds": len(rows),
               "planted": rows[0].get("planted_region")}
        for name in GAINS:
            row[name], row[f"{name}_std"], _ = mean_std(r[name] for r in rows)
        decided = pooled_rows.get(key) or (rows[0] if len(rows) == 1 else None)
        row["region"] = decided["region"] if decided else classify_region(
            row["Gain_DA"], row["Gain_CoT"], row["GAP_DT"], float(runs[0].get("eval.tol", 0.0) or 0.0))
        row["uncertain"] = bool(decided and decided["uncertain"])
        row["regions_per_seed"] = ";".join(r["region"] for r in rows)
        for which, name in (("tuned", "cot_tokens"), ("base", "base_cot_tokens")):
            row[name], row[f"{name}_std"], _ = mean_std(cot_tokens(run, *key, which) for run in runs)
        tokens = row["cot_tokens"]
        row["Gain_token"] = gain_token(row["Gain_CoT"], tokens, definition) if tokens and tokens > 0 else None
        row["gain_token_def"] = definition
        out.append(row)
    return out


def _region(row: dict) -> str:
    """The region cell: region, ``?`` when uncertain."""
    return row["region"] + ("?" if row["uncertain"] else "")


def shift_table(study: Study, per_source: dict[str, list[dict]]) -> tuple[list[dict], str, int, int]:
    """Fig. 2 as a table: per subtask (ALL rows excluded) each source's Gain_DA, Gain_CoT and region, and the
    shift from the first source; returns (csv rows, markdown, subtasks that moved, subtasks)."""
    names = [s for s, _ in study.sources]
    by_key = {s: {(r["domain"], r["subtask"]): r for r in per_source[s] if r["subtask"] != "ALL"} for s in names}
    keys = [k for k in by_key[names[0]] if all(k in by_key[s] for s in names)]
    csv_rows, md_rows, moved = [], [], 0
    for key in keys:
        rows = [by_key[s][key] for s in names]
        regions = [r["region"] for r in rows]
        shifted = len(set(regions)) > 1
        moved += shifted
        csv = {"study": study.name, "domain": key[0], "subtask": key[1], "planted": rows[0]["planted"],
               "shifted": shifted}
        cells = [key[0], key[1]]
        for s, r in zip(names, rows):
            csv.update({f"{s} {g}": r[g] for g in ("Gain_DA", "Gain_CoT", "GAP_DT", "region")})
            cells += [fmt(r["Gain_DA"], r["Gain_DA_std"]), fmt(r["Gain_CoT"], r["Gain_CoT_std"]), _region(r)]
        csv_rows.append(csv)
        md_rows.append(cells + [" → ".join(regions) if shifted else "="])
    columns = ["domain", "subtask", *[f"{s} {c}" for s in names for c in ("Gain_DA", "Gain_CoT", "region")], "shift"]
    return csv_rows, markdown(columns, md_rows), moved, len(keys)


def gain_token_table(study: Study, per_source: dict[str, list[dict]]) -> tuple[list[dict], str]:
    """Fig. 3 as a table: per task (ALL rows included) each source's Gain_CoT, mean CoT tokens and Gain_token;
    csv: one row per (source, task) with every number of `source_rows`."""
    names = [s for s, _ in study.sources]
    csv_rows = [{"study": study.name, "source": s, **r} for s in names for r in per_source[s]]
    by_key = {s: {(r["domain"], r["subtask"]): r for r in per_source[s]} for s in names}
    md_rows = []
    for key in (k for k in by_key[names[0]] if all(k in by_key[s] for s in names)):
        cells = [*key, fmt(by_key[names[0]][key]["base_cot_tokens"], digits=1)]
        for s in names:
            r = by_key[s][key]
            cells += [fmt(r["Gain_CoT"], r["Gain_CoT_std"]), fmt(r["cot_tokens"], r["cot_tokens_std"], 1),
                      fmt(r["Gain_token"])]
        md_rows.append(cells)
    columns = ["domain", "subtask", "base CoT tokens",
               *[f"{s} {c}" for s in names for c in ("Gain_CoT", "CoT tokens", "Gain_token")]]
    return csv_rows, markdown(columns, md_rows)


def paper_fig3(definition: str) -> str:
    """The paper's Fig. 3 numbers with the mean CoT lengths they imply under ``definition`` (only for the
    length-proportional ones: ``per_100_tokens`` L = 100 Gain_CoT / Gain_token, ``per_token`` L = Gain_CoT /
    Gain_token)."""
    scale = {"per_100_tokens": 100.0, "per_token": 1.0}.get(definition)
    rows = []
    for task, data in PAPER_FIG3.items():
        rows.append([task, *(f"{v:.2f}" for pair in data for v in pair),
                     *((f"{scale * c / t:.0f}" for c, t in data) if scale else ("—", "—"))])
    return ("### Paper Fig. 3 (MathVista, Qwen2.5-VL-7B; digest §7): reference only\n\n" + markdown(
        ["task", "Data1 Gain_CoT", "Data1 Gain_token", "Data2 Gain_CoT", "Data2 Gain_token",
         f"Data1 implied CoT tokens ({definition})", f"Data2 implied CoT tokens ({definition})"], rows))


def write_study(studies: list[Study], out, definition: str | None = None, paper: bool = False) -> tuple[list, str]:
    """Write the Fig. 2 / Fig. 3 tables and figures of ``studies`` into ``out``; returns (files, markdown).
    Nothing is written (``([], "")``) without a study."""
    import pandas as pd

    from dualtune.reproduce import fig2_3
    from dualtune.reproduce.figures import slug

    if not studies:
        return [], ""
    first = studies[0].sources[0][1][0]
    definition = definition or first.get("study.gain_token") or DEFAULT_GAIN_TOKEN
    if definition not in GAIN_TOKEN:
        raise ValueError(f"unknown Gain_token definition {definition!r}; registered: {sorted(GAIN_TOKEN)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shift_csv, token_csv, files = [], [], []
    shift_md = ["## Fig. 2: the region shift between CoT sources (thinking patterns)\n"]
    token_md = [f"## Fig. 3: Gain_CoT and Gain_token per task (Gain_token = `{definition}`, dualtune.gains)\n"]
    for study in studies:
        per_source = {s: source_rows(runs, definition) for s, runs in study.sources}
        seeds = "; ".join(f"{s}: seeds {[r.seed for r in runs]}" for s, runs in study.sources)
        rows, md, moved, total = shift_table(study, per_source)
        shift_csv += rows
        shift_md.append(f"### {study.name}\n\n{md}\n{moved}/{total} subtasks change region ({seeds}; "
                        "mean ± std over seeds; region: all seeds' items pooled, or the seed means' without prediction files; "
                        "`?`: a deciding CI reaches 0)\n")
        rows, md = gain_token_table(study, per_source)
        token_csv += rows
        token_md.append(f"### {study.name}\n\n{md}\nCoT tokens: mean generated tokens of the tuned model's CoT-mode "
                        f"answers (base: the base model's); Gain_token from the seed means ({seeds}).\n")
        tag = slug(study.name)
        files += [fig2_3.plot_region_shift(per_source, out / f"fig2_region_shift_{tag}.png",
                                           f"Fig. 2: region shift between CoT sources ({study.name})"),
                  fig2_3.plot_gain_token(per_source, out / f"fig3_gain_token_{tag}.png",
                                         f"Fig. 3: Gain_CoT and Gain_token ({study.name}; {definition})")]
    if paper:
        token_md.append(paper_fig3(definition))
    text = "\n".join(shift_md) + "\n" + "\n".join(token_md)
    for name, rows, md in (("fig2_region_shift", shift_csv, "\n".join(shift_md)),
                           ("fig3_gain_token", token_csv, "\n".join(token_md))):
        (out / f"{name}.md").write_text(md)
        pd.DataFrame(rows).to_csv(out / f"{name}.csv", index=False)
        files += [out / f"{name}.md", out / f"{name}.csv"]
    return [f for f in files if f is not None], text


def main(argv=None) -> int:
    """``python -m dualtune.studies.thinking_patterns``: the study from one run dir (or seeds' dir) per source."""
    parser = argparse.ArgumentParser(prog="python -m dualtune.studies.thinking_patterns", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="per CoT source: a train run dir, or a dir above its seeds' run dirs")
    parser.add_argument("--labels", nargs="+", help="one name per source (default: domain.cot_source, 'own')")
    parser.add_argument("--out", default="thinking_patterns", help="output dir (default: ./thinking_patterns)")
    parser.add_argument("--gain-token", choices=sorted(GAIN_TOKEN), help="Gain_token definition (dualtune.gains)")
    parser.add_argument("--paper-numbers", action="store_true", help="add the paper's Fig. 3 numbers")
    args = parser.parse_args(argv)
    if len(args.runs) < 2 or (args.labels and len(args.labels) != len(args.runs)):
        parser.error("give two or more run dirs (one per CoT source) and, with --labels, one label per run dir")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        studies = cli_studies(args.runs, args.labels)
    except FileNotFoundError as err:
        parser.error(str(err))
    if not studies:
        parser.error("the run dirs share no configuration (model / domain / mode / algo / selection)")
    files, text = write_study(studies, args.out, args.gain_token, args.paper_numbers)
    print(text)
    print(f"written to {args.out}: " + ", ".join(Path(f).name for f in files))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
