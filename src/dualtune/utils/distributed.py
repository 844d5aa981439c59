"""Rank bookkeeping for multi-process runs (Lightning DDP / FSDP launched by its subprocess launcher,
torchrun or SLURM), usable before and after ``trainer.fit`` creates the process group.

Rules the recipes follow:
* work outside the training loop (base/tuned evaluation, reports, plots) runs on global rank 0 only;
* after rank 0 saves the tuned model, every rank meets at a barrier, so no rank reads a half-written dir;
* rank 0 waits for the ranks it launched and fails the run when any of them failed (a crashed rank never
  hides behind exit code 0).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def global_rank() -> int:
    """This process's global rank from the launcher's environment (0 when not distributed).

    ``RANK`` (torchrun, SLURM via Lightning) wins; Lightning's own launcher sets ``NODE_RANK`` /
    ``LOCAL_RANK`` / ``WORLD_SIZE`` instead, so the rank is ``NODE_RANK * procs_per_node + LOCAL_RANK``.
    """
    if os.environ.get("RANK") is not None:
        return int(os.environ["RANK"])
    if os.environ.get("SLURM_PROCID") is not None and os.environ.get("SLURM_NTASKS", "1") != "1":
        return int(os.environ["SLURM_PROCID"])
    local = int(os.environ.get("LOCAL_RANK", 0))
    node = int(os.environ.get("NODE_RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    nodes = max(1, int(os.environ.get("NUM_NODES", 1)))
    return node * max(1, world // nodes) + local


def is_global_zero() -> bool:
    """True on the process that owns run-level work (evaluation, reports): global rank 0."""
    return global_rank() == 0


def barrier(trainer, name: str) -> None:
    """All ranks of ``trainer``'s strategy wait here (a no-op for one process)."""
    if trainer is not None and trainer.world_size > 1:
        trainer.strategy.barrier(name)


_launched: list = []  # rank processes started by Lightning's launcher in this process (rank 0 only)


def after_fit(trainer, name: str) -> None:
    """Call on every rank once rank 0 has saved the tuned model: remember the rank processes this trainer's
    launcher started (for `check_launched_ranks`), then wait at a barrier so no rank reads a half-written dir."""
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    _launched.extend(p for p in (getattr(launcher, "procs", None) or []) if p not in _launched)
    barrier(trainer, name)


def check_launched_ranks(timeout_s: float = 600.0) -> None:
    """On rank 0, at the end of a run: wait for the rank processes Lightning's launcher started and raise
    if any failed or hung.

    Lightning's child-process observer stops watching once rank 0 leaves ``fit``, so a rank that crashes
    afterwards would otherwise go unnoticed and the run would exit 0.
    """
    procs, failed = list(_launched), []
    _launched.clear()
    for local_rank, proc in enumerate(procs, start=1):
        try:
            code = proc.wait(timeout=timeout_s)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired: a hung rank is a failed rank
            proc.kill()
            code = "timeout"
        if code != 0:
            failed.append(f"local rank {local_rank} (pid {proc.pid}): exit {code}")
    if failed:
        raise RuntimeError("distributed run failed on " + "; ".join(failed))
    if procs:
        log.info("all %d launched ranks finished cleanly", len(procs))
