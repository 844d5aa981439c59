"""Build what the main job and the tests need once, explicitly: the embedded default base model.

    python prepare.py                   # the default tiny base model into $DUALTUNE_CACHE (no-op when cached)
    python prepare.py model=qwen2_5_vl_3b   # a real model: just checks its path resolves (nothing to build)
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="prepare")
def main(cfg: DictConfig) -> None:
    """Resolve (and for the tiny model build and cache) the configured base model; print where it is."""
    from dualtune.recipes.prepare import prepare

    prepare(cfg)


if __name__ == "__main__":
    main()
