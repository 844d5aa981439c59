"""Controlled prompts and training targets for the two answer modes, and auto-think's neutral prompt.

`direct` (DA, "S" in the paper): the prompt asks for the answer only; the target is the answer.
`cot` (CoT, "L"): the prompt asks to reason inside <think></think> and answer inside
<answer></answer>; the target is ``<think>{cot}</think><answer>{answer}</answer>``.
`auto` (evaluation only, auto-think): a neutral prompt that neither asks for reasoning nor forbids it, so
the model chooses; it gets the CoT generation budget (`budget_mode`), its answer is extracted as for the
other modes, and `dualtune.prompting.answers.thinks` tells whether a completion reasoned. It has no training target.
Templates are configurable (``conf/mode/*.yaml``); these are the defaults. ``AUTO_TEMPLATE`` is the only
place the auto prompt is defined (`eval_templates` adds it to a config's templates that lack it; a config
may set its own with ``+mode.templates.auto=...``).
"""

from __future__ import annotations

import re

MODES = ("direct", "cot")  # the answer modes with a training target (train_modes, the boundary's S / L)
AUTO = "auto"
EVAL_MODES = (*MODES, AUTO)  # evaluation prompts: the two forced modes plus auto-think

DEFAULT_TEMPLATES = {
    "direct": "{question}{options}\nAnswer directly with {answer_hint}. Do not explain.",
    "cot": (
        "{question}{options}\nThink step by step inside <think></think>, "
        "then give {answer_hint} inside <answer></answer>."
    ),
}
# Auto-think's neutral prompt: no "think step by step", no "answer directly" / "do not explain", no tag format.
# Kept out of DEFAULT_TEMPLATES, whose prompts the tiny model's tokenizer corpus is built from.
AUTO_TEMPLATE = "{question}{options}\nAnswer with {answer_hint}."

ANSWER_HINTS = {
    "choice": "the option letter",
    "number": "a single number",
    "text": "a single word or short phrase",
    "math": "the final value",
}

COT_TARGET = "<think>{cot}</think><answer>{answer}</answer>"
DIRECT_TARGET = "{answer}"


def format_options(options) -> str:
    """Render options as lines 'A. red' after a newline, or '' when there are none; options that are all
    empty (drawn in the image, e.g. LogicVista) render as their labels only: 'Options: A, B, C'."""
    from dualtune.schema import option_letter

    options = list(options or [])
    if not options:
        return ""
    if not any(str(o).strip() for o in options):  # labels only: the options are drawn in the image
        return "\nOptions: " + ", ".join(option_letter(i) for i in range(len(options)))
    return "\nOptions:\n" + "\n".join(f"{option_letter(i)}. {o}" for i, o in enumerate(options))


def check_mode(mode: str) -> str:
    """Validate a single prompt mode name (direct, cot or auto) and return it."""
    if mode not in EVAL_MODES:
        raise ValueError(f"unknown answer mode {mode!r}; expected one of {EVAL_MODES}")
    return mode


def budget_mode(mode: str) -> str:
    """The mode whose generation budget ``mode`` uses: auto gets the CoT budget (it may reason)."""
    return "cot" if check_mode(mode) == AUTO else mode


def eval_templates(templates: dict | None, modes) -> dict:
    """``templates`` (a config's direct / cot prompts) plus the default auto prompt when ``modes`` has auto
    and ``templates`` does not set one."""
    out = dict(templates or DEFAULT_TEMPLATES)
    if AUTO in modes and AUTO not in out:
        out[AUTO] = AUTO_TEMPLATE
    return out


def prompt_text(sample: dict, mode: str, templates: dict | None = None) -> str:
    """User-turn text (without image placeholders) for ``sample`` under ``mode`` (auto: the default neutral
    prompt unless ``templates`` sets one)."""
    templates = templates or DEFAULT_TEMPLATES
    template = templates[mode] if check_mode(mode) != AUTO else templates.get(AUTO, AUTO_TEMPLATE)
    return template.format(
        question=sample["question"].strip(),
        options=format_options(sample.get("options")),
        answer_hint=ANSWER_HINTS.get(sample.get("answer_type", "text"), ANSWER_HINTS["text"]),
    )


def cot_target_answer(sample: dict) -> str:
    """The answer a CoT target ends with: ``meta["cot_answer"]`` when the rationale concludes differently
    from the DA answer (e.g. a planted corrupted rationale in the lab), else ``answer``."""
    return str(_meta(sample).get("cot_answer") or sample["answer"])


