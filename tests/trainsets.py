"""Test helpers for training sets published without a test split: write jsonl / json records and image
folders as published, and run the documented commands (``score`` with selection=rap, ``train`` with
algo.max_steps=2 eval.enabled=false) on a snapshot with the random tiny checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from PIL import Image

from tests.conftest import compose
from tests.published import FAST

RAP = ["selection=rap", "selection.rollouts.num_generations=2", "selection.rollouts.max_new_tokens=6"]


def write_png(path: Path, color="red", size=(28, 28)) -> Path:
    """A small solid-colour PNG at ``path`` (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_jsonl(path: Path, records: list, raw_lines=()) -> Path:
    """``records`` one JSON object a line, then ``raw_lines`` verbatim (malformed lines for fault tests)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in records] + list(raw_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_score_and_train(tmp_path: Path, domain: str, snapshot, ckpt: str) -> tuple[pd.DataFrame, Path]:
    """``score.py selection=rap`` then ``train.py algo.max_steps=2 eval.enabled=false`` on ``snapshot``;
    returns (the score table, the train run dir)."""
    from dualtune.recipes.score import score
    from dualtune.recipes.train import train

    common = [f"cache_dir={tmp_path / 'cache'}", f"domain={domain}", f"domain.path={snapshot}",
              f"model.path={ckpt}", *FAST]
    result = score(compose("score", [*common, f"output_dir={tmp_path / 'score'}", *RAP,
                                     f"selection.scores_dir={tmp_path / 'scores'}", "score.plots=false"]))
    assert result is not None and result.summary["n_total"] > 0
    table = pd.read_parquet(tmp_path / "score" / "scores.parquet")
    out = tmp_path / "train"
    report = train(compose("train", [*common, f"output_dir={out}", "eval.enabled=false", "algo.max_steps=2",
                                     "algo.batch_size=4", "logger=none"]))
    assert report is None  # no evaluation, so no Thinking-Boundary report
    assert (out / "model").is_dir() and (out / "timings.json").is_file()
    return table, out
