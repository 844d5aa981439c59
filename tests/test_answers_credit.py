"""No false credit: hedged answers, near-miss large integers, and numbers from an echoed question."""

from __future__ import annotations

import pytest

from dualtune.prompting.answers import extract_answer, score_output, score_prediction
from dualtune.prompting.templates import prompt_text

COLORS = ["red", "blue", "green", "yellow"]
NUMBER_13 = {"answer": "13", "answer_type": "number"}


@pytest.mark.parametrize("output", [
    "<answer>12 or 13</answer>", "<answer>12, 13</answer>", "<answer>either 12 or 13</answer>",
    "<answer>12 13</answer>", "<answer>13 or maybe 12</answer>", "<answer>12-13</answer>",
    "<answer>x = 12 or 13</answer>", "<answer>twelve or thirteen</answer>", "12 or 13",
])
def test_several_distinct_numbers_get_no_credit(output):
    assert score_output(output, NUMBER_13) == (None, 0.0)


@pytest.mark.parametrize("output, expected", [
    ("<answer>13</answer>", "13"), ("13 apples", "13"), ("The answer is 13.", "13"),
    ("<answer>1,234</answer>", "1234"), ("3/4", "0.75"), ("13 or 13", "13"),
    # A worked equation counts by its result (the text after the last "="): 2 x 3 = 6 is 6.
    ("2 x 3 = 6", "6"), ("<answer>4 + 9 = 13</answer>", "13"), ("x = 12 or 13", None),
    ("<think>maybe 12 or 14</think><answer>13</answer>", "13"),  # the thought may weigh options
])
def test_single_number_answers_still_extract(output, expected):
    assert extract_answer(output, "number") == expected


@pytest.mark.parametrize("output", [
    "A or B", "A, B", "Answer: A or B", "The answer is A, B", "(A) or (B)", "either A or B",
    "B) red or C) green", "The answer is B/C", "<answer>A and C</answer>",
    "The car is red.\nAnswer: A or D",
])
def test_several_letters_get_no_credit(output):
    for gold in "ABCD":
        assert score_output(output, {"answer": gold, "answer_type": "choice", "options": COLORS})[1] == 0.0


@pytest.mark.parametrize("output, expected", [
    ("Options A, B are wrong; the answer is C.", "C"),  # alternatives outside the answer phrase
    ("Option A looks wrong; the answer is D.", "D"),
    ("B) red", "B"), ("The answer is (C)", "C"), ("A", "A"), ("(B)", "B"),
])
def test_single_letter_answers_still_extract(output, expected):
    assert extract_answer(output, "choice", COLORS) == expected


@pytest.mark.parametrize("pred, gold, expected", [
    ("1000001", "1000000", 0.0),  # was 1.0: rel_tol 1e-6 * 10^6 accepted +-1
    ("999999", "1000000", 0.0),
    ("123456789", "123456788", 0.0),
    ("1000000", "1,000,000", 1.0),
    ("1000000.0", "1000000", 1.0),  # integer-valued on both sides: exact equality holds
    ("5.0000001", "5", 1.0),  # a non-integer is involved: the relative tolerance applies
    ("1000000.5", "1000000", 1.0),
])
def test_integers_compare_exactly(pred, gold, expected):
    assert score_prediction(pred, gold, "number") == expected


def test_absurd_numbers_are_not_equal_math_answers():
    # Both fail to parse as numbers (|exponent| > 100); None == None used to count as equal.
    assert score_prediction("4e99999999", "5e99999999", "math") == 0.0


QUESTION = "How many cells are filled? Note: the answer is 7."


def test_direct_output_echoing_the_question_gets_no_credit_from_it():
    sample = {"question": QUESTION, "answer": "7", "answer_type": "number"}
    echo = prompt_text(sample, "direct")  # exactly what a direct-mode model may repeat
    assert score_output(echo, sample) == (None, 0.0)  # the echo alone: was ("7", 1.0)
    assert score_output(echo + "\n4", sample) == ("4", 0.0)
    assert score_output("4\n" + QUESTION, sample) == ("4", 0.0)  # was ("7", 1.0): last number
    assert score_output(echo + "\n7", sample) == ("7", 1.0)
    assert score_output("7", sample) == ("7", 1.0)


def test_choice_output_echoing_the_question_gets_no_credit_from_it():
    sample = {"question": "Which color? The answer is B.", "answer": "B", "answer_type": "choice",
              "options": COLORS}
    echo = prompt_text(sample, "direct")
    assert score_output(echo, sample)[1] == 0.0  # was 1.0 ("The answer is B." inside the echo)
    assert score_output(echo + "\nC", sample) == ("C", 0.0)
    assert score_output(echo + "\nB", sample) == ("B", 1.0)


def test_question_is_optional_and_not_removed_when_not_echoed():
    assert score_output("7", {"answer": "7", "answer_type": "number"}) == ("7", 1.0)
    assert score_output("7", {"answer": "7", "answer_type": "number", "question": ""}) == ("7", 1.0)
    assert extract_answer("<answer>7</answer>", "number", question="How many?") == "7"
