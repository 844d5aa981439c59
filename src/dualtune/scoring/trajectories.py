"""Reward trajectories for ``selection=limr`` (LIMR's learning-impact score needs r_i(k) per epoch k).

Two sources, in this order:

* ``selection.rewards_file``: logged per-sample rewards of a short full-data RL run — a ``.jsonl`` /
  ``.parquet`` / ``.csv`` with columns ``id``, ``selection.epoch_key`` (default ``epoch``; ``step`` works too)
  and ``selection.reward_key`` (default ``reward``, the total; ``accuracy`` = the accuracy reward alone);
  several rows of one (id, epoch) are averaged; gaps are forward-filled
  (``selection.limr.trajectories_from_records``). The GRPO trainer writes such a log: a ``train.py algo=grpo``
  run dir (or its ``sample_rewards.jsonl``, `training.callbacks.SampleRewardLog`) is a valid rewards_file.
* otherwise ``selection.checkpoints``: saved models of that run (``<run dir>/model`` dirs of ``train.py``
  runs with growing ``algo.max_steps``, or any HF dirs of the trained model's family). Each checkpoint's
  multimodal pass rate over M rollouts (the score store, keyed by the checkpoint's fingerprint) is one
  point of the trajectory; ``selection.include_base`` prepends the scorer / base model's own pass rate.
  This is an evaluation-side stand-in for LIMR's training-time rewards (same samples, same reward, but
  fresh rollouts at fixed checkpoints instead of the rollouts the run trained on).
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import numpy as np
from omegaconf import open_dict

from dualtune.selection.limr import trajectories_from_records

log = logging.getLogger(__name__)


def read_reward_log(path) -> list[dict]:
    """Records of a reward log (.jsonl, .parquet or .csv), or of a GRPO run dir's ``sample_rewards.jsonl``."""
    from dualtune.training.callbacks import SAMPLE_REWARDS_FILE

    path = Path(path)
    if path.is_dir():
        path = path / SAMPLE_REWARDS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"selection.rewards_file={path}: no such file")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    import pandas as pd

    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return df.to_dict("records")


def limr_trajectories(cfg, plan, rows: list[dict], base_table) -> tuple[np.ndarray, dict]:
    """``[N, K]`` reward trajectories of ``rows`` and a JSON-able description of where they came from."""
    from dualtune.scoring.runner import load_scores

    sel = cfg.selection
    ids = [r["id"] for r in rows]
    if sel.get("rewards_file"):
        key, reward_key = str(sel.get("epoch_key") or "epoch"), str(sel.get("reward_key") or "reward")
        traj = trajectories_from_records(ids, read_reward_log(sel.rewards_file), epoch_key=key, reward_key=reward_key)
        return traj, {"source": "rewards_file", "path": str(sel.rewards_file), "epoch_key": key,
                      "reward_key": reward_key}
    checkpoints = list(sel.get("checkpoints") or [])
    if not checkpoints:
        raise ValueError("selection=limr needs reward trajectories: selection.rewards_file=<per-sample reward log> "
                         "or selection.checkpoints=[<model dir>, ...] (checkpoints of a short full-data RL run)")
    columns, stores = [], []
    if bool(sel.get("include_base", True)) and base_table is not None:
        columns.append(base_table["p_mm"].to_numpy(dtype=float))
        stores.append("base")
    for ckpt in checkpoints:
        ckpt_cfg = copy.deepcopy(cfg)
        with open_dict(ckpt_cfg):
            ckpt_cfg.model.path = str(ckpt)
        run = load_scores(ckpt_cfg, plan, rows)
        if run.table is None:
            raise RuntimeError(f"checkpoint {ckpt}: scores incomplete (sharded scoring is not supported for limr)")
        columns.append(run.table["p_mm"].to_numpy(dtype=float))
        stores.append(str(run.store.path))
        log.info("limr: scored checkpoint %s (mean pass rate %.3f)", ckpt, float(np.nanmean(columns[-1])))
    return np.stack(columns, axis=1), {"source": "checkpoints", "checkpoints": [str(c) for c in checkpoints],
                                       "include_base": bool(sel.get("include_base", True)), "stores": stores}
