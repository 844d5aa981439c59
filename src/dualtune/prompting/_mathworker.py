"""Worker process for `dualtune.prompting.mathcheck`: math-verify parse + verify, one request per line.

Run as a plain script (``python _mathworker.py MEMORY_MB``) so that it imports only math-verify, not
dualtune (whose import pulls in ``datasets``). Protocol on stdin/stdout, one JSON object per line:
request ``{"pred": str, "gold": str, "cpu_s": int}``, reply ``{"status": "ok", "equal": bool}`` or
``{"status": "memory"}`` (the worker exits after a MemoryError; the client restarts it lazily).
It writes ``ready`` once its imports are done. Bounds, enforced by the kernel so that they hold even
inside C code that ignores signals: the address space (RLIMIT_AS = MEMORY_MB) and, per request, the
CPU time (the RLIMIT_CPU soft limit is moved to "used so far + cpu_s", past which SIGXCPU kills the
process; the client's wall-time limit is lower and normally kills it first). It exits on stdin EOF.
"""

import json
import os
import re
import resource
import sys

# Run as a script, sys.path[0] is this package folder; drop it so its modules shadow nothing.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]


def _limit_memory(megabytes: int) -> None:
    """Cap this process's address space at ``megabytes`` (never above an existing hard limit)."""
    if megabytes <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = megabytes << 20
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _limit_cpu(seconds: int) -> None:
    """Let the next request use at most ``seconds`` more CPU seconds (SIGXCPU, then SIGKILL, after)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime) + max(1, seconds)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def math_parse(expression: str):
    """math-verify parse of ``expression`` without signal-based timeouts; [] when it fails."""
    from math_verify import parse

    # Prose ("so x is 3") and already-delimited strings go to math-verify's own extractors.
    prose = re.search(r"[A-Za-z]{2,}\s+[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", " ", expression))
    if "$" in expression or "\\boxed" in expression or prose:
        return parse(expression, parsing_timeout=None)
    # Bare LaTeX parses reliably only inside $...$ ("2\\sqrt{2}" alone parses as 2).
    return parse(f"${expression}$", parsing_timeout=None) or parse(expression, parsing_timeout=None)


def math_equal(pred: str, gold: str) -> bool:
    """True iff math-verify parses both and finds them equivalent (parser failures mean False)."""
    from math_verify import verify

    try:
        gold_parsed, pred_parsed = math_parse(gold), math_parse(pred)
        return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=None))
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - a parser failure means "not verified", never a crash
        return False


def main() -> None:
    """Serve requests from stdin until EOF (see the module docstring for the protocol)."""
    import logging

    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    import math_verify  # noqa: F401 - import before "ready" so that requests do not pay for it

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # the "timeout is disabled" notices
    reply = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol
    reply.write("ready\n")
    for line in sys.stdin:
        request = json.loads(line)
        _limit_cpu(int(request.get("cpu_s", 10)))
        try:
            answer = {"status": "ok", "equal": math_equal(request["pred"], request["gold"])}
        except MemoryError:
            reply.write(json.dumps({"status": "memory"}) + "\n")
            return
        reply.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
