"""Tests for the shared answer extractor and scorer (hand-computed expected values)."""

from __future__ import annotations

import threading

import pytest

from dualtune.prompting.answers import (
    cot_format_ok,
    extract_answer,
    mean_relative_accuracy,
    score_output,
    score_prediction,
    strip_thinking,
)

COLORS = ["red", "blue", "green", "yellow"]
ECHOED_PROMPT = (
    "What color is the car?\nOptions:\nA. red\nB. blue\nC. green\nD. yellow\n"
    "Think step by step inside <think></think>, "
    "then give the option letter inside <answer></answer>.\n"
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<think>reason</think>The cat", "The cat"),
        ("<think>a</think><think>b</think><answer>B</answer>", "<answer>B</answer>"),
        # Prefilled: the output starts inside the thought and only </think> appears.
        ("started mid-thought</think><answer>C</answer>", "<answer>C</answer>"),
        ("<think>truncated and never closed", ""),
        ("<think>unclosed <answer>B</answer>", "<answer>B</answer>"),
        ("no tags at all", "no tags at all"),
        ("", ""),
    ],
)
def test_strip_thinking(text, expected):
    assert strip_thinking(text) == expected


@pytest.mark.parametrize(
    "output, expected",
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("b", "B"),
        ("B) red", "B"),
        ("Answer: B", "B"),
        ("The answer is (C)", "C"),
        ("Option A looks wrong; the answer is D.", "D"),
        ("blue", "B"),  # option text instead of the letter
        ("  Yellow. ", "D"),
        ("The car is clearly green.", "C"),  # unique containment
        ("It is red or maybe blue", None),  # ambiguous containment
        ("E", None),  # out of range for four options
        ("(F)", None),
        ("purple", None),
        ("\\boxed{D}", "D"),
        ("<think>The car looks blue.</think><answer>B</answer>", "B"),
        ("<think>a</think><answer>A</answer><think>b</think><answer>C</answer>", "C"),  # last wins
        ("prefilled thought goes here</think><answer>D</answer>", "D"),
        ("<think>ok</think><answer>A", "A"),  # missing </answer>
        (ECHOED_PROMPT + "<think>It is blue.</think><answer>B</answer>", "B"),
        (ECHOED_PROMPT + "<think>It is blue.</think><answer>B", "B"),  # echo has an empty block
        (ECHOED_PROMPT.replace("Think step", "Answer directly. Think step") + "C", "C"),
        ("<think>still thinking about A or B", None),  # truncated thought, no answer
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_extract_choice(output, expected):
    assert extract_answer(output, "choice", COLORS) == expected


def test_extract_choice_letter_range_follows_options():
    assert extract_answer("C", "choice", ["yes", "no"]) is None
    assert extract_answer("C", "choice", ["yes", "no", "maybe"]) == "C"
    assert extract_answer("C", "choice", None) == "C"  # no options: any letter


@pytest.mark.parametrize(
    "output, expected",
    [
        ("5", "5"),
        ("3 + 2 = 5", "5"),
        ("1,234 meters", "1234"),
        ("<answer>2.50 m</answer>", "2.5"),
        ("about 12 cm", "12"),
        ("-7", "-7"),
        ("x = -0.5", "-0.5"),
        ("between 2-3 meters", None),  # a range offers two values (the hyphen is no minus sign)
        ("grid-3", "3"),  # a hyphen after a word is not a minus sign
        ("3/4", "0.75"),
        ("\\boxed{\\frac{3}{4}}", "0.75"),
        ("1/3", "0.3333333333333333"),
        ("1e3", "1000"),
        ("50%", "50"),
        ("seven", "7"),
        ("<think>Maybe 3 or 4 chairs.</think><answer>4</answer>", "4"),
        ("<think>count: 3, 4, 5</think>There are 6.", "6"),
        ("<think>\\boxed{3}</think>", "3"),  # only the thought holds a box
        ("\\boxed{2} is wrong, it is \\boxed{9}", "9"),  # last box
        ("no digits here", None),
        ("", None),
    ],
)
def test_extract_number(output, expected):
    assert extract_answer(output, "number") == expected


@pytest.mark.parametrize(
    "output, expected",
    [
        ("The Cat!", "cat"),
        ("<think>x</think>An apple.", "apple"),
        ("Answer: the Eiffel  Tower", "eiffel tower"),
        ("<answer> Left </answer>", "left"),
        ("!!!", None),
    ],
)
def test_extract_text(output, expected):
    assert extract_answer(output, "text") == expected


@pytest.mark.parametrize(
    "output, expected",
    [
        ("<think>...</think><answer>\\boxed{\\frac{1}{2}}</answer>", "\\frac{1}{2}"),
        ("so x = \\boxed{\\sqrt{\\frac{8}{2}}} done", "\\sqrt{\\frac{8}{2}}"),  # nested braces
        ("<answer>$2\\sqrt{2}$</answer>", "2\\sqrt{2}"),
        ("The answer is 5", "5"),
        ("0.5", "0.5"),
    ],
)
def test_extract_math(output, expected):
    assert extract_answer(output, "math") == expected


def test_extract_unknown_type_raises():
    with pytest.raises(ValueError):
        extract_answer("5", "essay")


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        (10, 10, 1.0),
        (9, 10, 0.8),  # rel err 0.10 < 1-θ only for θ in 0.50..0.85 -> 8/10
        (9.5, 10, 0.9),  # rel err 0.05 passes θ 0.50..0.90 (0.05 < 0.05 fails at 0.95) -> 9/10
        (11, 10, 0.8),
        (12, 10, 0.6),  # rel err 0.2 < 1-θ for θ 0.50..0.75 -> 6/10
        (5.4, 10, 0.1),  # rel err 0.46 passes only θ = 0.50
        (15, 10, 0.0),  # rel err 0.5 is not < 0.5
        (-10, 10, 0.0),
        (0, 0, 1.0),
        (0.1, 0, 0.0),
        (float("nan"), 10, 0.0),
    ],
)
def test_mean_relative_accuracy(pred, gt, expected):
    assert mean_relative_accuracy(pred, gt) == pytest.approx(expected)


