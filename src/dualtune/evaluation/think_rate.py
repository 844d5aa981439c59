"""Auto-think: how often a model chooses to reason when the prompt leaves it free (mode ``auto``).

A completion *thinks* when it holds a non-blank `<think>` block (`dualtune.prompting.answers.thinks`).
Skipped (over-long) prompts produced no completion and are left out of the denominator.
"""

from __future__ import annotations

from collections import defaultdict

from dualtune.prompting.answers import thinks
from dualtune.prompting.templates import AUTO

ALL = "ALL"  # the subtask name of a domain's pooled row (as in the Thinking-Boundary report)


def think_rate(outputs) -> float:
    """Percent of ``outputs`` (completion texts) that think; 0.0 for none."""
    outputs = list(outputs)
    return 100.0 * sum(thinks(o) for o in outputs) / len(outputs) if outputs else 0.0


def think_rates(records: list[dict], mode: str = AUTO) -> list[dict]:
    """``[{domain, subtask, n, n_think, think_rate}]`` over the ``mode`` records (evaluation records, see
    `dualtune.evaluation.runner`): one row per subtask, then one pooled row per domain (subtask ``"ALL"``);
    ``think_rate`` in percent, ``n`` the completions counted (skipped prompts excluded)."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in records:
        if r["mode"] == mode and not r.get("skipped"):
            groups[(r["domain"], r["subtask"])].append(r.get("output") or "")
    rows, pooled = [], defaultdict(list)
    for (domain, subtask), outputs in sorted(groups.items()):
        pooled[domain] += outputs
        rows.append({"domain": domain, "subtask": subtask, "n": len(outputs),
                     "n_think": sum(thinks(o) for o in outputs), "think_rate": think_rate(outputs)})
    for domain, outputs in sorted(pooled.items()):
        rows.append({"domain": domain, "subtask": ALL, "n": len(outputs),
                     "n_think": sum(thinks(o) for o in outputs), "think_rate": think_rate(outputs)})
    return rows
