"""Lightning callbacks shared by the recipes."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import lightning as L

from dualtune.utils.io import atomic_write_text

log = logging.getLogger("dualtune")


class ProgressLog(L.Callback):
    """Log step / total, loss and ETA every ``every`` steps — visible in log files and CI, unlike a TTY bar."""

    def __init__(self, every: int = 25, name: str = "train"):
        self.every, self.name = max(1, int(every)), name
        self._start = None

    def on_train_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        total = trainer.estimated_stepping_batches
        if step == 0 or (step % self.every and step != total):
            return
        elapsed = time.perf_counter() - (self._start or time.perf_counter())
        eta = elapsed / step * max(0, total - step)
        loss = trainer.callback_metrics.get("train/loss_step", trainer.callback_metrics.get("loss"))
        loss_txt = f"{float(loss):.4f}" if loss is not None else "n/a"
        log.info("%s step %d/%d  loss %s  elapsed %.0fs  eta %.0fs", self.name, step, total, loss_txt, elapsed, eta)


# Metrics copied from the step's logged values into the GRPO reward curve (per-reward means are added by prefix).
CURVE_METRICS = ("reward", "reward_std", "frac_reward_zero_std", "completions/mean_length", "loss")


class RowsInCheckpoint(L.Callback):
    """A callback whose ``rows`` (dicts, one per step or record) are saved in the checkpoint and restored on
    resume (``restored`` then True), so a resumed run keeps the rows of the checkpointed steps."""

    def __init__(self):
        self.rows: list[dict] = []
        self.restored = False

    def state_dict(self) -> dict:
        """The rows so far (saved in the checkpoint)."""
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the rows of the checkpointed steps."""
        self.rows = [dict(r) for r in state_dict.get("rows", [])]
        self.restored = True


class RewardCurve(RowsInCheckpoint):
    """Records, after every rollout batch, the step's mean reward and companions (see `CURVE_METRICS`).

    The rows are part of the checkpoint (``state_dict``), so a run resumed from step k keeps steps 1..k and
    appends k+1..: every step exactly once, even after a kill -9 that lost the steps after the checkpoint.
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        """Append this step's logged values; per-mode rewards only for modes present in the batch."""
        metrics = trainer.callback_metrics
        # Batches done in this fit, counted across a resume (the loop's progress is checkpointed).
        step = trainer.fit_loop.epoch_loop.batch_progress.total.processed
        row = {"step": step, "global_step": trainer.global_step}
        for key, value in metrics.items():
            if key in CURVE_METRICS or (key.startswith("rewards/") and key.endswith("/mean")):
                row[key] = float(value)
        if pl_module.per_mode_metrics:  # only modes of this batch (an absent one would show a stale value)
            for mode in pl_module.last_modes:
                key = f"modes/{mode}/reward"
                if key in metrics:
                    row[key] = float(metrics[key])
        self.rows = [r for r in self.rows if r["step"] < step] + [row]


SAMPLE_REWARDS_FILE = "sample_rewards.jsonl"


class SampleRewardLog(RowsInCheckpoint):
    """Per-sample rewards of a GRPO run, one record per prompt and rollout step: ``{id, step, epoch, mode,
    reward, <reward function>...}`` (the module's ``last_sample_rewards``: means over the prompt's completions).

    Written to ``<out_dir>/sample_rewards.jsonl`` at the end of the fit (rank 0, every rank's records);
    ``selection=limr selection.rewards_file=<run dir>`` reads it as LIMR's reward trajectories. Like
    `RewardCurve`, the records are part of the checkpoint, so a resumed run logs every step exactly once.
    """

    def __init__(self, out_dir=None):
        super().__init__()
        self.out_dir = None if out_dir is None else Path(out_dir)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        """Add this rollout step's per-prompt records (dropping any a crashed attempt left for this step)."""
        step = trainer.fit_loop.epoch_loop.batch_progress.total.processed
        fresh = [{**record, "step": step, "epoch": trainer.current_epoch}
                 for record in getattr(pl_module, "last_sample_rewards", [])]
        self.rows = [r for r in self.rows if r["step"] < step] + fresh

    def on_train_end(self, trainer, pl_module):
        """Gather the ranks' records and write the file (rank 0)."""
        records = self.rows
        if trainer.world_size > 1:
            import torch.distributed as dist

            gathered = [None] * trainer.world_size
            dist.all_gather_object(gathered, records)
            records = sorted((r for part in gathered for r in part), key=lambda r: r["step"])
        if trainer.is_global_zero and self.out_dir is not None:
            text = "".join(json.dumps(r) + "\n" for r in records)
            atomic_write_text(self.out_dir / SAMPLE_REWARDS_FILE, text)


