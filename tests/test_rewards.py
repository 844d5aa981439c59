"""Rule-based GRPO rewards on hand-written completions, including known failure strings."""

import math

import pytest
import torch

from dualtune.training.rewards import (
    REWARD_FUNCS,
    accuracy_reward,
    build_reward_funcs,
    combine_rewards,
    format_reward,
    overlong_penalty,
    soft_overlong_value,
)

CHOICE = {"answer": "A", "answer_type": "choice", "options": ["red", "blue"], "domain": "spatial"}
PROMPT_ECHO = ("Think step by step inside <think></think>, then give the option letter inside "
               "<answer></answer>.\n<think>The square is red.</think><answer>A</answer>")


def columns(n, **row):
    """Repeat one sample's fields as per-completion columns."""
    return {k: [v] * n for k, v in row.items()}


def test_accuracy_choice_correct_incorrect_and_option_text():
    completions = ["<think>It is red.</think><answer>A</answer>", "<think>It is blue.</think><answer>B</answer>",
                   "red", PROMPT_ECHO, "<think>The square is red."]
    assert accuracy_reward(completions, **columns(5, **CHOICE)) == [1.0, 0.0, 1.0, 1.0, 0.0]


def test_accuracy_numeric_uses_mra_only_for_spatial_domain():
    completions = ["<answer>8</answer>", "<answer>10</answer>", "<answer>15</answer>"]
    spatial = accuracy_reward(completions, answer=["10"] * 3, answer_type=["number"] * 3, domain=["spatial"] * 3)
    # |8-10|/10 = 0.2 < 1-θ holds for θ in 0.50..0.75 (6 of 10 thresholds); 15 is 0.5 off: none.
    assert spatial == pytest.approx([0.6, 1.0, 0.0])
    math_domain = accuracy_reward(completions, answer=["10"] * 3, answer_type=["number"] * 3, domain=["math"] * 3)
    assert math_domain == [0.0, 1.0, 0.0]


def test_accuracy_ignores_unknown_columns_and_works_without_options():
    out = accuracy_reward(["The answer is 7"], answer=["7"], answer_type=["number"], meta=["{}"], mode=["direct"])
    assert out == [1.0]


def test_format_reward_cases():
    completions = [
        "<think>red square</think><answer>A</answer>",  # exact format
        "<think>a</think><answer>A</answer><think>b</think><answer>B</answer>",  # duplicated blocks
        PROMPT_ECHO,  # the prompt's empty tags echoed before the answer
        "<answer>A</answer>",  # no thought
        "<think>red</think><answer>  </answer>",  # empty answer
    ]
    assert format_reward(completions, mode=["cot"] * 5) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_format_reward_prefilled_think_and_direct_mode():
    prefilled = "the square is red</think><answer>A</answer>"
    assert format_reward([prefilled], mode=["cot"]) == [0.0]
    assert format_reward([prefilled], mode=["cot"], prefilled_think=True) == [1.0]
    assert accuracy_reward([prefilled], **columns(1, **CHOICE)) == [1.0]
    assert format_reward(["A", "<think>x</think><answer>A</answer>"], mode=["direct", "cot"]) == [None, 1.0]
    assert format_reward(["<think>x</think><answer>A</answer>"]) == [1.0]  # no mode column: cot


@pytest.mark.parametrize("length,expected", [(0, 0.0), (6, 0.0), (7, -0.25), (8, -0.5), (10, -1.0), (11, -1.0)])
def test_soft_overlong_values(length, expected):
    # max_len 10, cache 4: free up to 6 tokens, then (6 - L) / 4, then -1 beyond 10.
    assert soft_overlong_value(length, max_len=10, cache_len=4) == pytest.approx(expected)


def test_overlong_penalty_per_mode_limits_and_missing_column():
    reward = overlong_penalty({"cot": 10, "direct": 4}, cache_len=2)
    out = reward(["x"] * 3, completion_lengths=[9, 3, 5], mode=["cot", "direct", "direct"])
    assert out == pytest.approx([-0.5, -0.5, -1.0])  # cot safe=8: (8-9)/2; direct safe=2: (2-3)/2; 5 > 4
    with pytest.raises(ValueError, match="completion_lengths"):
        reward(["x"])
    with pytest.raises(ValueError):
        soft_overlong_value(3, max_len=4, cache_len=5)


def test_combine_rewards_weights_and_none():
    completions = ["<think>red</think><answer>A</answer>", "A", "<think>blue</think> B"]
    cols = columns(3, **CHOICE)
    cols["mode"] = ["cot", "direct", "cot"]
    per_func, total = combine_rewards([accuracy_reward, format_reward], [1.0, 0.5], completions, **cols)
    assert per_func.shape == (3, 2)
    assert per_func[0].tolist() == [1.0, 1.0] and per_func[2].tolist() == [0.0, 0.0]
    assert per_func[1, 0] == 1.0 and math.isnan(per_func[1, 1])  # None kept as NaN for nanmean
    assert torch.allclose(total, torch.tensor([1.5, 1.0, 0.0]))  # None contributes 0
    _, unweighted = combine_rewards([accuracy_reward, format_reward], None, completions, **cols)
    assert torch.allclose(unweighted, torch.tensor([2.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="weights"):
        combine_rewards([accuracy_reward], [1.0, 2.0], completions, **cols)


def test_registry_and_builder():
    assert set(REWARD_FUNCS) == {"accuracy", "format", "overlong"}
    custom = lambda completions, **_: [0.0] * len(completions)  # noqa: E731
    funcs = build_reward_funcs(["accuracy", "overlong", custom], {"overlong": {"max_len": 8, "cache_len": 2}})
    assert funcs[0] is accuracy_reward and funcs[2] is custom
    assert funcs[1](["x", "y"], completion_lengths=[7, 9]) == [-0.5, -1.0]
    with pytest.raises(ValueError, match="unknown reward"):
        build_reward_funcs(["nope"])
    with pytest.raises(ValueError, match="needs options"):
        build_reward_funcs(["overlong"])


def test_accuracy_reward_uses_the_configured_numeric_metric():
    from dualtune.training.rewards import build_reward_funcs, reward_name

    # 9 vs gold 10: MRA 0.8 where the domain config says "mra", 0 under exact match.
    funcs = build_reward_funcs(["accuracy"], {"accuracy": {"numeric_metric": {"math": "mra"}}})
    cols = {"answer": ["10", "10"], "answer_type": ["number"] * 2, "domain": ["math", "spatial"]}
    assert funcs[0](["<answer>9</answer>"] * 2, **cols) == [pytest.approx(0.8), 0.0]
    assert reward_name(funcs[0]) == "accuracy"


def test_accuracy_reward_applies_the_samples_scoring_rules():
    """Rewards score as evaluation does, per-sample rules included (a published dataset's meta.scoring)."""
    import json

    from dualtune.training.rewards import accuracy_reward

    meta = [json.dumps({"scoring": {"precision": 1}}), json.dumps({"scoring": {"accepted": ["five"]}})]
    got = accuracy_reward(["<answer>1.46</answer>", "<answer>five</answer>"], answer=["1.5", "5"],
                          answer_type=["number", "text"], meta=meta)
    assert got == [1.0, 1.0]
    assert accuracy_reward(["<answer>1.46</answer>"], answer=["1.5"], answer_type=["number"]) == [0.0]
