"""Write a sweep's tables (md + csv) and figures (png): `reproduce` is ``python -m dualtune.reproduce``.

Output files (under ``<sweep>/reproduce`` or ``out``): ``runs.csv`` (every run: dir, configuration, seed,
model, domain, mode, algo, selection, init_from, overrides), ``table1_modes.{md,csv}``,
``table3_boundary.{md,csv}`` (when a run has a Thinking-Boundary report), ``sweep.{md,csv}``,
``auto_think.{md,csv}`` (when a tuned model was evaluated in auto mode), ``paper_reference.{md,csv}`` (with
``paper_numbers``), the figures ``modes.png``, ``boundary_<configuration>.png``, ``think_rate.png``,
``sweep_curve.png`` (tuned accuracy against a swept number: budget, lambda, M), ``eval_steps.{md,csv,png}``
(accuracy during training, runs with ``algo.eval_steps``), the
thinking-pattern study where configurations differ only in ``domain.cot_source`` (Figs. 2-3:
``fig2_region_shift.*``, ``fig3_gain_token.*``, `dualtune.studies.thinking_patterns`), and ``reproduce.md``:
every table in one file (also printed).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dualtune.reproduce import figures
from dualtune.reproduce.collect import collect, group_runs
from dualtune.reproduce.tables import (auto_think_table, boundary_table, modes_table, paper_reference,
                                       step_table, sweep_table)

log = logging.getLogger(__name__)


def runs_table(runs) -> pd.DataFrame:
    """One row per collected run, identified by its resolved config."""
    keys = ("model", "domain", "mode", "algo", "selection")
    return pd.DataFrame([{"run_dir": str(r.path), "config": r.label, "seed": r.seed,
                          **{k: r.get(f"{k}.name") for k in keys}, "init_from": r.get("init_from"),
                          "has_boundary": r.boundary is not None, "overrides": " ".join(r.overrides)}
                         for r in runs])


def _write(out: Path, name: str, rows: list[dict], md: str) -> list[Path]:
    """``name.md`` and ``name.csv`` (skipped when the table is empty)."""
    if not rows:
        return []
    (out / f"{name}.md").write_text(md)
    pd.DataFrame(rows).to_csv(out / f"{name}.csv", index=False)
    return [out / f"{name}.md", out / f"{name}.csv"]


def reproduce(root, out=None, paper_numbers: bool = False, gain_token: str | None = None) -> dict:
    """Collect the runs under ``root`` and write the tables and figures into ``out`` (default
    ``<root>/reproduce``); returns ``{"out", "files", "markdown", "summary"}``. ``gain_token``: the Gain_token
    definition of the thinking-pattern study (`dualtune.gains`; None: the runs' ``study.gain_token``)."""
    from dualtune.studies.thinking_patterns import sweep_studies, write_study

    root = Path(root)
    out = Path(out) if out else root / "reproduce"
    out.mkdir(parents=True, exist_ok=True)
    runs, summary = collect(root)
    runs = [r for r in runs if out.resolve() not in r.path.resolve().parents]
    groups = group_runs(runs)
    runs_table(runs).to_csv(out / "runs.csv", index=False)
    files = [out / "runs.csv"]
    sections = [f"# Sweep {root}\n\n{summary['runs']} runs, {summary['configurations']} configurations"
                + (f"; {len(summary['without_results'])} dirs without results skipped" if summary["without_results"]
                   else "") + ". Configurations are told apart by their resolved configs (runs.csv).\n"]
    modes_rows, modes_md = modes_table(groups, paper=paper_numbers)
    boundary_rows, boundary_md = boundary_table(groups, paper=paper_numbers)
    tables = (("table1_modes", (modes_rows, modes_md)), ("table3_boundary", (boundary_rows, boundary_md)),
              ("sweep", sweep_table(groups)), ("auto_think", auto_think_table(groups)),
              ("eval_steps", step_table(groups)))
    for name, (rows, md) in tables:
        files += _write(out, name, rows, md)
        if md:
            sections.append(md)
            if name == "auto_think":
                files.append(figures.plot_think_rate(rows, out / "think_rate.png"))
            if name == "sweep":
                files.append(figures.plot_sweep_curve(groups, rows, out / "sweep_curve.png"))
            if name == "eval_steps":
                files.append(figures.plot_step_curves(rows, out / "eval_steps.png"))
    pattern_files, pattern_md = write_study(sweep_studies(groups), out, gain_token, paper=paper_numbers)
    files += pattern_files
    sections += [pattern_md] if pattern_md else []
    if paper_numbers:
        rows, md = paper_reference()
        files += _write(out, "paper_reference", rows, md)
        sections.append(md)
    files.append(figures.plot_modes(modes_rows, out / "modes.png"))
    for label, _ in groups:
        files.append(figures.plot_boundary_means(boundary_rows, label, out / f"boundary_{figures.slug(label)}.png"))
    text = "\n".join(sections)
    (out / "reproduce.md").write_text(text)
    files = [f for f in files if f is not None] + [out / "reproduce.md"]
    log.info("reproduce: %d runs, %d configurations -> %s", summary["runs"], summary["configurations"], out)
    return {"out": out, "files": files, "markdown": text, "summary": summary}
