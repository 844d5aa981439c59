"""Pick the training samples for a run from the configured ``selection`` method."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def select_training_rows(cfg, train_rows: list[dict], out_dir) -> list[dict]:
    """Return the training rows chosen by ``cfg.selection`` (``full`` keeps all)."""
    name = cfg.selection.name
    if name == "full":
        return list(train_rows)
    raise ValueError(f"selection={name!r} is not available in train.py yet")
