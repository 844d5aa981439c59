"""Score store under real concurrency: processes writing parts, merging and reading at the same time.

A reader used to list the parts, then a concurrent ``merge()`` (in another process) deleted one of them
before it was read: FileNotFoundError. Readers now hold a shared lock on the merge lock file.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback

from dualtune.scoring.store import ScoreStore

N_PROCS = 4
LOOP_SECONDS = 4.0
WORKER_MODULES = ["dualtune.scoring.store", "pandas", "pyarrow.parquet"]


def _worker(store_dir: str, wid: int, seconds: float, barrier, queue) -> None:
    """Write a 3-row part, merge every other round, read back; report errors and every id written."""
    store = ScoreStore(store_dir)
    written: list[str] = []
    rounds = 0
    try:
        barrier.wait(timeout=120)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ids = [f"w{wid}-r{rounds}-{k}" for k in range(3)]
            store.write_part([{"id": i, "digest": "d", "score": float(k)} for k, i in enumerate(ids)], shard_id=wid)
            written += ids
            if rounds % 2 == wid % 2:
                store.merge()
            df = store.read()
            lost = set(written) - set(df["id"]) if len(df) else set(written)
            if lost:
                raise AssertionError(f"worker {wid} round {rounds}: ids lost from read(): {sorted(lost)[:5]}")
            rounds += 1
        queue.put((wid, None, rounds, written))
    except BaseException:  # noqa: BLE001 - report anything to the parent
        queue.put((wid, traceback.format_exc(), rounds, written))


def test_concurrent_write_merge_read_loses_nothing(tmp_path):
    store = ScoreStore(tmp_path / "store")
    store.init({"what": "concurrency test"})
    ctx = mp.get_context("forkserver")  # fresh children (no inherited threads), imports paid once
    ctx.set_forkserver_preload(WORKER_MODULES)
    barrier, queue = ctx.Barrier(N_PROCS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(store.path), w, LOOP_SECONDS, barrier, queue))
             for w in range(N_PROCS)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    errors = [err for _, err, _, _ in results if err]
    assert not errors, errors[0]
    assert all(p.exitcode == 0 for p in procs)
    assert all(rounds >= 3 for _, _, rounds, _ in results), [r[2] for r in results]  # they did overlap
    written = [i for _, _, _, ids in results for i in ids]
    final = store.read()
    assert sorted(final["id"]) == sorted(written) and final["id"].is_unique
    store.merge()
    assert sorted(store.read([store.merged_path])["id"]) == sorted(written)
    assert list(store.parts_dir.glob("part-*.parquet")) == []


def test_read_of_a_missing_store_creates_nothing(tmp_path):
    store = ScoreStore(tmp_path / "absent")
    assert store.read().empty and not store.path.exists()  # the shared lock must not create the store dir


def test_read_without_a_lock_file_relists_when_a_part_vanishes(tmp_path, monkeypatch):
    import dualtune.scoring.store as store_mod

    store = ScoreStore(tmp_path / "store")
    store.init({})
    folded = store.write_part([{"id": "a", "digest": "d"}])
    store.write_part([{"id": "b", "digest": "d"}])
    store.merge()  # a and b now live in scores.parquet; the part files are gone

    def no_lock(*_a, **_k):  # e.g. a read-only shared store: the lock file cannot be opened
        raise PermissionError("read-only")

    real_files, listings = ScoreStore._files, []

    def files_then_merge(self):  # the first listing was taken just before a merge deleted ``folded``
        listings.append(real_files(self) + ([folded] if not listings else []))
        return listings[-1]

    monkeypatch.setattr(store_mod, "file_lock", no_lock)
    monkeypatch.setattr(ScoreStore, "_files", files_then_merge)
    assert sorted(store.read()["id"]) == ["a", "b"] and len(listings) == 2
