"""Lightning DataModule for SFT in direct / cot / dual mode.

``mode=dual`` is the paper's joint Dual Tuning: every sample appears twice, once per answer mode,
and the two copies are shuffled together.

The training order is resumable (`ResumableDataLoader`): each epoch has its own seeded permutation
(`EpochSampler`), and the loader's place in the epoch is saved in the checkpoint, so a run resumed
mid-epoch trains exactly the batches an uninterrupted run would have trained next.
"""

from __future__ import annotations

import logging

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

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


def torch_shuffle_order(n: int, seed: int, epoch: int, batch_size: int, drop_last: bool = False) -> list[int]:
    """The index order of epoch ``epoch`` (0-based) of ``DataLoader(shuffle=True, generator=manual_seed(seed))``.

    Reproduces that loader's draws from its generator, one epoch after the other: each pass takes one int64
    (the iterator's base seed) and one ``randperm`` (the order), plus one more ``randperm`` when a short last
    batch exhausts the sampler. Every epoch differs, every run reproduces it, and runs keep the order they had
    before training became resumable (same tiny base model, same main-job numbers).
    """
    gen = torch.Generator().manual_seed(int(seed))
    order: list[int] = []
    for _ in range(int(epoch) + 1):
        torch.empty((), dtype=torch.int64).random_(generator=gen)
        order = torch.randperm(n, generator=gen).tolist()
        if n % batch_size and not drop_last:
            torch.randperm(n, generator=gen)
    return order


class EpochSampler(Sampler[int]):
    """Indices of a dataset of size ``n`` in the order of epoch ``set_epoch(e)`` (`torch_shuffle_order`, or
    ``0..n-1`` without ``shuffle``); ``skip`` leaves out the first positions of the next pass (resume)."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, batch_size: int = 1, drop_last: bool = False):
        self.n, self.seed, self.shuffle = int(n), int(seed), bool(shuffle)
        self.batch_size, self.drop_last = int(batch_size), bool(drop_last)
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch (the epoch counter is part of its checkpoint)."""
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> list[int]:
        """The full index order of ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        if not self.shuffle:
            return list(range(self.n))
        return torch_shuffle_order(self.n, self.seed, epoch, self.batch_size, self.drop_last)

    def __iter__(self):
        skip, self.skip = self.skip, 0
        yield from self.order()[skip:]

    def __len__(self) -> int:
        return self.n


class ResumableDataLoader(DataLoader):
    """A shuffled (or sequential) DataLoader over an `EpochSampler` whose place in the epoch is saveable.

    ``state_dict()`` is ``{"epoch", "batches"}`` (batches handed out in that epoch); after
    ``load_state_dict`` the next pass of the same epoch starts at that batch, a pass of another epoch at 0.
    Passes are lazy, so the state may be loaded after ``iter()`` but before the first batch.
    `dualtune.training.checkpointing.ResumeCheckpoint` stores the state in the Lightning checkpoint.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = True, seed: int = 0, sampler=None,
                 drop_last: bool = False, **kwargs):
        if sampler is None:
            sampler = EpochSampler(len(dataset), seed, shuffle, batch_size, drop_last)
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **kwargs)
        self.seed, self.shuffle = seed, shuffle
        self._epoch, self._batches, self._resume = 0, 0, None

    def __iter__(self):
        return self._batches_from_here()

    def _batches_from_here(self):
        sampler, start = self.sampler, 0
        epoch = getattr(sampler, "epoch", 0)
        if self._resume is not None:
            state, self._resume = self._resume, None
            if state["epoch"] == epoch and state["batches"] < len(self):
                start = int(state["batches"])
            elif state["batches"] < len(self):
                log.warning("data order: saved position is in epoch %d but epoch %d starts; starting it at batch 0",
                            state["epoch"], epoch)
        if start and not isinstance(sampler, EpochSampler):
            log.warning("data order: the sampler was replaced (%s); resuming the epoch at batch 0",
                        type(sampler).__name__)
            start = 0
        if start:
            sampler.skip = start * self.batch_size
        self._epoch, self._batches = epoch, start
        for batch in super().__iter__():
            self._batches += 1
            yield batch

    def state_dict(self) -> dict:
        """The epoch in progress and the number of its batches handed out so far."""
        return {"epoch": self._epoch, "batches": self._batches}

    def load_state_dict(self, state: dict) -> None:
        """Start the next pass at ``state["batches"]`` if it is the same epoch (see the class docstring)."""
        self._resume = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}


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
        batch = collate_train(examples, self.processor.tokenizer.pad_token_id)
        batch["ids"] = [f"{e.get('id')}/{e.get('mode')}" for e in examples]  # not a tensor: never reaches the model
        return batch

    def train_dataloader(self):
        """Shuffled batches, a seeded order per epoch; resumable mid-epoch (`ResumableDataLoader`)."""
        return ResumableDataLoader(self.train_examples, batch_size=self.batch_size, shuffle=True, seed=self.seed,
                                   collate_fn=self._collate)

    def val_dataloader(self):
        """Validation batches in fixed order (empty list when there is no validation split)."""
        if not self.val_examples:
            return []
        return DataLoader(self.val_examples, batch_size=self.batch_size, collate_fn=self._collate)
