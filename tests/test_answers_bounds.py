"""Bounded scoring: math-verify never hangs (worker process, time and memory limits, counted cut-offs)
and extraction stays linear on degenerate sampled outputs."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dualtune.prompting import mathcheck
from dualtune.prompting.answers import (
    _blocks,
    _last_boxed,
    cot_format_ok,
    extract_answer,
    score_output,
    score_prediction,
    strip_thinking,
)

MB = 1 << 20
# Escapes the cheap guard (no numeral directly raised in the exponent) but is 10^(10^10): only the
# worker's wall-time limit stops it.
UNGUARDED_TOWER = "10^{10 \\cdot 10^{9}}"


def _python(code: str, timeout: float, **env) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (a hang there fails the test instead of hanging pytest)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def test_power_towers_from_the_issue_return_promptly_in_a_fresh_process():
    # Before: math-verify ran unbounded in-process; 10^{10^{10}} never returned (~720 MB, SIGALRM-proof).
    code = (
        "import time; from dualtune.prompting.answers import score_output, score_prediction\n"
        "from dualtune.prompting.mathcheck import math_verify_stats\n"
        "t = time.monotonic()\n"
        "for e in ['10^{10^{10}}', '9^{9^{9}}', '2^{2^{64}}', " + repr(UNGUARDED_TOWER) + "]:\n"
        "    assert score_prediction(e, '5', 'math') == 0.0, e\n"
        "assert score_output('<answer>\\\\boxed{2^{2^{64}}}</answer>', {'answer': '4', 'answer_type': 'math'})[1] == 0\n"
        "assert score_prediction('\\\\frac{1}{2}', '0.5', 'math') == 1.0\n"
        "print(math_verify_stats(), round(time.monotonic() - t, 1))\n"
    )
    done = _python(code, timeout=90, DUALTUNE_MATH_TIMEOUT_S="1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'timeouts': 1" in done.stdout and "'too_large': 4" in done.stdout, done.stdout
    assert "math-verify cut off (timeout" in done.stderr and "10^{10 \\\\cdot 10^{9}}" in done.stderr


def test_timeout_kills_the_worker_counts_it_and_the_next_check_restarts_it(caplog):
    mathcheck.math_verify_equal("1", "1.0")  # make sure a worker is up
    first_pid = mathcheck._checker.proc.pid
    before = mathcheck.math_verify_stats()
    start = time.monotonic()
    with caplog.at_level("WARNING", logger="dualtune.prompting.mathcheck"):
        assert mathcheck.math_verify_equal(UNGUARDED_TOWER, "7", timeout_s=1) is False
    assert time.monotonic() - start < 15
    assert mathcheck._checker.proc is None  # killed, not left running
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)
    after = mathcheck.math_verify_stats()
    assert after["timeouts"] == before["timeouts"] + 1
    assert any("timeout" in r.getMessage() and "10^{10" in r.getMessage() for r in caplog.records)
    assert mathcheck.math_verify_equal("\\frac{2}{4}", "0.5") is True  # lazily restarted
    assert mathcheck._checker.proc.pid != first_pid
    assert mathcheck.math_verify_stats()["verified"] == after["verified"] + 1


def test_guard_and_stats_and_cache():
    assert mathcheck.too_large("10^{10^{10}}") and mathcheck.too_large("9^9^9") and mathcheck.too_large("2**(2**64)")
    assert mathcheck.too_large("2^{12345678}") and mathcheck.too_large("1000000!") and mathcheck.too_large("1" * 401)
    assert not any(mathcheck.too_large(e) for e in ["2^{10}", "x^{2}+1", "2^{2^{n}}", "10!", "\\frac{1}{2}"])
    before = mathcheck.math_verify_stats()
    assert mathcheck.math_verify_equal("9^{9^{9}}", "9") is False
    assert mathcheck.math_verify_equal("\\sqrt{16}", "4") is True
    assert mathcheck.math_verify_equal("\\sqrt{16}", "4") is True
    after = mathcheck.math_verify_stats(reset=True)
    assert {k: after[k] - before[k] for k in after} == {
        "verified": 1, "timeouts": 0, "too_large": 1, "crashed": 0, "cached": 1}
    assert set(mathcheck.math_verify_stats().values()) == {0}


def test_limits_are_validated_and_the_worker_has_a_memory_cap(monkeypatch):
    with pytest.raises(ValueError, match="timeout"):
        mathcheck.math_verify_equal("1", "2", timeout_s=0)
    monkeypatch.setenv("DUALTUNE_MATH_TIMEOUT_S", "soon")
    with pytest.raises(ValueError, match="DUALTUNE_MATH_TIMEOUT_S"):
        mathcheck.math_verify_equal("1", "2")
    monkeypatch.delenv("DUALTUNE_MATH_TIMEOUT_S")
    mathcheck.math_verify_equal("x+2", "2+x")
    limits = Path(f"/proc/{mathcheck._checker.proc.pid}/limits")
    if not limits.exists():
        pytest.skip("no /proc on this platform")
    line = next(ln for ln in limits.read_text().splitlines() if ln.startswith("Max address space"))
    assert int(line.split()[3]) == mathcheck.DEFAULT_MEMORY_MB << 20


def test_math_checks_from_many_threads_share_one_worker():
    results = {}

    def check(i):
        results[i] = mathcheck.math_verify_equal(f"\\frac{{{i}}}{{4}}", repr(i / 4))

    threads = [threading.Thread(target=check, args=(i,)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == {i: True for i in range(1, 9)}


def test_worker_does_not_outlive_the_process():
    code = ("from dualtune.prompting import mathcheck\n"
            "assert mathcheck.math_verify_equal('\\\\frac{1}{2}', '0.5')\n"
            "print(mathcheck._checker.proc.pid)\n")
    done = _python(code, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    pid = int(done.stdout.split()[-1])
    for _ in range(50):  # atexit kill + reap; allow for a loaded box
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"math-verify worker {pid} outlived its parent")


DEGENERATE = {
    "64 KB of \\boxed{": "\\boxed{" * (64 * 1024 // 7),
    "1 MB of <think><answer>": "<think><answer>" * (MB // 15),
    "1 MB of <answer><think>": "<answer><think>" * (MB // 15),
    "1 MB of unclosed <answer>": "<answer>" * (MB // 8),
    "1 MB of unclosed <think>": "<think>" * (MB // 7),
    "1 MB of </think><answer>": "</think><answer>" * (MB // 16),
    "1 MB of boxes in an unclosed answer": "<answer>" + "\\boxed{1" * (MB // 8),
    "1 MB of closed pairs": "<think>a</think><answer>1</answer>" * (MB // 34),
}


@pytest.mark.parametrize("name", list(DEGENERATE))
def test_degenerate_outputs_are_extracted_in_linear_time(name):
    # Before: > 30 s for the 64 KB of \boxed{, > 20 s for the 1 MB tag floods (quadratic rescans).
    output = DEGENERATE[name]
    start = time.monotonic()
    for answer_type in ("number", "choice", "text", "math"):
        extract_answer(output, answer_type, ["red", "blue"] if answer_type == "choice" else None)
    score_output(output, {"answer": "1", "answer_type": "number", "question": "How many?"})
    cot_format_ok(output)
    assert time.monotonic() - start < 2.0


def _old_strip_thinking(text):
    """The previous regex implementation, as the reference for the linear one."""
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        head, tail = text.split("<think>", 1)
        at = tail.find("<answer>")
        text = head + (tail[at:] if at >= 0 else "")
    return text.strip()


def _old_last_boxed(text):
    """The previous rescanning implementation, as the reference for the one-pass one."""
    start = text.rfind("\\boxed{")
    while start >= 0:
        depth = 0
        for pos in range(start + len("\\boxed"), len(text)):
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            if depth == 0:
                return text[start + len("\\boxed{"): pos].strip()
        start = text.rfind("\\boxed{", 0, start)
    return None


def test_linear_scanners_agree_with_the_previous_ones_on_random_tag_soup():
    pieces = ["<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "{", "}", "1", "B", " ", "x"]
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert strip_thinking(text) == _old_strip_thinking(text), text
        assert _last_boxed(text) == _old_last_boxed(text), text
        blocks = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
        assert _blocks(text, "<answer>", "</answer>")[0] == blocks, text


def test_cut_off_checks_are_counted_and_logged_per_run(caplog):
    """What evaluation and RAP scoring record: checks cut off since a snapshot, with a warning."""
    before = mathcheck.math_verify_stats()
    assert score_prediction("10^{10^{10}}", "7", "math") == 0.0
    with caplog.at_level("WARNING"):
        delta = mathcheck.math_checks_since(before)
    assert delta["too_large"] == 1 and "cut off" in caplog.text
