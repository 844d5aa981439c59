"""Prompts and answers: the one module shared by training, evaluation, scoring and rewards.

`templates` builds controlled prompts and targets per answer mode; `answers` extracts and scores.
"""

from dualtune.prompting.answers import (  # noqa: F401
    cot_format_ok,
    extract_answer,
    mean_relative_accuracy,
    score_output,
    score_prediction,
    strip_thinking,
)
from dualtune.prompting.templates import (  # noqa: F401
    MODES,
    build_messages,
    prompt_text,
    sample_images,
    target_text,
)
