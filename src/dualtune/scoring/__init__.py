"""Data-selection scoring with a model: rollouts, attention, score store, provenance, plots.

The pure selection math lives in :mod:`dualtune.selection`; this package feeds it.

* :mod:`.rollouts` — multimodal / text-only rollouts, judging, the shared rollout cache.
* :mod:`.attention` — teacher-forced eager-attention pass for ACE (final layer by default).
* :mod:`.pipeline` — batch-by-batch scoring into the store.
* :mod:`.store` — sharded, resumable, atomic score store.
* :mod:`.provenance` — provenance.json, its hash, store reuse.
* :mod:`.runner` — config -> plan -> reuse / resume / score -> score table.
* :mod:`.selectors` — ``selection=<name>`` dispatch onto the pure selectors.
* :mod:`.outputs`, :mod:`.plots` — run-dir files (scores.parquet, selection.json, plots/).

See ``README.md`` next to this file for the layout on disk and the ACE window defaults.
"""

from dualtune.scoring.attention import AceSettings, ace_for_rollouts, layer_attention, reasoning_span
from dualtune.scoring.outputs import update_selection_cost
from dualtune.scoring.provenance import ScoringPlan, build_provenance, provenance_hash, resolve_store
from dualtune.scoring.rollouts import (
    CONDITIONS, HFRolloutBackend, RolloutCache, RolloutSettings, collect_rollouts, strip_images)
from dualtune.scoring.runner import load_scores, score_settings, scoring_plan
from dualtune.scoring.selectors import SELECTORS, apply_selector, scoring_needs
from dualtune.scoring.store import ScoreStore, shard_of

__all__ = [
    "AceSettings", "CONDITIONS", "HFRolloutBackend", "RolloutCache", "RolloutSettings", "SELECTORS",
    "ScoreStore", "ScoringPlan", "ace_for_rollouts", "apply_selector", "build_provenance", "collect_rollouts",
    "layer_attention", "load_scores", "provenance_hash", "reasoning_span", "resolve_store", "score_settings",
    "scoring_needs", "scoring_plan", "shard_of", "strip_images", "update_selection_cost",
]
