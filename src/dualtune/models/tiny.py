"""The embedded default model: a tiny Qwen2.5-VL built from a config, with a locally trained tokenizer.

Nothing here is a fake class: the model is `Qwen2_5_VLForConditionalGeneration` with small sizes, the
tokenizer is a byte-level BPE trained on the reasoning lab's text with Qwen's special tokens, and the
processor is the stock `Qwen2_5_VLProcessor` (Qwen2-VL image processor sized for 28-px grid cells).
Everything is written with `save_pretrained` and loaded back through the same Auto* classes that load a
real checkpoint (`dualtune.models.loading.load_model_and_processor`).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

# Qwen2.5-VL special tokens; the ids differ from the real vocabulary but the strings are the same.
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>", "<think>", "</think>", "<answer>", "</answer>",
]

# Qwen2.5-VL's chat template, without the default system turn (saves tokens on the tiny model).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def train_tokenizer(corpus: list[str], vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer on ``corpus`` and wrap it as a fast HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        chat_template=CHAT_TEMPLATE,
    )
    # Qwen2.5-VL's processor finds its placeholder tokens by these attribute names.
    fast.image_token = "<|image_pad|>"
    fast.video_token = "<|video_pad|>"
    return fast


def tiny_config(tokenizer, hidden_size: int = 128, layers: int = 4, heads: int = 4, vision_hidden: int = 64,
                vision_depth: int = 2, intermediate_size: int = 256):
    """A small `Qwen2_5_VLConfig` whose special-token ids match ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    head_dim = hidden_size // heads
    # mrope splits head_dim/2 rotary frequencies over (temporal, height, width), as 2:3:3 in Qwen2.5-VL.
    half = head_dim // 2
    t_sec = half // 4
    hw = (half - t_sec) // 2
    mrope = [t_sec, hw, half - t_sec - hw]
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=intermediate_size,
            num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
            max_position_embeddings=4096, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                          "mrope_section": mrope},
            bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=vision_depth, hidden_size=vision_hidden, intermediate_size=vision_hidden * 2,
            num_heads=max(1, vision_hidden // 32), out_hidden_size=hidden_size, patch_size=14,
            spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[vision_depth - 1],
        ),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def tiny_processor(tokenizer, min_pixels: int = 28 * 28, max_pixels: int = 112 * 112):
    """The stock Qwen2.5-VL processor around ``tokenizer`` with an image processor for small images."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    video_processor = Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               video_processor=video_processor, chat_template=CHAT_TEMPLATE)


def build_tiny_checkpoint(out_dir: str | Path, corpus: list[str], seed: int = 0, vocab_size: int = 1024,
                          **sizes) -> Path:
    """Build a randomly initialised tiny Qwen2.5-VL + processor and ``save_pretrained`` both to ``out_dir``."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(corpus, vocab_size=vocab_size)
    processor = tiny_processor(tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_config(tokenizer, **sizes))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    n = sum(p.numel() for p in model.parameters())
    log.info("built tiny Qwen2.5-VL (%.2fM params, vocab %d) at %s", n / 1e6, len(tokenizer), out_dir)
    return out_dir
