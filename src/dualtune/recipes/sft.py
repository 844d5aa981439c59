"""The SFT recipe: fine-tune a checkpoint on samples in direct / cot / dual mode and save the result.

Checkpoints: ``<run dir>/checkpoints/last.ckpt`` is rewritten (atomically) every
``trainer.checkpoint_every_n_steps`` optimizer steps, at each epoch end, at the end of training and when the job
gets SIGTERM (it then exits with status 143 and saves no model). Rerun with
``hydra.run.dir=<that run dir> ckpt_path=last`` to resume at the checkpointed step, with the same data order
(the epoch's shuffle and the position in it are in the checkpoint; `dualtune.training.checkpointing`).
The tuned model is saved with ``save_pretrained`` (LoRA merged) to ``<run dir>/model`` so every loader can
read it; under FSDP the full state dict is gathered on every rank first (`dualtune.training.saving`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L

from dualtune.data.datamodule import SFTDataModule
from dualtune.models.loading import load_model, vision_tower_patterns
from dualtune.training.callbacks import ProgressLog, TokenCount
from dualtune.training.checkpointing import AtomicCheckpointIO, BatchLog, ResumeCheckpoint, fit_resumable
from dualtune.training.saving import save_from_trainer
from dualtune.training.sft_module import SFTModule
from dualtune.utils.distributed import after_fit
from dualtune.utils.runtime import build_logger

log = logging.getLogger(__name__)


def build_trainer(cfg, out_dir: Path, logger=None, max_epochs=None, max_steps=None, callbacks=(),
                  steps_per_unit: int = 1):
    """A Lightning Trainer from ``cfg.trainer`` that keeps ``out_dir/checkpoints/last.ckpt`` resumable
    (`ResumeCheckpoint` every ``trainer.checkpoint_every_n_steps`` steps of ``steps_per_unit`` optimizer steps,
    written by `AtomicCheckpointIO`); ``trainer.log_batch_ids`` adds ``out_dir/batch_ids.jsonl``.

    As in TRL, ``algo.max_steps > 0`` overrides ``algo.epochs`` (the run takes exactly that many steps).
    """
    t = cfg.trainer
    max_steps = int(max_steps if max_steps is not None else cfg.algo.max_steps)
    if max_epochs is None:
        max_epochs = -1 if max_steps > 0 else cfg.algo.epochs
    ckpt = ResumeCheckpoint(out_dir / "checkpoints", int(t.get("checkpoint_every_n_steps", 0)), steps_per_unit)
    extra = [BatchLog(out_dir / "batch_ids.jsonl")] if t.get("log_batch_ids", False) else []
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, num_nodes=int(t.get("num_nodes", 1)), strategy=t.strategy,
        precision=t.precision,
        max_epochs=max_epochs, max_steps=max_steps,
        accumulate_grad_batches=cfg.algo.get("accumulate_grad_batches", 1),
        log_every_n_steps=t.log_every_n_steps, logger=logger if logger is not None else False,
        callbacks=[ckpt, ProgressLog(every=t.get("progress_every", 25)), TokenCount(out_dir), *extra, *callbacks],
        plugins=[AtomicCheckpointIO()], fast_dev_run=cfg.trainer.get("fast_dev_run", False),
        enable_model_summary=False, default_root_dir=str(out_dir),
    )


def resolve_ckpt_path(ckpt_path, out_dir: Path):
    """Map ``ckpt_path=last`` to this run dir's last checkpoint (None if there is none yet)."""
    if ckpt_path in (None, "", "null"):
        return None
    if ckpt_path == "last":
        last = out_dir / "checkpoints" / "last.ckpt"
        if not last.exists():
            log.warning("ckpt_path=last but %s does not exist; starting from scratch", last)
            return None
        return str(last)
    return str(ckpt_path)


def fit_sft(cfg, model_path: str, processor, train_rows, out_dir: Path, val_rows=None, callbacks=()) -> Path:
    """Fine-tune ``model_path`` on ``train_rows`` per ``cfg.algo`` / ``cfg.mode``; return the saved model dir
    (``callbacks``: extra Lightning callbacks, e.g. `PeriodicEval`)."""
    algo = cfg.algo
    mode = "dual" if len(cfg.mode.train_modes) == 2 else cfg.mode.train_modes[0]
    data = SFTDataModule(processor, train_rows, val_rows, mode=mode, templates=dict(cfg.mode.templates),
                         batch_size=int(algo.batch_size), max_length=int(algo.max_length),
                         on_overlong="raise" if cfg.get("strict") else algo.on_overlong, seed=int(cfg.seed),
                         cache_mb=float(algo.get("encoded_cache_mb", 1024)))
    model = load_model(model_path, cfg.model)
    module = SFTModule(model, lr=float(algo.lr), weight_decay=float(algo.weight_decay),
                       warmup_ratio=float(algo.warmup_ratio), scheduler=algo.scheduler,
                       gradient_checkpointing=bool(algo.gradient_checkpointing),
                       vision_lr_scale=float(algo.get("vision_lr_scale", 1.0)),
                       vision_patterns=vision_tower_patterns(cfg.model))
    trainer = build_trainer(cfg, out_dir, logger=build_logger(cfg, out_dir), callbacks=callbacks)
    fit_resumable(trainer, module, data, resolve_ckpt_path(cfg.get("ckpt_path"), out_dir))  # SIGTERM: exit 143
    # Every rank: a sharded (FSDP) model is gathered in full before rank 0 saves it (`training.saving`).
    save_dir = save_from_trainer(trainer, module, processor, out_dir / "model",
                                 rebuild=lambda: load_model(model_path, cfg.model))
    after_fit(trainer, "sft model saved")  # every rank waits until rank 0 has written the model
    log.info("SFT done: %d steps, skipped %s; model saved to %s", trainer.global_step, data.skipped or "none",
             save_dir)
    return save_dir
