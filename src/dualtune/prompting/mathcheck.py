"""Bounded math-verify: every parse + verify runs in a persistent worker process under a time limit.

math-verify (sympy) can run forever on sampled junk such as ``10^{10^{10}}``: it has to be called with
its signal timeouts off (they fail outside the main thread), and SIGALRM would not stop it anyway
(the time goes into C-level big-integer arithmetic). So:

1. a cheap guard rejects over-long strings and numeric power towers / huge exponents / factorials
   before sympy sees them (``too_large``);
2. everything else goes to ONE lazily started worker (`_mathworker.py`, run with ``sys.executable``;
   no ``multiprocessing`` spawn/forkserver, which would re-import the caller's ``__main__``, and no
   fork of a torch process), over pipes, under a wall-time limit. On timeout the worker is killed
   (restarted lazily on the next call) and the check counts as ``timeouts``. The worker also caps its
   own address space and per-request CPU time in the kernel, so it cannot outlive a dead caller for
   long, and exits on stdin EOF; an ``atexit`` hook shuts it down.

Calls are serialized by a lock (safe from threads, e.g. a Lightning loop and its callbacks), and a
forked child starts its own worker. Results are cached (LRU), so repeated checks in a GRPO group cost
a dict lookup. Limits: `DEFAULT_TIMEOUT_S` (env ``DUALTUNE_MATH_TIMEOUT_S`` or ``timeout_s=``) and
`DEFAULT_MEMORY_MB` (env ``DUALTUNE_MATH_MEMORY_MB``). Counters: `math_verify_stats()`.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from collections import OrderedDict

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 1024
STARTUP_TIMEOUT_S = 120.0  # importing sympy on a loaded box; not charged to any check
MAX_MATH_CHARS = 400
CACHE_SIZE = 4096
_WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_mathworker.py")
# A numeric power tower, i.e. an exponent that starts with a numeral raised to a numeral
# (10^{10^{10}}, 9^9^9, 2**(2**64); not 2^{2^{n}}); an exponent of >= 7 digits; a factorial of >= 6 digits.
_POWER = r"(?:\^|\*\*)\s*[{(\s]*[-+]?\d"
_TOO_LARGE = re.compile(rf"{_POWER}[\d.]*\s*{_POWER}|{_POWER}\d{{6}}|\d{{6}}\s*!")
_STAT_KEYS = ("verified", "timeouts", "too_large", "crashed", "cached")


class _WorkerDied(Exception):
    """The worker exited, could not start, or broke the protocol."""


def _env_number(name: str, default: float) -> float:
    """``float(os.environ[name])``, or ``default`` when unset; a clear error when malformed."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from None


class _Checker:
    """The worker process, its pipes, the counters and the result cache (one per process)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.buffer = b""
        self.failed_starts = 0
        self.memory_mb = DEFAULT_MEMORY_MB
        self.cache: OrderedDict = OrderedDict()
        self.stats = dict.fromkeys(_STAT_KEYS, 0)

    def _start(self) -> None:
        """Start the worker and wait (up to `STARTUP_TIMEOUT_S`) for its ``ready`` line."""
        self.memory_mb = int(_env_number("DUALTUNE_MATH_MEMORY_MB", DEFAULT_MEMORY_MB))
        self.proc = subprocess.Popen(
            [sys.executable, _WORKER_SCRIPT, str(self.memory_mb)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, bufsize=0, start_new_session=True)
        self.buffer = b""
        if self._read_line(time.monotonic() + STARTUP_TIMEOUT_S) != b"ready":
            raise _WorkerDied("no ready line")

    def _read_line(self, deadline: float) -> bytes:
        """One line from the worker; TimeoutError past ``deadline``, _WorkerDied on EOF."""
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:  # epoll/poll: no FD_SETSIZE limit
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise TimeoutError
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise _WorkerDied(f"worker exited with code {self.proc.wait()}")
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.strip()

    def stop(self) -> None:
        """Kill the worker (if any) and reap it."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a SIGKILLed process always goes
            logger.error("math-verify worker %d did not exit after SIGKILL", proc.pid)

    def _ask(self, pred: str, gold: str, timeout_s: float) -> str | bool:
        """Worker verdict: True/False, or "timeout" / "memory" / "crashed" when it was cut off."""
        if self.proc is not None and self.proc.poll() is not None:
            self.stop()  # died while idle (killed from outside): just start a fresh one
        if self.proc is None:
            if self.failed_starts >= 3:
                return "crashed"  # math-verify cannot start here; the plain fallbacks still score
            try:
                self._start()
                self.failed_starts = 0
            except (OSError, TimeoutError, _WorkerDied) as err:
                self.failed_starts += 1
                logger.error("math-verify worker failed to start (%s; attempt %d of 3)", err or "timeout",
                             self.failed_starts)
                self.stop()
                return "crashed"
        request = {"pred": pred, "gold": gold, "cpu_s": math.ceil(timeout_s) + 5}
        try:
            pending = memoryview((json.dumps(request) + "\n").encode())
            while pending:
                pending = pending[self.proc.stdin.write(pending):]
            reply = json.loads(self._read_line(time.monotonic() + timeout_s))
        except TimeoutError:
            self.stop()
            return "timeout"
        except (OSError, ValueError, _WorkerDied):
            self.stop()
            return "crashed"
        if reply.get("status") == "memory":
            self.stop()
            return "memory"
        return bool(reply.get("equal"))

    def equal(self, pred: str, gold: str, timeout_s: float) -> bool:
        """Cached, counted, bounded math-verify equivalence of ``pred`` and ``gold``."""
        key = (pred, gold)
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                self.stats["cached"] += 1
                return self.cache[key]
            verdict = self._ask(pred, gold, timeout_s)
            outcome = {"timeout": "timeouts", "memory": "too_large", "crashed": "crashed"}.get(verdict)
            self.stats[outcome or "verified"] += 1
            if outcome:
                logger.warning("math-verify cut off (%s, limit %.1f s, %d MB): pred=%.80r gold=%.80r; "
                               "not verified", verdict, timeout_s, self.memory_mb, pred, gold)
            result = verdict is True
            if outcome != "crashed":  # a crash may be the worker's fault, not the input's
                self.cache[key] = result
                if len(self.cache) > CACHE_SIZE:
                    self.cache.popitem(last=False)
            return result


