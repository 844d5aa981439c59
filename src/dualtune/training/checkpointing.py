"""Interruptible, resumable training: where ``last.ckpt`` is written, how, and what a SIGTERM does.

* `ResumeCheckpoint` keeps ``<run dir>/checkpoints/last.ckpt`` current: every ``trainer.checkpoint_every_n_steps``
  steps, at the end of every epoch and of training, and when the job gets SIGTERM. It also stores the
  training data order (`dualtune.data.datamodule.ResumableDataLoader`'s epoch and position), so a resumed run
  trains exactly the batches an uninterrupted one would have.
* `AtomicCheckpointIO` writes every checkpoint to ``<name>.tmp`` and renames it over the old file, so a full
  disk or a kill mid-write leaves the previous checkpoint intact.
* `fit_resumable` runs ``trainer.fit`` and turns Lightning's SIGTERM handling (the step finishes, then
  ``SIGTERMException``, a ``SystemExit`` with status 0) into a saved checkpoint and exit status 143.
* `BatchLog` (``trainer.log_batch_ids=true``) appends the sample ids of every step to ``batch_ids.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

log = logging.getLogger("dualtune")
SIGTERM_EXIT_CODE = 143  # 128 + SIGTERM, what a shell reports for a job ended by SIGTERM
LAST = "last.ckpt"
DATA_ORDER_KEY = "dualtune_data_order"


def batches_done(trainer) -> int:
    """Training batches finished in this fit, counted across resumes (Lightning checkpoints the counter)."""
    return int(trainer.fit_loop.epoch_loop.batch_progress.total.processed)


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose local saves go to ``<path>.tmp`` (fsynced) and then ``os.replace`` ``path``."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        """Write ``checkpoint`` to ``path`` atomically; on any error the old file is untouched and the temp
        file removed. Remote (``scheme://``) paths use Lightning's own writer."""
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:  # make the rename itself durable
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass


class ResumeCheckpoint(Checkpoint):
    """Saves ``dirpath/last.ckpt`` every ``every_n_steps`` steps (0 = never mid-epoch), at each epoch end, at the
    end of training and on SIGTERM; carries the train loader's data-order state in the checkpoint.

    A step is ``steps_per_unit`` optimizer steps (GRPO with ``mu`` updates per rollout batch passes ``mu``, so
    it counts rollout steps); mid-accumulation batches are never checkpointed periodically.
    """

    def __init__(self, dirpath, every_n_steps: int = 0, steps_per_unit: int = 1):
        self.path = Path(dirpath) / LAST
        self.every, self.unit = max(0, int(every_n_steps)), max(1, int(steps_per_unit))
        self._last_saved = None
        self._seen_step = 0
        self._resumed, self._data_order = False, None

    def save(self, trainer, where: str) -> bool:
        """Write the checkpoint (once per batch position and ``where``); returns whether it wrote."""
        if trainer.fast_dev_run or trainer.sanity_checking:
            return False
        key = (batches_done(trainer), trainer.global_step)
        if self._last_saved in ((*key, where), (*key, "epoch end")):
            return False
        trainer.save_checkpoint(self.path)
        self._last_saved = (*key, where)
        log.debug("checkpoint (%s) at step %d -> %s", where, trainer.global_step, self.path)
        return True

    def on_train_start(self, trainer, pl_module):
        """Hand a restored data-order state to the train loader (before its first batch) and log the resume.

        Lightning also restores stateful loaders itself, but skips it when ``estimated_stepping_batches`` was
        read in ``configure_optimizers`` (Lightning-AI/pytorch-lightning#20550), as both recipes do."""
        self._seen_step = trainer.global_step
        if not self._resumed:
            return
        order, loader = self._data_order, trainer.train_dataloader
        if order is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(order)
        log.info("resumed at step %d (epoch %d, %d batches done; data order: %s)", trainer.global_step,
                 trainer.current_epoch, batches_done(trainer),
                 f"epoch {order['epoch']}, batch {order['batches']}" if order else "not in the checkpoint")
        self._resumed, self._data_order = False, None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        """Periodic save after an optimizer step; immediate save when SIGTERM arrived during this batch."""
        stepped, self._seen_step = trainer.global_step != self._seen_step, trainer.global_step
        if trainer.received_sigterm:
            self.save(trainer, "sigterm")
        elif stepped and self.every and (trainer.global_step // self.unit) % self.every == 0:
            self.save(trainer, "periodic")

    def on_train_epoch_end(self, trainer, pl_module):
        """Save at every epoch end."""
        self.save(trainer, "epoch end")

    def on_train_end(self, trainer, pl_module):
        """Save the final state (a run stopped by ``max_steps`` mid-epoch has no epoch-end save)."""
        self.save(trainer, "train end")

    def on_exception(self, trainer, pl_module, exception):
        """SIGTERM: Lightning raises after the current batch; save that state unless it is saved already."""
        if isinstance(exception, SIGTERMException):
            self.save(trainer, "sigterm")

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        """Store the train loader's data-order state next to Lightning's loop state."""
        loader = trainer.train_dataloader
        if hasattr(loader, "state_dict") and hasattr(loader, "load_state_dict"):
            checkpoint[DATA_ORDER_KEY] = loader.state_dict()

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        """Keep the saved data-order state until the loader exists (`on_train_start`)."""
        self._resumed, self._data_order = True, checkpoint.get(DATA_ORDER_KEY)


class BatchLog(L.Callback):
    """Appends ``{"step", "epoch", "global_step", "ids"}`` per training batch to a JSONL file. On resume the
    rows after the checkpoint (trained again now) are dropped first, so every step appears once."""

    def __init__(self, path):
        self.path = Path(path)

    def on_train_start(self, trainer, pl_module):
        """Truncate the log to the steps the (restored) state has done."""
        if not trainer.is_global_zero:
            return
        done = batches_done(trainer)
        rows = read_batch_log(self.path) if done else []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in rows if r["step"] <= done))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        """Append this batch's ids (``batch["ids"]`` or the ``id`` of each row of a list batch)."""
        if not trainer.is_global_zero:
            return
        ids = batch.get("ids") if isinstance(batch, dict) else [r.get("id") for r in batch if isinstance(r, dict)]
        row = {"step": batches_done(trainer), "epoch": trainer.current_epoch, "global_step": trainer.global_step,
               "ids": list(ids or [])}
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")


