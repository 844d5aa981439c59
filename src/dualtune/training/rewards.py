"""Rule-based GRPO rewards with TRL's reward-function signature, and their weighted combination.

Every reward is ``fn(completions: list[str], **columns) -> list[float | None]``: ``completions`` are
the decoded completions (prompt excluded) and ``columns`` are per-completion lists named after the
sample schema plus rollout fields (``answer``, ``answer_type``, ``options``, ``domain``, ``mode``,
``completion_lengths``, ...). Unknown columns are ignored, so a function only names what it needs.
``None`` means "not applicable to this completion" (e.g. the format reward on a direct-mode
answer); `combine_rewards` treats it as a zero contribution, as TRL's ``nansum`` does.

Answer extraction and scoring are shared with evaluation (`dualtune.prompting.answers`), so the
training signal and the reported metric can never disagree.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Callable, Sequence

import torch
from torch import Tensor

from dualtune.prompting.answers import cot_format_ok, score_output

RewardFunc = Callable[..., list]
# Same shape and default as ``domain.numeric_metric`` (what evaluation scores with): data domain -> "exact" | "mra".
DEFAULT_NUMERIC_METRIC = {"spatial": "mra"}  # spatial numbers are measurements: dense MRA, not exact match


def _column(values, name: str, size: int, default=None) -> list:
    """Column ``values`` as a list of length ``size`` (``default`` repeated when it is absent)."""
    if values is None:
        return [default] * size
    values = list(values)
    if len(values) != size:
        raise ValueError(f"column {name!r} has {len(values)} values for {size} completions")
    return values


def accuracy_reward(completions: list[str], answer: Sequence[str], answer_type: Sequence[str],
                    options: Sequence | None = None, domain: Sequence[str] | None = None,
                    numeric_metric: Mapping[str, str] | None = None, meta: Sequence | None = None,
                    **_columns) -> list[float]:
    """Score of each completion's extracted answer against the gold ``answer``, in [0, 1].

    Uses the evaluation extractor/scorer (`score_output`) with the evaluation's per-domain numeric
    metric: ``numeric_metric`` maps a sample's ``domain`` to "exact" (the default) or "mra" (VSI-Bench
    mean relative accuracy, a dense reward); None means ``DEFAULT_NUMERIC_METRIC``. The GRPO recipe
    passes ``domain.numeric_metric``, so rewards and evaluation score numbers the same way; a sample's
    own scoring rules (``meta["scoring"]``: precision, accepted golds, multi-letter, metric) apply too.
    """
    n = len(completions)
    answers, types = _column(answer, "answer", n), _column(answer_type, "answer_type", n)
    option_lists = _column(options, "options", n)
    domains = _column(domain, "domain", n, default="")
    metas = _column(meta, "meta", n, default="{}")
    rewards = []
    for text, gold, kind, opts, dom, info in zip(completions, answers, types, option_lists, domains, metas):
        metric = (DEFAULT_NUMERIC_METRIC if numeric_metric is None else numeric_metric).get(dom, "exact")
        sample = {"answer": gold, "answer_type": kind, "options": list(opts or []), "meta": info or "{}"}
        rewards.append(float(score_output(text, sample, numeric_metric=metric)[1]))
    return rewards


def format_reward(completions: list[str], mode: Sequence[str] | None = None, prefilled_think: bool = False,
                  **_columns) -> list[float | None]:
    """CoT format reward: 1.0 iff the completion is exactly one think block then one non-empty
    answer block (`cot_format_ok`), else 0.0; ``None`` for direct-mode completions.

    A missing ``mode`` column means every completion is in CoT mode. ``prefilled_think=True`` is for
    chat templates that open ``<think>`` in the prompt (the completion starts inside the thought).
    """
    modes = _column(mode, "mode", len(completions), default="cot")
    return [None if m == "direct" else float(cot_format_ok(text, prefilled_think=prefilled_think))
            for text, m in zip(completions, modes)]


def soft_overlong_value(length: int, max_len: int, cache_len: int) -> float:
    """DAPO soft overlong punishment for one completion of ``length`` tokens.

    0 up to ``max_len - cache_len`` tokens, then a linear ramp down to -1 at ``max_len``, and -1
    beyond it: ``(max_len - cache_len - length) / cache_len`` inside the buffer.
    """
    if not 0 <= cache_len <= max_len:
        raise ValueError(f"need 0 <= cache_len <= max_len, got cache_len={cache_len}, max_len={max_len}")
    safe = max_len - cache_len
    if length <= safe:
        return 0.0
    if length > max_len:
        return -1.0
    return (safe - length) / cache_len


def overlong_penalty(max_len: int | dict, cache_len: int) -> RewardFunc:
    """Factory for the DAPO soft overlong punishment reward on ``completion_lengths`` (tokens).

    ``max_len`` is an int or a per-mode dict (``{"cot": 512, "direct": 16}``), looked up through the
    ``mode`` column, so each answer mode is punished relative to its own generation budget.
    """

    def overlong(completions: list[str], completion_lengths: Sequence[int] | None = None,
                 mode: Sequence[str] | None = None, **_columns) -> list[float]:
        if completion_lengths is None:
            raise ValueError("the overlong reward needs a 'completion_lengths' column")
        lengths = _column(completion_lengths, "completion_lengths", len(completions))
        modes = _column(mode, "mode", len(completions), default="cot")
        limits = [max_len[m] if isinstance(max_len, Mapping) else max_len for m in modes]
        return [soft_overlong_value(int(n), int(limit), int(cache_len)) for n, limit in zip(lengths, limits)]

    overlong.__name__ = "overlong"
    return overlong


REWARD_FUNCS: dict[str, RewardFunc] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "overlong": overlong_penalty,  # a factory: call it with max_len / cache_len (see build_reward_funcs)
}
REWARD_FACTORIES = ("overlong",)


def reward_name(func: RewardFunc) -> str:
    """Display/log name of a reward function (its registry name, else ``__name__``)."""
    func = getattr(func, "func", func)  # a functools.partial of a registered reward keeps its name
    for name, registered in REWARD_FUNCS.items():
        if func is registered:
            return name
    return getattr(func, "__name__", type(func).__name__)


def build_reward_funcs(specs: Sequence, options: dict | None = None) -> list[RewardFunc]:
    """Resolve reward specs (registry names or callables) into callables.

    Factory entries (``"overlong"``) are built with ``options[name]`` as keyword arguments,
    e.g. ``{"overlong": {"max_len": {"cot": 512, "direct": 16}, "cache_len": 64}}``; plain rewards
    get ``options[name]`` bound as keyword arguments when present (e.g. accuracy's ``numeric_metric``).
    """
    options = dict(options or {})
    funcs = []
    for spec in specs:
        if callable(spec):
            funcs.append(spec)
            continue
        if spec not in REWARD_FUNCS:
            raise ValueError(f"unknown reward {spec!r}; expected one of {sorted(REWARD_FUNCS)} or a callable")
        if spec in REWARD_FACTORIES:
            if spec not in options:
                raise ValueError(f"reward {spec!r} needs options[{spec!r}] (e.g. max_len, cache_len)")
            funcs.append(REWARD_FUNCS[spec](**dict(options[spec])))
        elif options.get(spec):
            funcs.append(functools.partial(REWARD_FUNCS[spec], **dict(options[spec])))
        else:
            funcs.append(REWARD_FUNCS[spec])
    return funcs


def combine_rewards(funcs: Sequence[RewardFunc], weights: Sequence[float] | None, completions: list[str],
                    **columns) -> tuple[Tensor, Tensor]:
    """Call every reward function and combine them: returns ``(per_func [N, F], total [N])``.

    ``per_func`` holds NaN where a function returned None (so per-reward means can use nanmean);
    ``total = nansum(per_func * weights)``, i.e. a None counts as a zero contribution. Weights
    default to 1 for every function.
    """
    weights = [1.0] * len(funcs) if weights is None else [float(w) for w in weights]
    if len(weights) != len(funcs):
        raise ValueError(f"{len(weights)} reward weights for {len(funcs)} reward functions")
    columns_out = []
    for func in funcs:
        values = func(completions, **columns)
        if len(values) != len(completions):
            raise ValueError(f"reward {reward_name(func)!r} returned {len(values)} values for {len(completions)}")
        columns_out.append([float("nan") if v is None else float(v) for v in values])
    per_func = torch.tensor(columns_out, dtype=torch.float32).reshape(len(funcs), len(completions)).T
    total = torch.nansum(per_func * torch.tensor(weights, dtype=torch.float32), dim=1)
    return per_func, total
