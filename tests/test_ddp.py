"""2-process CPU DDP main job (Lightning's subprocess launcher re-runs `python train.py` per rank): every rank
finishes, evaluation and the report happen once on rank 0, and a rank that fails makes the run fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import TEST_MODEL_OVERRIDES

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["experiment=smoke", "domain=math", "domain.n_train_per_subtask=2", "domain.n_test_per_subtask=2",
         "eval.n_boot=20", "trainer.devices=2", "trainer.strategy=ddp", "trainer.accelerator=cpu"]


def run_ddp(cache_dir, run_dir: Path, env_extra=None) -> subprocess.CompletedProcess:
    """``python train.py`` on 2 CPU processes with the test model, writing into ``run_dir``."""
    cmd = [sys.executable, str(ROOT / "train.py"), f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES, *SMALL,
           f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_two_process_ddp_main_job_finishes_on_every_rank(cache_dir, tiny_model_path, tmp_path):
    run = tmp_path / "run"
    proc = run_ddp(cache_dir, run)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output and "all 1 launched ranks finished cleanly" in output
    assert (run / "model/config.json").exists() and (run / "thinking_boundary.json").exists()
    # Evaluation ran once: one record per (test item, mode), not one per rank.
    preds = pd.read_json(run / "eval_tuned/predictions.jsonl", lines=True)
    assert len(preds) == len(preds[["id", "mode"]].drop_duplicates()) == 2 * 2 * 4
    assert json.loads((run / "thinking_boundary.json").read_text())["subtasks"]


def test_a_rank_that_fails_after_training_fails_the_run(cache_dir, tiny_model_path, tmp_path):
    # Rank 1 (LOCAL_RANK=1) exits with status 3 when it ends: a crash after training, as in the issue.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import atexit, os\nif os.environ.get('LOCAL_RANK') == '1':\n    atexit.register(lambda: os._exit(3))\n")
    pythonpath = os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")])
    proc = run_ddp(cache_dir, tmp_path / "run", {"PYTHONPATH": pythonpath})
    assert proc.returncode != 0
    assert "distributed run failed on local rank 1" in proc.stdout + proc.stderr
