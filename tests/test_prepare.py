"""`python prepare.py` (run by `make base` / `make test`): builds the configured tiny base once, then reuses it."""

from __future__ import annotations

from tests.conftest import TEST_MODEL_OVERRIDES, compose


def test_prepare_returns_the_cached_base_the_recipes_use(cache_dir, tiny_model_path):
    from dualtune.models.base import resolve_model_path
    from dualtune.recipes.prepare import prepare

    cfg = compose("prepare", [f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES])
    path = prepare(cfg)
    assert path == tiny_model_path == resolve_model_path(cfg.model, cfg.cache_dir)
    assert (cfg.model.name, cfg.task_name) == ("tiny", "prepare")
