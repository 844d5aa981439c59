"""Train entry point. Default: Dual Tuning on the embedded tiny model over all lab domains.

    python train.py                                  # the main job (CPU, minutes)
    python train.py model=qwen2_5_vl_3b trainer=gpu domain=spatial mode=cot
    python train.py -m mode=direct,cot,dual          # Hydra multirun
    python train.py --config-dir sweeps/dual_tuning --config-name table1_2   # a paper table (sweeps/README.md)

Returns the float at config key ``objective`` (e.g. boundary.ALL.DT_L) for Hydra sweepers such as Optuna.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Run the training recipe configured by ``cfg``; return its objective (None when ``objective`` is null)."""
    from dualtune.objective import objective_value, run_results
    from dualtune.recipes.train import train
    from dualtune.utils.distributed import is_global_zero
    from dualtune.utils.runtime import run_dir

    train(cfg)
    if cfg.get("objective") is None or not is_global_zero():  # other DDP ranks write no report
        return None
    return objective_value(cfg.objective, run_results(run_dir(cfg)))


if __name__ == "__main__":
    main()