def target_text(sample: dict, mode: str) -> str:
    """Training target for ``sample`` under ``mode`` (answer only, or think + answer blocks)."""
    if check_mode(mode) not in MODES:
        raise ValueError(f"mode {mode!r} has no training target (evaluation only); train in one of {MODES}")
    if mode == "direct":
        return DIRECT_TARGET.format(answer=sample["answer"])
    return COT_TARGET.format(cot=(sample.get("cot") or "").strip(), answer=cot_target_answer(sample))


# `<image k>` in a question or an option (MMMU's published convention) stands for the sample's k-th image.
IMAGE_MARKER = re.compile(r"<image (\d+)>")


def _interleave(text: str, n_images: int) -> tuple[list[dict], list[int]]:
    """Content entries for ``text`` with every `<image k>` marker (1 <= k <= ``n_images``) replaced by an
    image entry, and the 0-based index of the image each entry shows, in order (a repeated marker shows its
    image again). Markers naming no image of the sample stay text; no marker: one text entry."""
    content, placed, pos = [], [], 0
    for match in IMAGE_MARKER.finditer(text):
        k = int(match.group(1))
        if not 1 <= k <= n_images:
            continue
        if match.start() > pos:
            content.append({"type": "text", "text": text[pos:match.start()]})
        content.append({"type": "image"})
        placed.append(k - 1)
        pos = match.end()
    if pos < len(text) or not content:
        content.append({"type": "text", "text": text[pos:]})
    return content, placed


def prompt_layout(sample: dict, mode: str, templates: dict | None = None, num_images: int | None = None):
    """``(messages, images)``: the chat messages (HF multimodal format) and the images in the order of their
    image entries, which is the order a processor must receive them in.

    Images named by an `<image k>` marker in the question or options appear at the marker (interleaved with
    the text); the others, then the video frames (each introduced by 'Frame k:'), come before the text, as
    for every sample without markers. ``num_images=0`` builds the text-only variant used by RAP's CDE.
    """
    text = prompt_text(sample, mode, templates)
    if num_images == 0:
        return [{"role": "user", "content": [{"type": "text", "text": text}]}], []
    images = list(sample.get("images") or [])
    body, placed = _interleave(text, len(images))
    content = [{"type": "image"} for i in range(len(images)) if i not in placed]
    ordered = [img for i, img in enumerate(images) if i not in placed]
    for k, frame in enumerate(sample.get("video") or []):
        content += [{"type": "text", "text": f"Frame {k + 1}:"}, {"type": "image"}]
        ordered.append(frame)
    if sample_video(sample) is not None:  # a video file: one entry for the processor's video path (data/video.py)
        content.append({"type": "video"})
    return [{"role": "user", "content": content + body}], ordered + [images[i] for i in placed]


def build_messages(sample: dict, mode: str, templates: dict | None = None, num_images: int | None = None):
    """Chat messages (HF multimodal format) of `prompt_layout`: image entries first, or at their
    `<image k>` markers, then the text; ``num_images=0`` builds the text-only variant."""
    return prompt_layout(sample, mode, templates, num_images)[0]


def sample_images(sample: dict) -> list:
    """All images of a sample: still images first, then video frames (the prompt order of a sample without
    `<image k>` markers; `prompt_layout` gives the order for every sample), as the sample holds them: loaded
    rows hold lazy references, decoded at use by `dualtune.schema.decode_image`."""
    return list(sample.get("images") or []) + list(sample.get("video") or [])


def _meta(sample: dict) -> dict:
    """The decoded ``meta`` dict of a sample ({} when empty): `dualtune.schema.sample_meta`."""
    from dualtune.schema import sample_meta

    return sample_meta(sample)


def sample_video(sample: dict) -> dict | None:
    """The video file a sample shows (``meta["video"]``: ``{"path", "fps", "max_frames", "max_pixels"}``,
    written by a published-dataset adapter, decoded by `dualtune.data.video`; its entry follows the
    'Frame k:' frames in `prompt_layout`), or None."""
    spec = _meta(sample).get("video")
    if spec is None:
        return None
    if not isinstance(spec, dict) or any(k not in spec for k in ("path", "fps", "max_frames", "max_pixels")):
        raise ValueError(f"sample {sample.get('id')!r}: meta.video must be a dict with path, fps, max_frames, "
                         f"max_pixels; got {spec!r}")
    return spec


def without_visuals(sample: dict) -> dict:
    """A copy of ``sample`` with no images, no video frames and no video file (RAP's text-only input)."""
    import json

    meta = _meta(sample)
    if "video" not in meta:
        return dict(sample, images=[], video=[])
    meta.pop("video")
    return dict(sample, images=[], video=[], meta=json.dumps(meta))
