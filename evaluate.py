"""Evaluate entry point: a base model or a tuned checkpoint on a domain's test split, in both modes.

    python evaluate.py                                   # tiny base model, all lab domains
    python evaluate.py checkpoint=outputs/.../model domain=math
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Run the evaluation recipe configured by ``cfg``."""
    from dualtune.recipes.evaluate import evaluate

    evaluate(cfg)


if __name__ == "__main__":
    main()
