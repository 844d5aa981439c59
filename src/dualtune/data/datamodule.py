"""Lightning DataModule for SFT in direct / cot / dual mode.

``mode=dual`` is the paper's joint Dual Tuning: every sample appears twice, once per answer mode,
and the two copies are shuffled together.
"""

from __future__ import annotations

import logging

import lightning as L
import torch
from torch.utils.data import DataLoader

from dualtune.data.encoding import collate_train, encode_many
from dualtune.schema import row_modes

log = logging.getLogger(__name__)


def expand_modes(samples: list[dict], mode: str) -> tuple[list[dict], list[str]]:
    """Pair each sample with its training mode(s): one copy for direct/cot, two copies for dual.

    A sample carrying ``train_mode`` (set by ``selection=boundary`` from a curation manifest: reasoning
    -> "cot", direct -> "direct") is trained in that mode only, whatever the run's mode.
    """
    if mode == "dual":
        modes = ("direct", "cot")
    elif mode in ("direct", "cot"):
        modes = (mode,)
    else:
        raise ValueError(f"unknown training mode {mode!r}; expected direct, cot or dual")
    pairs = [(s, m) for s in samples for m in row_modes(s, modes)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


class SFTDataModule(L.LightningDataModule):
    """Encodes samples once in ``setup`` and serves right-padded, shuffled batches."""

    def __init__(self, processor, train_samples, val_samples=None, mode="dual", templates=None, batch_size=8,
                 max_length=1024, on_overlong="skip", seed=0):
        super().__init__()
        self.processor = processor
        self.train_samples, self.val_samples = list(train_samples), list(val_samples or [])
        self.mode, self.templates = mode, templates
        self.batch_size, self.max_length, self.on_overlong, self.seed = batch_size, max_length, on_overlong, seed
        self.train_examples = self.val_examples = None
        self.skipped = {}

    def setup(self, stage: str | None = None):
        """Encode train (and val) examples; records skip counts in ``self.skipped``."""
        if self.train_examples is not None:
            return
        samples, modes = expand_modes(self.train_samples, self.mode)
        self.train_examples, skips = encode_many(self.processor, samples, modes, self.templates,
                                                 self.max_length, self.on_overlong)
        self.skipped = dict(skips)
        if not self.train_examples:
            raise ValueError("no training examples left after encoding (all skipped?)")
        vs, vm = expand_modes(self.val_samples, self.mode)
        self.val_examples, _ = encode_many(self.processor, vs, vm, self.templates, self.max_length, "skip")
        log.info("SFT data: %d train examples (mode=%s), %d val, skipped %s", len(self.train_examples),
                 self.mode, len(self.val_examples), self.skipped or "none")

    def _collate(self, examples):
        return collate_train(examples, self.processor.tokenizer.pad_token_id)

    def train_dataloader(self):
        """Shuffled batches (seeded generator, so resume and reruns see the same order)."""
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_examples, batch_size=self.batch_size, shuffle=True, generator=gen,
                          collate_fn=self._collate)

    def val_dataloader(self):
        """Validation batches in fixed order (empty list when there is no validation split)."""
        if not self.val_examples:
            return []
        return DataLoader(self.val_examples, batch_size=self.batch_size, collate_fn=self._collate)
