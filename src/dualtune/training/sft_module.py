"""Supervised fine-tuning as a LightningModule: next-token loss on target tokens only.

The model is built outside (`dualtune.models.loading.load_model`) and injected, as in
lightning-hydra-template; the module owns only the optimisation.
"""

from __future__ import annotations

import lightning as L
import torch

from dualtune.training.schedules import build_optimizer_and_scheduler, param_groups


class SFTModule(L.LightningModule):
    """Fine-tune a VLM on (prompt, target) batches produced by `dualtune.data.encoding.collate_train`."""

    def __init__(self, model, lr: float = 1e-4, weight_decay: float = 0.0, warmup_ratio: float = 0.05,
                 scheduler: str = "cosine", gradient_checkpointing: bool = False, vision_lr_scale: float = 1.0,
                 vision_patterns: tuple = ("visual.",)):
        super().__init__()
        self.model = model
        self.save_hyperparameters(ignore=["model"], logger=False)
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            self.model.config.use_cache = False

    def on_fit_start(self):
        """`from_pretrained` returns models in eval mode; training needs train mode (dropout etc.)."""
        self.model.train()

    def forward(self, **batch):
        """Forward pass of the wrapped model (returns a HF ModelOutput with ``loss`` when labels are given)."""
        return self.model(**batch)

    def _step(self, batch):
        batch = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        out = self.model(**batch)
        n_tokens = (batch["labels"][:, 1:] != -100).sum()
        return out.loss, n_tokens

    def training_step(self, batch, batch_idx):
        """One optimisation step; logs ``train/loss`` and the number of target tokens."""
        loss, n_tokens = self._step(batch)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(batch["input_ids"]))
        self.log("train/target_tokens", n_tokens.float(), on_step=True, batch_size=len(batch["input_ids"]))
        return loss

    def validation_step(self, batch, batch_idx):
        """Teacher-forced loss on held-out examples (``val/loss``)."""
        loss, _ = self._step(batch)
        self.log("val/loss", loss, prog_bar=True, on_epoch=True, batch_size=len(batch["input_ids"]))
        return loss

    def configure_optimizers(self):
        """AdamW over trainable parameters (vision tower at ``lr * vision_lr_scale``), warmup + cosine/constant."""
        return build_optimizer_and_scheduler(
            param_groups(self.trainer.model, self.hparams.lr, self.hparams.vision_lr_scale,
                         self.hparams.vision_patterns),
            lr=self.hparams.lr, weight_decay=self.hparams.weight_decay, warmup_ratio=self.hparams.warmup_ratio,
            total_steps=self.trainer.estimated_stepping_batches, scheduler=self.hparams.scheduler,
        )
