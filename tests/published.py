"""Test helpers that write tiny datasets in their owners' published layouts (a local snapshot of the hub
repo), so adapters are exercised through the real loader (``datasets.load_dataset`` on the snapshot dir), and
run the documented benchmark command (``evaluate.py domain=<name> domain.path=<snapshot>``) on them."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import yaml
from PIL import Image

from tests.conftest import compose

FAST = ["mode.max_new_tokens.direct=2", "mode.max_new_tokens.cot=3"]  # short generations of the random model


def png_bytes(color="red", size=(28, 28)) -> bytes:
    """A small solid-colour PNG, encoded."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def write_parquet_snapshot(root: Path, configs: dict[str, dict[str, list[dict]]], features=None,
                           layout: str = "{config}/{split}-00000-of-00001.parquet") -> Path:
    """A hub-style snapshot: one parquet shard per (config, split) at ``layout`` and a README.md whose YAML
    header declares the configs and their ``data_files``, as the hub's parquet datasets do.

    ``configs`` maps config name -> split -> rows (dicts as published); ``features`` (a
    ``datasets.Features``) types the columns, e.g. ``Image()`` for an image column, or maps config name ->
    ``Features`` when the configs differ (e.g. MathVerse's text-only config has no image column type).
    """
    from datasets import Dataset, Features

    root.mkdir(parents=True, exist_ok=True)
    card = []
    for config, splits in configs.items():
        files = []
        for split, rows in splits.items():
            rel = layout.format(config=config, split=split)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            typed = features if features is None or isinstance(features, Features) else features[config]
            Dataset.from_list(rows, features=typed).to_parquet(str(root / rel))
            files.append({"split": split, "path": rel})
        card.append({"config_name": config, "data_files": files})
    header = yaml.safe_dump({"configs": card}, sort_keys=False)
    (root / "README.md").write_text(f"---\n{header}---\n# test snapshot\n")
    return root


DATA_LAYOUT = "data/{split}-00000-of-00001.parquet"  # a single-config hub repo's shards (config "default")


def write_default_snapshot(root: Path, splits: dict[str, list[dict]], features=None) -> Path:
    """A single-config hub snapshot (`write_parquet_snapshot` with config ``default`` at `DATA_LAYOUT`):
    ``splits`` maps split -> rows as published."""
    return write_parquet_snapshot(root, {"default": splits}, features, layout=DATA_LAYOUT)


def evaluate_snapshot(tmp_path: Path, domain: str, snapshot, ckpt: str, *overrides: str):
    """``evaluate.py domain=<domain> domain.path=<snapshot> checkpoint=<ckpt>`` (plus ``overrides``) with short
    generations, writing under ``tmp_path``; returns (the EvalResult, predictions.jsonl as a DataFrame, its
    evaluated rows)."""
    from dualtune.recipes.evaluate import evaluate

    result = evaluate(compose("evaluate", [f"domain={domain}", f"domain.path={snapshot}", *overrides,
                                           f"checkpoint={ckpt}", f"cache_dir={tmp_path / 'cache'}",
                                           f"output_dir={tmp_path / 'out'}", *FAST]))
    preds = pd.read_json(tmp_path / "out/predictions.jsonl", lines=True)
    return result, preds, preds[preds["status"] == "evaluated"]
