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


def doc_commands(path) -> list[list[str]]:
    """The ``python <script>.py`` / ``torchrun ... train.py`` commands of a Markdown file's bash blocks, as
    argv lists: continuation lines joined, the torchrun prefix, ``-m`` and a trailing ``&`` dropped, shell
    variables set to 0 and every sweep list (``a,b,c``) cut to its first value."""
    import re
    import shlex

    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(re.sub(r"\$\{?\w+\}?", "0", line.split(" #")[0]))
            start = next((i for i, w in enumerate(words) if w.endswith(".py")), None)
            if start is None:
                continue
            args = [w for w in words[start + 1:] if w not in ("-m", "&")]
            args = [a.split("=", 1)[0] + "=" + a.split("=", 1)[1].split(",")[0] if "=" in a and "[" not in a else a
                    for a in args]
            commands.append([words[start], *args])
    return commands


def test_every_multinode_doc_command_composes():
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    commands = doc_commands(root / "docs/multinode.md")
    assert {c[0] for c in commands} == {"train.py", "score.py"} and len(commands) >= 7
    for argv in commands:
        proc = subprocess.run([sys.executable, *argv, "--cfg", "all", "--resolve"], cwd=root, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert proc.returncode == 0, (argv, proc.stderr[-2000:])
        cfg = yaml.safe_load(proc.stdout)
        if "hydra/launcher=slurm" in argv:
            launcher = cfg["hydra"]["launcher"]
            assert (launcher["nodes"], launcher["tasks_per_node"]) == (cfg["trainer"]["num_nodes"],
                                                                      cfg["trainer"]["devices"])
            assert launcher["partition"] == "gpu"
        if argv[0] == "train.py" and "trainer.num_nodes=2" in argv:
            assert (cfg["trainer"]["num_nodes"], cfg["trainer"]["devices"], cfg["ckpt_path"]) == (2, 8, "last")