def test_mean_relative_accuracy_custom_thresholds():
    assert mean_relative_accuracy(9, 10, thresholds=[0.5, 0.95]) == 0.5


@pytest.mark.parametrize(
    "pred, answer, answer_type, metric, expected",
    [
        ("B", "B", "choice", "exact", 1.0),
        ("B", "C", "choice", "exact", 0.0),
        ("b", "B", "choice", "exact", 1.0),
        ("blue", "B", "choice", "exact", 1.0),
        (None, "B", "choice", "exact", 0.0),
        ("", "B", "choice", "exact", 0.0),
        ("5", "5", "number", "exact", 1.0),
        ("5.0000001", "5", "number", "exact", 1.0),  # within rel_tol * max(1, |gt|)
        ("5.01", "5", "number", "exact", 0.0),
        ("1,000", "1000", "number", "exact", 1.0),
        ("9", "10", "number", "mra", 0.8),
        ("10", "10", "number", "mra", 1.0),
        ("abc", "10", "number", "mra", 0.0),
        ("eiffel tower", "The Eiffel Tower.", "text", "exact", 1.0),
        ("tower", "The Eiffel Tower.", "text", "exact", 0.0),
        ("\\frac{1}{2}", "0.5", "math", "exact", 1.0),
        ("0.5", "\\frac{1}{2}", "math", "exact", 1.0),
        ("2\\sqrt{2}", "\\sqrt{8}", "math", "exact", 1.0),
        ("x+1", "1+x", "math", "exact", 1.0),
        ("3", "4", "math", "exact", 0.0),
        ("-1", "1", "math", "exact", 0.0),
        ("\\pi", "3.14159", "math", "exact", 0.0),
        ("The answer is 5", "5", "math", "exact", 1.0),
        (None, "5", "math", "exact", 0.0),
    ],
)
def test_score_prediction(pred, answer, answer_type, metric, expected):
    score = score_prediction(pred, answer, answer_type, COLORS, numeric_metric=metric)
    assert score == pytest.approx(expected)


