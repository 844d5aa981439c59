"""Beyond one machine: the SLURM launcher config composes (hydra-submitit-launcher) and trainer.num_nodes
reaches Lightning."""

from __future__ import annotations

from omegaconf import OmegaConf

from tests.conftest import compose


def test_slurm_launcher_composes_from_the_trainer_config():
    cfg = compose("train", ["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2", "trainer.devices=8",
                            "hydra.launcher.partition=gpu"], return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 8, 8)
    assert launcher["partition"] == "gpu"
    score = compose("score", ["hydra/launcher=slurm", "score.num_shards=4"], return_hydra_config=True)
    assert OmegaConf.to_container(score.hydra.launcher, resolve=True)["nodes"] == 1


def test_num_nodes_reaches_the_lightning_trainer(tmp_path):
    from dualtune.recipes.sft import build_trainer

    cfg = compose("train", ["trainer.strategy=ddp", "trainer.num_nodes=2"])
    assert build_trainer(cfg, tmp_path).num_nodes == 2
