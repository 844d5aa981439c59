"""The prepare recipe: build the configured base model (the tiny default is built and pretrained once,
then cached) so that later runs and the test suite start from a known, timed step."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from dualtune.models.base import resolve_model_path
from dualtune.utils.runtime import task_wrapper

log = logging.getLogger(__name__)


@task_wrapper
def prepare(cfg) -> str:
    """Resolve ``cfg.model`` to a checkpoint dir (building the tiny base if needed); log path and timing."""
    start = time.perf_counter()
    path = resolve_model_path(cfg.model, cfg.cache_dir)
    stats_file = Path(path) / "dualtune_pretrain.json"
    stats = json.loads(stats_file.read_text()) if stats_file.is_file() else {}
    log.info("base model %s ready in %.1fs (build stats: %s)", path, time.perf_counter() - start, stats or "n/a")
    print(f"base model: {path}")
    return path
