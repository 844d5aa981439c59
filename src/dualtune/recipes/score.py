"""The score recipe: score a domain's training split with the base model, then select.

    python score.py selection=rap domain=math
    python score.py selection=rap score.num_shards=4 score.shard_id=2   # one shard of four
"""

from __future__ import annotations

import logging

from dualtune.config_checks import check_config, require_data
from dualtune.data.sources import limit_samples, load_domain
from dualtune.recipes.select import run_selection
from dualtune.scoring.planted import planted_flags, write_planted
from dualtune.scoring.runner import score_settings
from dualtune.utils.runtime import run_dir, seed_everything, stage, task_wrapper

log = logging.getLogger(__name__)


@task_wrapper
def score(cfg):
    """Score (reusing / resuming the score store) and select; returns the SelectionResult or None."""
    check_config(cfg, "score")
    seed_everything(cfg.seed)
    out = run_dir(cfg)
    with stage("load data"):
        skipped: dict = {}
        data = load_domain(cfg.domain, cfg.cache_dir, seed=cfg.seed, strict=cfg.strict, skipped=skipped)
        data = require_data(cfg, data, "score", skipped)
        rows = limit_samples(data["train"], score_settings(cfg)["limit"])
    with stage(f"score and select ({cfg.selection.name})"):
        result = run_selection(cfg, rows, out)
    if result is None:
        log.info("shard %s stored; the selection is written once every shard is scored", cfg.score.shard_id)
        return None
    if flags := planted_flags(rows):  # a domain with planted kinds (selection lab): RAP vs the planted truth
        report = write_planted(out, result.table, flags)
        log.info("planted flags: precision / recall %s (planted.md)", {k: (d["precision"], d["recall"])
                                                                       for k, d in report["detectors"].items()})
    log.info("kept %d/%d training samples; outputs in %s", result.summary["n_kept"], result.summary["n_total"], out)
    return result