def test_score_prediction_rejects_unknown_metric_and_type():
    with pytest.raises(ValueError):
        score_prediction("5", "5", "number", numeric_metric="rmse")
    with pytest.raises(ValueError):
        score_prediction("5", "5", "essay")


def test_math_scoring_works_off_the_main_thread():
    # math-verify's default timeouts use signal.alarm, which raises outside the main thread.
    results = []

    def score_half():
        results.append(score_prediction("0.5", "\\frac{1}{2}", "math"))

    worker = threading.Thread(target=score_half)
    worker.start()
    worker.join()
    assert results == [1.0]


@pytest.mark.parametrize(
    "output, sample, metric, expected",
    [
        ("<think>blue car</think><answer>B</answer>", {"answer": "B", "answer_type": "choice",
                                                        "options": COLORS}, "exact", ("B", 1.0)),
        ("<think>x</think><answer>9 meters</answer>", {"answer": "10", "answer_type": "number"},
         "mra", ("9", 0.8)),
        ("<think>x</think><answer>9 meters</answer>", {"answer": "10", "answer_type": "number"},
         "exact", ("9", 0.0)),
        ("<think>x</think>\\boxed{\\frac{1}{2}}", {"answer": "0.5", "answer_type": "math"},
         "exact", ("\\frac{1}{2}", 1.0)),
        ("<think>never finished", {"answer": "cat", "answer_type": "text"}, "exact", (None, 0.0)),
    ],
)
def test_score_output(output, sample, metric, expected):
    assert score_output(output, sample, numeric_metric=metric) == expected


@pytest.mark.parametrize(
    "output, prefilled, expected",
    [
        ("<think>reason</think><answer>B</answer>", False, True),
        ("  <think>\nreason\n</think>\n\n<answer> B </answer>\n", False, True),
        ("<think>reason</think><answer>  </answer>", False, False),  # empty answer
        ("<think>a</think><answer>A</answer><answer>B</answer>", False, False),  # duplicated answer
        ("<think>a</think><think>b</think><answer>B</answer>", False, False),  # duplicated think
        ("<think>a</think><answer>A</answer><think>b</think><answer>B</answer>", False, False),
        ("reason</think><answer>B</answer>", False, False),  # prefilled but not declared
        ("reason</think><answer>B</answer>", True, True),
        ("<think>reason</think><answer>B</answer>", True, False),  # extra opener when prefilled
        ("<think>reason</think><answer>B", False, False),  # missing </answer>
        ("<think>reason</think>B", False, False),
        ("Sure! <think>reason</think><answer>B</answer>", False, False),  # text outside blocks
        ("<think>reason</think><answer>B</answer> Done.", False, False),
        ("<answer>B</answer>", False, False),
        ("", False, False),
        (None, False, False),
    ],
)
def test_cot_format_ok(output, prefilled, expected):
    assert cot_format_ok(output, prefilled_think=prefilled) is expected


@pytest.mark.parametrize("output", ["4e99999999", "<answer>1e400</answer>", "<answer>-7e-999999</answer>"])
def test_absurd_exponents_are_not_numbers_and_do_not_hang(output):
    # Sampled GRPO junk: an exact Fraction of 4e99999999 hangs for minutes; 1e400 overflows float MRA.
    assert extract_answer(output, "number") is None
    assert score_prediction(extract_answer(output, "number"), "3", "number", numeric_metric="mra") == 0.0
    assert score_output(output, {"answer": "3", "answer_type": "number"}, numeric_metric="mra") == (None, 0.0)
