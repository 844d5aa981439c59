"""Test helpers that write tiny datasets in their owners' published layouts (a local snapshot of the hub
repo), so adapters are exercised through the real loader (``datasets.load_dataset`` on the snapshot dir)."""

from __future__ import annotations

import io
from pathlib import Path

import yaml
from PIL import Image


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
