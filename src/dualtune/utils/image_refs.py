"""Lazy references to images stored in Arrow files, so loading a dataset never holds its images in memory.

A loaded row keeps its text as Python values and every image / video frame as an `ImageRef`: which
Arrow-backed dataset, row, column and list position holds the encoded image. `ImageRef.encoded` fetches the
encoded ``{"bytes", "path"}`` dict only when asked (`dualtune.schema.decode_image` decodes it at use,
`dualtune.utils.hashing.image_digest` hashes it), so a dataset of 70k images costs its row texts in RAM,
not its pixels nor its encoded bytes.

Reads go through a short-lived memory map of the dataset's Arrow file (opened, one record batch located from
an index of batch offsets built once, the value copied out, closed), so pages touched by a read do not stay
resident in the process. A dataset held in memory (no Arrow files, e.g. ``Dataset.from_list``) or one with an
indices mapping is read through ``datasets`` itself.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import pyarrow as pa

EMPTY_IMAGE = {"bytes": None, "path": None}


def _index_arrow_file(path: str):
    """``(schema, batch_row_starts, batch_byte_offsets, n_rows)`` of an Arrow IPC stream file (what
    ``datasets`` writes); None for anything else (another IPC layout, dictionary batches): the caller then
    reads through ``datasets``."""
    import pyarrow as pa

    starts, offsets, n_rows = [], [], 0
    try:
        with pa.memory_map(path) as src:
            schema = pa.ipc.read_schema(pa.ipc.read_message(src))
            while True:
                position = src.tell()
                try:
                    message = pa.ipc.read_message(src)
                except EOFError:
                    break
                if message is None:
                    break
                if message.type != "record batch":
                    return None
                starts.append(n_rows)
                offsets.append(position)
                n_rows += pa.ipc.read_record_batch(message, schema).num_rows
    except (pa.ArrowInvalid, OSError):
        return None
    return schema, starts, offsets, n_rows


def _as_image_dict(value) -> dict:
    """A stored image value (struct dict, raw bytes, a path string or null) as a ``{"bytes", "path"}`` dict."""
    if isinstance(value, dict):
        return {"bytes": value.get("bytes"), "path": value.get("path")}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value), "path": None}
    if isinstance(value, str):
        return {"bytes": None, "path": value}
    return dict(EMPTY_IMAGE)


class ArrowImageStore:
    """Where the images of one ``datasets.Dataset`` live, read on demand (see the module docstring)."""

    def __init__(self, dataset):
        self.name = next((f["filename"] for f in dataset.cache_files), "<in memory>")
        self._files = self._file_index(dataset)
        self._firsts = [f[0] for f in self._files or ()]
        self._dataset = dataset.with_format("arrow") if self._files is None else None

    @staticmethod
    def _file_index(dataset):
        """``[(first_row, path, schema, batch_starts, batch_offsets, n_rows)]`` when the dataset's rows are
        exactly its Arrow files' rows in order, stored as loaded (no indices mapping, row counts adding up, the
        same column types); else None."""
        paths = [f["filename"] for f in dataset.cache_files]
        if not paths or getattr(dataset, "_indices", None) is not None:
            return None
        files, first, loaded = [], 0, dataset.data.schema
        for path in paths:
            index = _index_arrow_file(path)
            if index is None or any(c not in index[0].names or index[0].field(c).type != loaded.field(c).type
                                    for c in dataset.column_names):  # e.g. a cast applied in memory
                return None
            files.append((first, path, *index[:3], index[3]))
            first += index[3]
        return files if first == len(dataset) else None

    @property
    def files(self) -> list[str]:
        """The Arrow files read on demand ([] when reads go through the in-memory dataset)."""
        return [f[1] for f in self._files or ()]

    def tables(self, columns: list[str], rows: int = 1000) -> Iterator[tuple[int, pa.Table]]:
        """``(first row, table of columns)`` for consecutive groups of record batches (about ``rows`` rows each)
        of the Arrow files, in row order, each read through a memory map opened for that group only: use a
        table before asking for the next, and keep no Arrow object of it, so its pages are let go. Only for a
        store with `files`."""
        import pyarrow as pa

        for first, path, schema, starts, offsets, n_rows in self._files or ():
            bounds, group = starts + [n_rows], 0
            while group < len(starts):
                end = group + 1
                while end < len(starts) and bounds[end + 1] - bounds[group] <= rows:
                    end += 1
                with pa.memory_map(path) as src:
                    batches = []
                    for batch_no in range(group, end):
                        src.seek(offsets[batch_no])
                        batches.append(pa.ipc.read_record_batch(pa.ipc.read_message(src), schema))
                    yield first + bounds[group], pa.Table.from_batches(batches, schema).select(columns)
                    del batches
                group = end

    def encoded(self, row: int, column: str, position: int | None = None) -> dict:
        """The encoded image at ``row`` / ``column`` (/ list ``position``) as a ``{"bytes", "path"}`` dict."""
        if self._files is None:
            cell = self._dataset[row].column(column)[0]
            return _as_image_dict((cell if position is None else cell[position]).as_py())
        import pyarrow as pa

        first, path, schema, starts, offsets, _ = self._files[bisect.bisect_right(self._firsts, row) - 1]
        local = row - first
        batch_no = bisect.bisect_right(starts, local) - 1
        with pa.memory_map(path) as src:
            src.seek(offsets[batch_no])
            batch = pa.ipc.read_record_batch(pa.ipc.read_message(src), schema)
            cell = batch.column(schema.get_field_index(column))[local - starts[batch_no]]
            value = (cell if position is None else cell[position]).as_py()
        return _as_image_dict(value)

    def __repr__(self) -> str:
        return f"ArrowImageStore({self.name!r})"


class ImageRef:
    """One image of a row stored in an Arrow-backed dataset: ``store``, ``row``, ``column`` and, for a list
    column (``images``, ``video``), ``position``. Nothing is read until `encoded` is called."""

    __slots__ = ("store", "row", "column", "position")

    def __init__(self, store: ArrowImageStore, row: int, column: str, position: int | None = None):
        self.store, self.row, self.column, self.position = store, int(row), column, position

    def encoded(self) -> dict:
        """The encoded image as ``datasets`` stores it: ``{"bytes", "path"}`` (read now, not kept)."""
        return self.store.encoded(self.row, self.column, self.position)

    def _key(self):
        return id(self.store), self.row, self.column, self.position

    def __eq__(self, other) -> bool:
        return isinstance(other, ImageRef) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        where = f"{self.column}[{self.position}]" if self.position is not None else self.column
        return f"ImageRef({self.store.name!r}, row={self.row}, {where})"
