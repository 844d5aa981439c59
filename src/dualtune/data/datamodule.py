"""Lightning DataModule for SFT in direct / cot / dual mode.

``mode=dual`` is the paper's joint Dual Tuning: every sample appears twice, once per answer mode,
and the two copies are shuffled together.

The training order is resumable (`ResumableDataLoader`): each epoch has its own seeded permutation
(`EpochSampler`), and the loader's place in the epoch is saved in the checkpoint, so a run resumed
mid-epoch trains exactly the batches an uninterrupted run would have trained next.

Memory stays bounded (`EncodedExamples`): the length pre-pass encodes every example once to find the
over-long ones, but keeps encoded tensors (pixel values) only within a budget (``algo.encoded_cache_mb``);
the others are encoded again when their batch comes, from the sample's lazily loaded images.
"""

from __future__ import annotations

import logging
from collections import Counter

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dualtune.data.encoding import OverlongError, collate_train, encode_train_example
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


def _nbytes(example: dict) -> int:
    """Bytes held by the tensors of an encoded example."""
    return sum(v.numel() * v.element_size() for v in example.values() if isinstance(v, torch.Tensor))


class EncodedExamples(Dataset):
    """The (sample, mode) pairs that fit ``max_length``, in order, encoded (`encode_train_example`) on access.

    Construction is the length pre-pass: every pair is encoded once (the exact token count, image tokens
    included); an over-long one is skipped and counted in ``skipped`` (logged once), or raises with
    ``on_overlong="raise"``. Encoded examples are kept, first come, while their tensors fit ``cache_mb``;
    the others are dropped at once and encoded again each time they are read (deterministically, so a batch
    is the same either way). ``cache_mb=None`` keeps all (the behaviour before examples were lazy).
    """

    def __init__(self, processor, samples, modes, templates=None, max_length: int = 1024, on_overlong="skip",
                 cache_mb: float | None = None):
        self.processor, self.templates, self.max_length = processor, templates, max_length
        self.pairs, self.skipped, self._cache = [], Counter(), {}
        budget, self.cached_bytes = (float("inf") if cache_mb is None else float(cache_mb) * 2**20), 0
        for sample, mode in zip(samples, modes):
            try:
                example = self._encode(sample, mode)
            except OverlongError as err:
                if on_overlong == "raise":
                    raise
                self.skipped["overlong"] += 1
                log.debug("skip: %s", err)
                continue
            if self.cached_bytes + _nbytes(example) <= budget:
                self._cache[len(self.pairs)] = example
                self.cached_bytes += _nbytes(example)
            self.pairs.append((sample, mode))
        if self.skipped:
            log.warning("skipped %d over-long examples (max_length=%d); raise the limit or filter the data",
                        self.skipped["overlong"], max_length)

    def _encode(self, sample: dict, mode: str) -> dict:
        example = encode_train_example(self.processor, sample, mode, self.templates, self.max_length)
        example["id"], example["mode"] = sample["id"], mode
        return example

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        if index in self._cache:
            return self._cache[index]
        return self._encode(*self.pairs[index])


class SFTDataModule(L.LightningDataModule):
    """Serves right-padded, shuffled batches of `EncodedExamples` (length pre-pass in ``setup``; encoded
    tensors kept within ``cache_mb`` MiB, the rest encoded per batch)."""

    def __init__(self, processor, train_samples, val_samples=None, mode="dual", templates=None, batch_size=8,
                 max_length=1024, on_overlong="skip", seed=0, cache_mb: float | None = 1024):
        super().__init__()
        self.processor = processor
        self.train_samples, self.val_samples = list(train_samples), list(val_samples or [])
        self.mode, self.templates = mode, templates
        self.batch_size, self.max_length, self.on_overlong, self.seed = batch_size, max_length, on_overlong, seed
        self.cache_mb = cache_mb
        self.train_examples = self.val_examples = None
        self.skipped = {}

    def setup(self, stage: str | None = None):
        """Length pre-pass over train (and val) examples (`EncodedExamples`); skip counts go to ``self.skipped``."""
        if self.train_examples is not None:
            return
        samples, modes = expand_modes(self.train_samples, self.mode)
        self.train_examples = EncodedExamples(self.processor, samples, modes, self.templates, self.max_length,
                                              self.on_overlong, self.cache_mb)
        self.skipped = dict(self.train_examples.skipped)
        if not len(self.train_examples):
            raise ValueError("no training examples left after encoding (all skipped?)")
        vs, vm = expand_modes(self.val_samples, self.mode)
        left = None if self.cache_mb is None else max(0.0, self.cache_mb - self.train_examples.cached_bytes / 2**20)
        self.val_examples = EncodedExamples(self.processor, vs, vm, self.templates, self.max_length, "skip", left)
        log.info("SFT data: %d train examples (mode=%s), %d val, skipped %s; %.0f MiB of encoded examples kept",
                 len(self.train_examples), self.mode, len(self.val_examples), self.skipped or "none",
                 (self.train_examples.cached_bytes + self.val_examples.cached_bytes) / 2**20)

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
        if not len(self.val_examples):
            return []
        return DataLoader(self.val_examples, batch_size=self.batch_size, collate_fn=self._collate)
