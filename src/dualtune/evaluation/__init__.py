"""Evaluation: batched greedy decoding in both answer modes, scoring, tables and a base-model cache."""

from dualtune.evaluation.cache import cached_evaluate, eval_cache_key, eval_key_fields, samples_digest
from dualtune.evaluation.runner import EvalResult, evaluate_model, read_records, write_eval

__all__ = ["EvalResult", "evaluate_model", "write_eval", "read_records", "cached_evaluate", "eval_cache_key",
           "eval_key_fields", "samples_digest"]
