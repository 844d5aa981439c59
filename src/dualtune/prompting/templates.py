"""Controlled prompts and training targets for the two answer modes.

`direct` (DA, "S" in the paper): the prompt asks for the answer only; the target is the answer.
`cot` (CoT, "L"): the prompt asks to reason inside <think></think> and answer inside
<answer></answer>; the target is ``<think>{cot}</think><answer>{answer}</answer>``.
Templates are configurable (``conf/mode/*.yaml``); these are the defaults.
"""

from __future__ import annotations

MODES = ("direct", "cot")

DEFAULT_TEMPLATES = {
    "direct": "{question}{options}\nAnswer directly with {answer_hint}. Do not explain.",
    "cot": (
        "{question}{options}\nThink step by step inside <think></think>, "
        "then give {answer_hint} inside <answer></answer>."
    ),
}

ANSWER_HINTS = {
    "choice": "the option letter",
    "number": "a single number",
    "text": "a single word or short phrase",
    "math": "the final value",
}

COT_TARGET = "<think>{cot}</think><answer>{answer}</answer>"
DIRECT_TARGET = "{answer}"


def format_options(options) -> str:
    """Render options as lines 'A. red' after a newline, or '' when there are none."""
    from dualtune.schema import option_letter

    options = list(options or [])
    if not options:
        return ""
    return "\nOptions:\n" + "\n".join(f"{option_letter(i)}. {o}" for i, o in enumerate(options))


def check_mode(mode: str) -> str:
    """Validate a single answer mode name and return it."""
    if mode not in MODES:
        raise ValueError(f"unknown answer mode {mode!r}; expected one of {MODES}")
    return mode


def prompt_text(sample: dict, mode: str, templates: dict | None = None) -> str:
    """User-turn text (without image placeholders) for ``sample`` under ``mode``."""
    template = (templates or DEFAULT_TEMPLATES)[check_mode(mode)]
    return template.format(
        question=sample["question"].strip(),
        options=format_options(sample.get("options")),
        answer_hint=ANSWER_HINTS.get(sample.get("answer_type", "text"), ANSWER_HINTS["text"]),
    )


def cot_target_answer(sample: dict) -> str:
    """The answer a CoT target ends with: ``meta["cot_answer"]`` when the rationale concludes differently
    from the DA answer (e.g. a planted corrupted rationale in the lab), else ``answer``."""
    import json

    meta = sample.get("meta") or {}
    if isinstance(meta, str):
        meta = json.loads(meta) if meta.strip() else {}
    return str(meta.get("cot_answer") or sample["answer"])


def target_text(sample: dict, mode: str) -> str:
    """Training target for ``sample`` under ``mode`` (answer only, or think + answer blocks)."""
    if check_mode(mode) == "direct":
        return DIRECT_TARGET.format(answer=sample["answer"])
    return COT_TARGET.format(cot=(sample.get("cot") or "").strip(), answer=cot_target_answer(sample))


def build_messages(sample: dict, mode: str, templates: dict | None = None, num_images: int | None = None):
    """Chat messages (HF multimodal format) with one image entry per image/frame, then the text.

    Video frames are passed as an ordered sequence of images, each introduced by 'Frame k:'.
    ``num_images`` overrides the count (0 builds the text-only variant used by RAP's CDE).
    """
    images = list(sample.get("images") or [])
    frames = list(sample.get("video") or [])
    content = []
    if num_images != 0:
        for _ in images:
            content.append({"type": "image"})
        for k, _ in enumerate(frames):
            content.append({"type": "text", "text": f"Frame {k + 1}:"})
            content.append({"type": "image"})
    content.append({"type": "text", "text": prompt_text(sample, mode, templates)})
    return [{"role": "user", "content": content}]


def sample_images(sample: dict) -> list:
    """All images of a sample in prompt order: still images first, then video frames."""
    return list(sample.get("images") or []) + list(sample.get("video") or [])
