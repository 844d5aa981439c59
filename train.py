"""Train entry point. Default: Dual Tuning on the embedded tiny model over all lab domains.

    python train.py                                  # the main job (CPU, minutes)
    python train.py model=qwen2_5_vl_3b trainer=gpu domain=spatial mode=cot
    python train.py -m mode=direct,cot,dual          # Hydra multirun
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> None:
    """Run the training recipe configured by ``cfg``."""
    from dualtune.recipes.train import train

    train(cfg)


if __name__ == "__main__":
    main()
