"""Gain_token: the CoT gain per generated token (Dual Tuning Fig. 3), as swappable pure definitions.

The paper shows Gain_token next to Gain_CoT per MathVista task but never defines it. The default definition
is the digest's hypothesis (dual_tuning.md §2.2): the CoT gain per 100 generated CoT tokens,

    Gain_token = Gain_CoT / (L / 100)        L = mean generated tokens of the tuned model's CoT-mode answers

so ``Gain_CoT / Gain_token = L / 100`` (the paper's ratios 1.87 / 4.33 / 2.12 / 7.17 would be mean lengths of
187 / 433 / 212 / 717 tokens). Every definition is a pure function ``(gain_cot, mean_tokens) -> float`` in
`GAIN_TOKEN`, chosen by name (config key ``study.gain_token``, ``--gain-token`` on the CLIs); add one with
`register_gain_token`. ``mean_tokens`` must be > 0 (a task with no generated token has no per-token gain).
"""

from __future__ import annotations

import math
from typing import Callable

DEFAULT_GAIN_TOKEN = "per_100_tokens"
GainToken = Callable[[float, float], float]
GAIN_TOKEN: dict[str, GainToken] = {}


def register_gain_token(name: str):
    """Decorator: register ``fn(gain_cot, mean_tokens) -> float`` as the Gain_token definition ``name``."""
    def wrap(fn: GainToken) -> GainToken:
        if name in GAIN_TOKEN:
            raise ValueError(f"Gain_token definition {name!r} is already registered")
        GAIN_TOKEN[name] = fn
        return fn
    return wrap


@register_gain_token("per_100_tokens")
def per_100_tokens(gain_cot: float, mean_tokens: float) -> float:
    """The digest's hypothesis (§2.2): Gain_CoT per 100 generated CoT tokens, ``Gain_CoT * 100 / L``.

    >>> per_100_tokens(3.65, 187.0)
    1.9518716577540107
    """
    return float(gain_cot) * 100.0 / float(mean_tokens)


@register_gain_token("per_token")
def per_token(gain_cot: float, mean_tokens: float) -> float:
    """Gain_CoT per single generated CoT token, ``Gain_CoT / L`` (the same ranking, 100x smaller)."""
    return float(gain_cot) / float(mean_tokens)


@register_gain_token("per_log_tokens")
def per_log_tokens(gain_cot: float, mean_tokens: float) -> float:
    """Gain_CoT per doubling of the CoT length, ``Gain_CoT / log2(1 + L)`` (penalizes length less than
    linearly: an alternative reading of "token-level gain")."""
    return float(gain_cot) / math.log2(1.0 + float(mean_tokens))


def gain_token(gain_cot: float, mean_tokens: float, definition: str = DEFAULT_GAIN_TOKEN) -> float:
    """Gain_token of one task under the registered ``definition``; ValueError for an unknown name, a
    non-finite value or ``mean_tokens <= 0``."""
    if definition not in GAIN_TOKEN:
        raise ValueError(f"unknown Gain_token definition {definition!r}; registered: {sorted(GAIN_TOKEN)}")
    if not (math.isfinite(gain_cot) and math.isfinite(mean_tokens)):
        raise ValueError(f"Gain_token needs finite values, got gain_cot={gain_cot}, mean_tokens={mean_tokens}")
    if mean_tokens <= 0:
        raise ValueError(f"Gain_token needs a mean CoT length > 0 tokens, got {mean_tokens}")
    return GAIN_TOKEN[definition](float(gain_cot), float(mean_tokens))
