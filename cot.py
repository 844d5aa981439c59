"""CoT-synthesis entry point: a teacher writes rationales for a domain's training split (rejection sampling,
``cot.tries`` tries per sample), stored as a CoT source that training can use instead of the shipped ones.

    python cot.py domain=spatial cot.source_name=spatial_tiny
    python cot.py domain=mm_eureka teacher=qwen2_5_vl_7b generation=vllm cot.tries=8   # in .venv-vllm
    python cot.py domain=spatial cot.variant=condensed cot.source_name=spatial_condensed
    python train.py domain=spatial domain.cot_source=spatial_tiny
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="cot")
def main(cfg: DictConfig) -> None:
    """Run the CoT-synthesis recipe configured by ``cfg``."""
    from dualtune.recipes.cot import cot

    cot(cfg)


if __name__ == "__main__":
    main()