def read_batch_log(path) -> list[dict]:
    """Rows of a `BatchLog` file (empty when it does not exist); a line cut by a kill mid-write is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipped an incomplete line (%d chars)", path, len(line))
    return rows


def fit_resumable(trainer, module, data, ckpt_path=None) -> None:
    """``trainer.fit``; if the job got SIGTERM, log where the resumable checkpoint is and exit with status 143
    (Lightning alone would exit 0 with no checkpoint)."""
    try:
        trainer.fit(module, data, ckpt_path=ckpt_path)
    except SIGTERMException:
        exit_after_sigterm(trainer)
    if trainer.received_sigterm:  # arrived during the last batch: training finished, the job still must stop
        exit_after_sigterm(trainer)


def exit_after_sigterm(trainer):
    """Log the stop and raise ``SystemExit(143)``."""
    saved = [c.path for c in trainer.checkpoint_callbacks if isinstance(c, ResumeCheckpoint) and c.path.exists()]
    if saved:
        log.error("SIGTERM: training stopped at step %d; resumable checkpoint %s. Resume with "
                  "`python train.py hydra.run.dir=<this run dir> ckpt_path=last`; exiting with status %d",
                  trainer.global_step, saved[0], SIGTERM_EXIT_CODE)
    else:
        log.error("SIGTERM: training stopped at step %d with no checkpoint; exiting with status %d",
                  trainer.global_step, SIGTERM_EXIT_CODE)
    raise SystemExit(SIGTERM_EXIT_CODE)
