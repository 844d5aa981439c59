"""The selection-comparison table (dualtune.scoring.compare) on hand-written run dirs."""

from __future__ import annotations

import json

import torch

from dualtune.scoring.compare import main, run_summary


def _run_dir(path, n_kept=None, steps=7, scoring_s=None, by_subtask=None):
    path.mkdir(parents=True)
    aggregates = [{"domain": "math", "subtask": "ALL", "B_S": 10.0, "B_L": 5.0, "DT_S": 60.5, "DT_L": 70.25},
                  {"domain": "all", "subtask": "ALL", "B_S": 11.0, "B_L": 6.0, "DT_S": 61.5, "DT_L": 71.25}]
    (path / "thinking_boundary.json").write_text(json.dumps({"subtasks": [], "aggregates": aggregates, "config": {}}))
    (path / "timings.json").write_text(json.dumps({"load data": 1.0, "sft (dual)": 42.5}))
    if n_kept is not None:
        cost = {"scoring": {"total": {"wall_s": scoring_s, "generated_tokens": 10}}}
        (path / "selection.json").write_text(json.dumps({"n_kept": n_kept, "cost": cost, "by_subtask": by_subtask or {}}))
    else:  # selection=full: the size comes from the curation manifest
        (path / "curation").mkdir()
        routes = {"reasoning": ["a", "b"], "direct": ["c"], "drop": []}
        (path / "curation" / "manifest.json").write_text(json.dumps({"routes": routes}))
    (path / "checkpoints").mkdir()
    torch.save({"global_step": steps}, path / "checkpoints" / "last.ckpt")
    return path


def test_run_summary_reads_the_pooled_row_steps_and_costs(tmp_path):
    row = run_summary("rap", _run_dir(tmp_path / "rap", n_kept=17, steps=9, scoring_s=120.0))
    assert row == {"run": "rap", "train samples": 17, "SFT steps": 9, "SFT wall s": 42.5, "scoring wall s": 120.0,
                   "B_S": 11.0, "B_L": 6.0, "DT_S": 61.5, "DT_L": 71.25, "language-prior kept": None}
    # Language-prior samples (flagged in the data) the selection kept: summed over subtasks.
    by_subtask = {"a/x": {"n": 9, "kept": 4, "language_prior": 3, "language_prior_kept": 1},
                  "a/y": {"n": 9, "kept": 5, "language_prior": 2, "language_prior_kept": 2}, "a/z": {"n": 1, "kept": 1}}
    lab = run_summary("lab", _run_dir(tmp_path / "lab", n_kept=10, by_subtask=by_subtask), steps=False)
    assert lab["language-prior kept"] == 3


def test_cli_prints_one_row_per_run(tmp_path, capsys):
    _run_dir(tmp_path / "full", steps=160)
    _run_dir(tmp_path / "rand", n_kept=17, steps=9, scoring_s=None)
    table = main([f"full={tmp_path / 'full'}", f"random={tmp_path / 'rand'}"])
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| run | train samples | SFT steps")
    assert lines[2] == "| full | 3 | 160 | 42.50 | — | 11.00 | 6.00 | 61.50 | 71.25 |"
    assert capsys.readouterr().out.strip() == table
