"""The procedural "reasoning lab": tiny grid-image tasks with planted, documented truth.

Each target subtask is designed to land in one Dual Tuning region ("cot", "direct",
"negative") and carries a known rate of language-prior samples (answerable from the question
text alone). See ``src/dualtune/lab/README.md`` for every subtask's mechanism and knobs.
"""

from dualtune.lab.build import (
    DEFAULT_N_TEST,
    DEFAULT_N_TRAIN,
    LAB_VERSION,
    build_lab,
    cache_key,
    cot_answer,
    generate_split,
    lab_text_corpus,
    load_lab,
)
from dualtune.lab.draw import CELL, COLOR_CONFUSION, COLORS, SHAPE_CONFUSION, SHAPES, png_bytes, render_grid
from dualtune.lab.generic import generic_samples
from dualtune.lab.registry import (
    DOMAINS,
    GENERIC_SUBTASKS,
    NOISE_KNOBS,
    REGIONS,
    SUBTASKS,
    Subtask,
    get_subtask,
    planted_regions,
    register,
    resolve_knobs,
    subtasks_for,
)

__all__ = [
    "CELL", "COLORS", "COLOR_CONFUSION", "DEFAULT_N_TEST", "DEFAULT_N_TRAIN", "DOMAINS", "GENERIC_SUBTASKS",
    "LAB_VERSION", "NOISE_KNOBS", "REGIONS", "SHAPES", "SHAPE_CONFUSION", "SUBTASKS", "Subtask", "build_lab",
    "cache_key", "cot_answer", "generate_split", "generic_samples", "get_subtask", "lab_text_corpus",
    "load_lab", "planted_regions", "png_bytes", "register", "render_grid", "resolve_knobs", "subtasks_for",
]
