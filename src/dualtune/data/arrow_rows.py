"""Rows of an Arrow-backed ``datasets.Dataset`` as small dicts whose images are lazy `ImageRef` s.

`lazy_rows` is how every loader reads a dataset (the lab's cached splits, a ``source: hf`` dataset, the
``load_dataset`` cache of a published dataset): text columns become Python values one group of rows at a time,
image columns (`image_kind`) become `dualtune.utils.image_refs.ImageRef` s built from the Arrow offsets and
validity bitmaps alone, so no image byte is read or held. Each group is read through a memory map opened for
that group only (`ArrowImageStore.tables`), so the pages it touched are let go before the next: memory grows
with the rows' text, not with the files' size.
"""

from __future__ import annotations

from typing import Iterator

from dualtune.utils.image_refs import EMPTY_IMAGE, ArrowImageStore, ImageRef

SHARED_STRINGS = 4096  # distinct values up to which a column's equal strings become one object


def image_kind(feature) -> str | None:
    """``"one"`` for an image column (``Image`` or raw ``binary`` bytes), ``"list"`` for a list of images
    (``Sequence(Image())``), None for any other column."""
    from datasets import Image, Value

    if isinstance(feature, Image) or (isinstance(feature, Value) and feature.dtype in ("binary", "large_binary")):
        return "one"
    inner = feature[0] if isinstance(feature, list) and len(feature) == 1 else getattr(feature, "feature", None)
    return "list" if isinstance(inner, Image) else None


def _cells(chunk, kind: str, store: ArrowImageStore, column: str, first_row: int) -> list:
    """Per row of one Arrow chunk of an image column: ImageRefs, reading only offsets and validity bitmaps.

    A null cell stays None; an image struct whose bytes and path are both null is the empty dict, and empty
    raw bytes stay ``b""``, as ``datasets`` would hand them over (adapters tell a missing image from them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind == "list":
        lengths = pc.list_value_length(chunk).to_pylist()
        return [None if n is None else [ImageRef(store, first_row + i, column, k) for k in range(n)]
                for i, n in enumerate(lengths)]
    nulls = chunk.is_null().to_pylist()
    if pa.types.is_struct(chunk.type) and {"bytes", "path"} <= {f.name for f in chunk.type}:
        empty = pc.and_(chunk.field("bytes").is_null(), chunk.field("path").is_null()).to_pylist()
        return [None if null else dict(EMPTY_IMAGE) if blank else ImageRef(store, first_row + i, column)
                for i, (null, blank) in enumerate(zip(nulls, empty))]
    if pa.types.is_binary(chunk.type) or pa.types.is_large_binary(chunk.type):
        blank = pc.equal(pc.binary_length(chunk), 0).to_pylist()
        return [None if null else b"" if empty else ImageRef(store, first_row + i, column)
                for i, (null, empty) in enumerate(zip(nulls, blank))]
    return [None if null else ImageRef(store, first_row + i, column) for i, null in enumerate(nulls)]


def _share(values: list, pool: dict) -> list:
    """``values`` with every string equal to one seen before replaced by that first object (``pool``)."""
    return [pool.setdefault(v, v) if isinstance(v, str) else v for v in values]


def _dataset_groups(dataset, columns: list[str], rows: int):
    """``(first row, Arrow table of columns)`` per group of ``rows`` rows, read through ``datasets`` (a dataset
    in memory or with an indices mapping)."""
    table = dataset.select_columns(columns).with_format("arrow")
    for start in range(0, len(dataset), rows):
        yield start, table[start:start + rows]


def lazy_rows(dataset, batch_size: int = 1000) -> Iterator[dict]:
    """The rows of a ``datasets.Dataset`` as dicts, in order: every column as ``datasets`` formats it (its
    features' ``decode_batch`` of the Arrow values), except image columns (`image_kind`), which hold
    `ImageRef` s (lists of them for image lists). No image is read. Equal strings of a column with few
    distinct values (domain, subtask, answer type, ...; up to ``SHARED_STRINGS``) are one object, not one per
    row."""
    from datasets import Features

    kinds = {name: kind for name, feature in dataset.features.items() if (kind := image_kind(feature))}
    if not len(dataset):
        return
    columns = list(dataset.column_names)
    texts = [c for c in columns if c not in kinds]
    features = Features({c: dataset.features[c] for c in texts})
    store = ArrowImageStore(dataset)
    # Through the store's short-lived maps when it reads the files: the dataset (and its memory map of the whole
    # file, whose touched pages stay resident) can then be let go by the caller while the rows are read.
    groups = store.tables(columns, batch_size) if store.files else _dataset_groups(dataset, columns, batch_size)
    del dataset
    pools = {c: {} for c in texts}
    for first, table in groups:
        values = features.decode_batch(table.select(texts).to_pydict()) if texts else {}
        for column, pool in pools.items():
            if pool is not None:
                values[column] = _share(values[column], pool)
                pools[column] = pool if len(pool) <= SHARED_STRINGS else None
        for column, kind in kinds.items():
            cells, start = [], first
            for chunk in table.column(column).chunks:
                cells += _cells(chunk, kind, store, column, start)
                start += len(chunk)
            values[column] = cells
        del table
        for i in range(len(values[columns[0]])):
            yield {c: values[c][i] for c in columns}
