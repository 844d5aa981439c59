"""Dataset adapters: one module per dataset family, each mapping rows *exactly as the owners publish them*
into dualtune's sample schema (`dualtune.schema.FEATURES`). The one loader is `dualtune.data.published`.

An adapter module defines:

* ``SOURCE`` (str): where the format was taken from (dataset card, repository, the evaluators that load
  it, e.g. lmms-eval / VLMEvalKit task code) and the choices made where they were ambiguous;
* ``to_sample(row: dict, ctx: AdapterContext) -> dict``: one published row -> one schema row. Image
  columns arrive undecoded: lazy `dualtune.utils.image_refs.ImageRef` s into the ``load_dataset`` cache
  (for ``Image``, image-list and raw ``binary`` columns; a null cell is None, an empty one ``{"bytes": None,
  "path": None}`` or ``b""``), or paths relative to ``ctx.root``; pass them on as such (never read or decode
  them here, so images stay out of memory): the validator decodes them row by row, so a corrupt image is a
  counted skip naming the row. Raise `SkipRow` (with a reason) for a row the benchmark itself excludes or that cannot be
  mapped; the loader counts and logs it with the row's id. Scoring rules that differ from the default
  answer-type scoring go into ``meta["scoring"]`` (`dualtune.prompting.rules`);
* optionally ``REQUIRED_COLUMNS`` (tuple of str): columns every published row has; a dataset in another
  layout is then an error naming the columns found, instead of every row being skipped (checked on the
  first parsable row ``read`` yields; an adapter with several layouts checks each in its ``read`` with
  `dualtune.data.published.check_layout`);
* optionally ``read(path, subset, split) -> Iterable[dict]`` when the published layout is not something
  ``datasets.load_dataset(path, name=subset, split=split)`` reads (e.g. jsonl + image folders, zips).

Register a new module in ``ADAPTERS`` below and add ``conf/domain/<name>.yaml`` (``source: published``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

# adapter name -> module under dualtune.data.adapters (one module may serve several configs)
ADAPTERS: dict[str, str] = {
    "mathvista": "mathvista",
    "mathverse": "mathverse", "wemath": "wemath", "geometry3k": "geometry3k",
    "mmmu": "mmmu", "mmstar": "mmstar", "logicvista": "logicvista",
    "mm_eureka": "mm_eureka", "thinklite_vl": "thinklite_vl", "onethinker": "onethinker",
    "cvbench": "cvbench", "vsibench": "vsibench", "spacer": "spacer",
}


class SkipRow(Exception):
    """A published row that is not turned into a sample; the message is the counted reason."""


@dataclass
class AdapterContext:
    """What an adapter may need besides the row: the dataset root (local snapshot dir, or None for a hub
    id), the HF config (``subset``) and split being read, the domain name and its config's ``options``."""

    root: Path | None
    subset: str | None
    split: str
    domain: str
    options: dict = field(default_factory=dict)

    def resolve(self, relative: str) -> str:
        """A path inside the dataset snapshot (absolute paths and hub-only datasets pass through)."""
        path = Path(relative)
        return str(path if path.is_absolute() or self.root is None else self.root / path)


def get_adapter(name: str):
    """The adapter module registered as ``name``; a clear error listing the known ones otherwise."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset adapter {name!r}; known: {sorted(ADAPTERS)}")
    return importlib.import_module(f"dualtune.data.adapters.{ADAPTERS[name]}")
