"""Score entry point: per-sample data-selection scores (RAP's CDE / ACE / DRM and baselines).

    python score.py selection=rap domain=math
"""

import sys

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="score")
def main(cfg: DictConfig) -> None:
    """Not implemented yet: RAP scoring lands with issue 4."""
    print("not implemented yet: see issue 4 (RAP data selection in score.py)", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
