"""Score entry point: per-sample data-selection scores (RAP's CDE / ACE / DRM and baselines), then select.

    python score.py selection=rap domain=math
    python score.py selection=rap selection.variant=released_code
    python score.py selection=pass_rate selection.preset=informative
    python score.py selection=boundary selection.manifest=<train run dir>/curation
    python score.py selection=rap score.num_shards=4 score.shard_id=0   # sharded scoring
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="score")
def main(cfg: DictConfig) -> None:
    """Run the score recipe configured by ``cfg``."""
    from dualtune.recipes.score import score

    score(cfg)


if __name__ == "__main__":
    main()