_checker = _Checker()


def _after_fork_in_child() -> None:
    """A forked child must not talk to its parent's worker (shared pipes): give it a fresh checker."""
    global _checker
    inherited, _checker = _checker, _Checker()
    for stream in (inherited.proc.stdin, inherited.proc.stdout) if inherited.proc else ():
        try:
            stream.close()  # only this process's copies; the parent's worker is untouched
        except OSError:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def too_large(expression: str) -> bool:
    """True for strings math-verify must not see: over `MAX_MATH_CHARS` or a numeric power tower,
    an exponent of >= 7 digits, or a factorial of >= 6 digits (sympy would evaluate them for ever)."""
    return len(expression) > MAX_MATH_CHARS or _TOO_LARGE.search(expression) is not None


def math_verify_equal(pred: str, gold: str, timeout_s: float | None = None) -> bool:
    """True iff math-verify finds ``pred`` equivalent to ``gold`` within the limits; False when it
    does not, or when the check was cut off (too large, timed out, out of memory, worker crashed).

    ``timeout_s``: wall-time limit for this check (default: env ``DUALTUNE_MATH_TIMEOUT_S`` or
    `DEFAULT_TIMEOUT_S`). Every cut-off is counted in `math_verify_stats` and logged as a warning.
    """
    if timeout_s is None:
        timeout_s = _env_number("DUALTUNE_MATH_TIMEOUT_S", DEFAULT_TIMEOUT_S)
    if not timeout_s > 0:
        raise ValueError(f"math-verify timeout must be > 0 seconds, got {timeout_s!r}")
    if too_large(pred) or too_large(gold):
        with _checker.lock:
            _checker.stats["too_large"] += 1
        logger.warning("math-verify skipped (too large): pred=%.80r gold=%.80r; not verified", pred, gold)
        return False
    return _checker.equal(pred, gold, float(timeout_s))


def math_verify_stats(reset: bool = False) -> dict:
    """Counters of this process: ``verified`` (checks the worker answered), ``timeouts``,
    ``too_large`` (guard or out of memory), ``crashed`` (worker died or could not start) and
    ``cached`` (answered from the cache). ``reset=True`` zeroes them after reading."""
    with _checker.lock:
        stats = dict(_checker.stats)
        if reset:
            _checker.stats = dict.fromkeys(_STAT_KEYS, 0)
    return stats


def math_checks_since(before: dict) -> dict[str, int]:
    """Counters accumulated since ``before`` (a `math_verify_stats()` snapshot); logs a warning with the
    number of checks that were cut off (time / size limit or a crashed worker, each scored 0)."""
    delta = {k: v - before.get(k, 0) for k, v in math_verify_stats().items()}
    cut = sum(delta.get(k, 0) for k in ("timeouts", "too_large", "crashed"))
    if cut:
        logger.warning("math-verify: %d answer checks cut off and scored 0 (%s)", cut, delta)
    return delta


def shutdown_math_worker() -> None:
    """Stop the worker process now (it restarts lazily on the next check); also runs at exit."""
    locked = _checker.lock.acquire(timeout=2 * DEFAULT_TIMEOUT_S)  # a check may be in flight
    try:
        _checker.stop()
    finally:
        if locked:
            _checker.lock.release()


atexit.register(shutdown_math_worker)
