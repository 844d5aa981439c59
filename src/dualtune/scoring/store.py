"""Score store: per-sample scores on disk with shards, resume and atomic writes.

Layout of a store directory (one per provenance hash, see :mod:`.provenance`)::

    provenance.json            what produced the scores (written once, atomically)
    parts/part-s{shard}-*.parquet   one file per scored batch (temp file + os.replace)
    scores.parquet             merged view of every part (written by :meth:`ScoreStore.merge`)

Guarantees:

* a batch becomes visible only when its whole part file has been renamed into place, so a
  ``kill -9`` loses at most the batch in flight and never leaves a partial part;
* resume = skip ids already present (with a matching sample digest);
* no id is ever duplicated: readers de-duplicate on ``(id, digest)`` (first occurrence wins,
  ``scores.parquet`` before parts), and merging happens under an exclusive file lock, deleting
  only the parts it has folded in — parts other shards write meanwhile are kept;
* no id is ever lost to a concurrent merge: readers list and read the files under a shared lock on
  the same lock file, so a merge cannot delete a part between a reader's listing and its read
  (a store whose lock file cannot be opened, e.g. read-only, is read by re-listing until stable).

Shards: ``shard_of(id, n)`` assigns every id to one of ``n`` shards by a stable hash, so
independent ``score.shard_id=k`` processes partition the dataset without coordination.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path

from dualtune.utils.hashing import stable_hash
from dualtune.utils.io import atomic_write, atomic_write_text


def shard_of(sample_id, num_shards: int) -> int:
    """Shard (0 .. num_shards - 1) of a sample id: ``int(stable_hash(str(id)), 16) % num_shards``."""
    if int(num_shards) < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    return int(stable_hash(str(sample_id)), 16) % int(num_shards)


def write_parquet_atomic(df, path) -> Path:
    """Write a DataFrame to ``path`` as parquet, atomically."""
    return atomic_write(Path(path), lambda tmp: df.to_parquet(tmp, index=False))


def write_json_atomic(obj, path) -> Path:
    """Write ``obj`` as indented JSON to ``path``, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return atomic_write_text(path, text)


@contextlib.contextmanager
def file_lock(path, shared: bool = False):
    """Advisory ``flock`` on ``path`` (created if missing) for the duration of the block: exclusive, or
    ``shared`` (any number of shared holders, none while an exclusive one holds it)."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class ScoreStore:
    """One directory of per-sample scores produced under one provenance."""

    def __init__(self, path):
        self.path = Path(path)
        self.parts_dir = self.path / "parts"
        self.merged_path = self.path / "scores.parquet"
        self.provenance_path = self.path / "provenance.json"
        self.lock_path = self.path / ".merge.lock"

    def read_provenance(self) -> dict | None:
        """The stored provenance, or None if there is none (or it is unreadable)."""
        try:
            return json.loads(self.provenance_path.read_text())
        except (OSError, ValueError):
            return None

    def init(self, provenance: dict) -> None:
        """Create the directory and write ``provenance.json`` if it is not there yet."""
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        if self.read_provenance() is None:
            write_json_atomic(provenance, self.provenance_path)

    def _files(self) -> list[Path]:
        """Merged file first, then parts in name order (the de-duplication precedence)."""
        files = [self.merged_path] if self.merged_path.is_file() else []
        return files + sorted(self.parts_dir.glob("part-*.parquet"))

    def read(self, files=None):
        """All stored rows as one DataFrame, unique on ``(id, digest)`` (first occurrence wins).

        Lists and reads under a shared lock, so a concurrent :meth:`merge` (exclusive lock) cannot delete
        a listed part before it is read."""
        if not self.path.is_dir():  # nothing stored (and nothing to race with); do not create the directory
            return self._read([] if files is None else files)
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.lock_path, shared=True))
            except OSError:  # lock file not creatable (read-only store): tolerate merges by re-listing
                return self._read_relisting(files)
            return self._read(self._files() if files is None else files)

    def _read_relisting(self, files, attempts: int = 20):
        """Lock-free read: a part deleted by a merge between listing and reading triggers a fresh listing
        (that merge has already replaced ``scores.parquet`` by a file holding the part's rows)."""
        if files is None:
            for attempt in range(attempts - 1):
                with contextlib.suppress(FileNotFoundError):
                    return self._read(self._files())
                time.sleep(0.01 * (attempt + 1))
        return self._read(self._files() if files is None else files)

    @staticmethod
    def _read(files):
        """Concatenate ``files`` (no locking), unique on ``(id, digest)``, first occurrence wins."""
        import pandas as pd

        frames = [pd.read_parquet(f) for f in files]
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame()
        df = pd.concat(frames, ignore_index=True)
        return df.drop_duplicates(subset=["id", "digest"], keep="first").reset_index(drop=True)

    def scored_ids(self, digests: dict) -> set:
        """Ids whose stored digest matches the current ``{id: digest}``."""
        df = self.read()
        if df.empty:
            return set()
        return {i for i, d in zip(df["id"], df["digest"]) if digests.get(i) == d}

    def write_part(self, rows: list[dict], shard_id: int = 0) -> Path:
        """Persist one scored batch atomically (a new part file); return its path."""
        import pandas as pd

        name = f"part-s{int(shard_id):04d}-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
        return write_parquet_atomic(pd.DataFrame(rows), self.parts_dir / name)

    def merge(self) -> Path:
        """Fold every part into ``scores.parquet`` (under a lock), then delete the folded parts."""
        with file_lock(self.lock_path):
            files = self._files()
            parts = [f for f in files if f != self.merged_path]
            if parts or not self.merged_path.is_file():
                df = self._read(files)
                if not df.empty:
                    df = df.sort_values("id", kind="stable").reset_index(drop=True)
                write_parquet_atomic(df, self.merged_path)
                for part in parts:
                    with contextlib.suppress(FileNotFoundError):
                        part.unlink()
        return self.merged_path
