"""Data-selection math: RAP's estimators and selectors, the released-code rules, baselines.

Pure functions on arrays and per-sample records; model rollouts and attention extraction
live elsewhere and feed these.

* :mod:`.cde` — pass rates and the Causal Discrepancy Estimator (gap p_mm - p_txt > lambda_c).
* :mod:`.ace` — the Attention Confidence Estimator on one sample's final-layer attention
  (windowed column products in log space; defaults window = min_rows = 8).
* :mod:`.drm` — the Difficulty-aware Replacement Module and ``rap_select`` (Algorithm 1:
  CDE -> ACE filter -> DRM).
* :mod:`.released_code` — the rules of RAP's released ``select/selection.py``
  (gap > 0.2, LIMR similarity gate, random 10 % right1 re-add with seed 42).
* :mod:`.baselines` — random, pass-rate band (ThinkLite-SC, informative, balanced) and
  CoT-length selectors.
* :mod:`.budget` — fit any selector's kept set to ``selection.budget`` (trim / fill orders).
* :mod:`.thinklite`, :mod:`.limr`, :mod:`.s1` — the papers' baselines: ThinkLite MCTS-lite
  iterations-to-solve, LIMR's learning-impact score, s1-style quality / difficulty / diversity.

Every selector returns ``(kept, reasons)``: a bool mask aligned with the input ids and one
reason string per sample; ``ALL_REASONS`` merges the per-module vocabularies.
"""

from dualtune.selection.ace import (
    AceResult,
    ace_column_log_psi,
    ace_from_log_psi,
    ace_score,
    aggregate_flags,
    aggregate_heads,
)
from dualtune.selection.baselines import (
    BASELINE_REASONS,
    PASS_RATE_PRESETS,
    PassRateBand,
    resolve_budget,
    select_length,
    select_pass_rate,
    select_random,
)
from dualtune.selection.budget import (
    BUDGET_REASONS,
    band_budget_orders,
    fit_to_budget,
    rap_budget_orders,
    ranked_budget_orders,
    tie_ranks,
)
from dualtune.selection.cde import GRID_EPS, cde_gap, cde_keep, pass_rate
from dualtune.selection.drm import (
    RAP_REASONS,
    ace_needed,
    difficulty,
    drm_replace,
    in_hard_band,
    is_easy,
    rap_select,
)
from dualtune.selection.limr import LIMR_REASONS, fill_trajectories, limr_scores, select_limr, trajectories_from_records
from dualtune.selection.released_code import (
    RELEASED_REASONS,
    ReleasedFeatures,
    released_code_features,
    released_code_select,
    released_reward,
)
from dualtune.selection.s1 import S1_REASONS, select_s1
from dualtune.selection.thinklite import THINKLITE_REASONS, iterations_to_solve, select_thinklite

ALL_REASONS = {**BASELINE_REASONS, **RELEASED_REASONS, **RAP_REASONS, **BUDGET_REASONS, **THINKLITE_REASONS,
               **LIMR_REASONS, **S1_REASONS}

__all__ = [
    "ALL_REASONS",
    "AceResult",
    "BASELINE_REASONS",
    "BUDGET_REASONS",
    "LIMR_REASONS",
    "S1_REASONS",
    "THINKLITE_REASONS",
    "GRID_EPS",
    "PASS_RATE_PRESETS",
    "PassRateBand",
    "RAP_REASONS",
    "RELEASED_REASONS",
    "ReleasedFeatures",
    "ace_column_log_psi",
    "ace_from_log_psi",
    "ace_needed",
    "ace_score",
    "aggregate_flags",
    "aggregate_heads",
    "band_budget_orders",
    "fill_trajectories",
    "fit_to_budget",
    "iterations_to_solve",
    "limr_scores",
    "rap_budget_orders",
    "ranked_budget_orders",
    "select_limr",
    "select_s1",
    "select_thinklite",
    "tie_ranks",
    "trajectories_from_records",
    "cde_gap",
    "cde_keep",
    "difficulty",
    "drm_replace",
    "in_hard_band",
    "is_easy",
    "pass_rate",
    "rap_select",
    "released_code_features",
    "released_code_select",
    "released_reward",
    "resolve_budget",
    "select_length",
    "select_pass_rate",
    "select_random",
]