EVAL_STEPS_FILE = "eval_steps.csv"


class PeriodicEval(RowsInCheckpoint):
    """Evaluates the policy every ``every`` training batches (GRPO: rollout steps; TRL's ``eval_steps``) with
    ``evaluate(model) -> [{"mode", "accuracy", "n"}, ...]`` on rank 0, logs ``eval/<mode>/accuracy`` and, at the
    end of the fit, writes ``<out_dir>/eval_steps.csv`` (step, mode, accuracy, n): the accuracy-vs-steps curve
    of RAP's Fig. 1a. The rows are part of the checkpoint, so a resumed run keeps the earlier points."""

    def __init__(self, every: int, evaluate, out_dir=None):
        if int(every) <= 0:
            raise ValueError(f"eval_steps must be a positive number of steps, got {every}")
        super().__init__()
        self.every, self.evaluate = int(every), evaluate
        self.out_dir = None if out_dir is None else Path(out_dir)

    def on_train_start(self, trainer, pl_module):
        """Refuse sharded weights: rank 0 alone cannot generate from an FSDP-sharded policy."""
        from lightning.pytorch.strategies import FSDPStrategy

        if isinstance(trainer.strategy, FSDPStrategy):
            raise ValueError("eval_steps needs the whole policy on rank 0; under FSDP evaluate saved checkpoints "
                             "instead (trainer.checkpoint_every_n_steps + evaluate.py)")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        """Every ``every`` batches: evaluate (rank 0), log, keep the rows; the other ranks wait."""
        step = trainer.fit_loop.epoch_loop.batch_progress.total.processed
        if step % self.every:
            return
        if trainer.is_global_zero:
            start = time.perf_counter()
            rows = [{"step": step, **row} for row in self.evaluate(pl_module.model)]
            self.rows = [r for r in self.rows if r["step"] < step] + rows
            metrics = {f"eval/{r['mode']}/accuracy": float(r["accuracy"]) for r in rows}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
            log.info("eval at step %d (%.1fs): %s", step, time.perf_counter() - start,
                     ", ".join(f"{r['mode']} {r['accuracy']:.2f}" for r in rows))
        trainer.strategy.barrier()

    def on_train_end(self, trainer, pl_module):
        """Write the curve (rank 0)."""
        if trainer.is_global_zero and self.out_dir is not None and self.rows:
            import pandas as pd

            text = pd.DataFrame(self.rows).to_csv(index=False)
            atomic_write_text(self.out_dir / EVAL_STEPS_FILE, text)


TOKENS_FILE = "train_tokens.json"


def batch_tokens(batch, pl_module) -> int:
    """Tokens one training batch processed: an encoded SFT batch's non-pad tokens (``attention_mask`` sum,
    image placeholders included); a GRPO rollout batch's prompt + completion tokens of every rollout (the
    module's ``last_step_tokens``, counted once however many ``mu`` updates reuse them)."""
    if isinstance(batch, dict) and "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int(getattr(pl_module, "last_step_tokens", 0) or 0)


class TokenCount(L.Callback):
    """Counts the tokens a fit processed (`batch_tokens`, summed over batches and, at the end, over ranks) and
    writes ``{"tokens", "batches"}`` to ``<out_dir>/train_tokens.json`` on rank 0. The count is saved in
    checkpoints, so a resumed run reports the whole run's tokens."""

    def __init__(self, out_dir=None):
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.tokens, self.batches = 0, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        """Add this batch's tokens."""
        self.tokens += batch_tokens(batch, pl_module)
        self.batches += 1

    def on_train_end(self, trainer, pl_module):
        """Sum over ranks and write the file (rank 0)."""
        total = self.tokens
        if trainer.world_size > 1:
            import torch

            total = int(trainer.strategy.reduce(torch.tensor(float(total), device=pl_module.device), reduce_op="sum"))
        if trainer.is_global_zero and self.out_dir is not None:
            atomic_write_text(self.out_dir / TOKENS_FILE, json.dumps({"tokens": int(total), "batches": self.batches}))

    def state_dict(self) -> dict:
        """The counts so far (saved in the checkpoint)."""
        return {"tokens": self.tokens, "batches": self.batches}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the counts of the checkpointed steps."""
        self.tokens, self.batches = int(state_dict.get("tokens", 0)), int(state_dict.get("batches", 0))


def read_train_tokens(*dirs) -> int | None:
    """Sum of the ``train_tokens.json`` counts in ``dirs`` (e.g. a run dir and its ``sft/`` stage); None if none."""
    counts = [json.loads((Path(d) / TOKENS_FILE).read_text())["tokens"] for d in dirs if (Path(d) / TOKENS_FILE).exists()]
    return int(sum(counts)) if counts else None
