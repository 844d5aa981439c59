"""A tiny, randomly initialised InternVL checkpoint built from a config through transformers' own classes
(`InternVLForConditionalGeneration`, `InternVLProcessor`, `GotOcr2ImageProcessor`), with a byte-level BPE
tokenizer trained locally the way `dualtune.models.tiny` trains the tiny Qwen's: no downloads. Tests use it
to run the InternVL path (``model=internvl3_2b``) end to end on CPU."""

from __future__ import annotations

from pathlib import Path

# InternVL's special tokens (the -hf checkpoints' strings; ids differ from the real vocabulary).
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>",
                  "<think>", "</think>", "<answer>", "</answer>"]
# The processor finds its placeholders through these tokenizer attributes.
NAMED_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>"}
# InternVL's chat format (an image entry renders as one <IMG_CONTEXT>, which the processor expands), no system turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<IMG_CONTEXT>\n{% elif content['type'] == 'video' %}<video>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_internvl(out_dir: Path, corpus: list[str], vocab_size: int = 300, tile: int = 28,
                        heads: int = 4) -> Path:
    """Write a tiny InternVL (28-px tiles, 1 token per tile, 2-layer Qwen2 text model with ``heads`` attention
    heads of 64 / heads dims: 2 for vLLM's CPU attention, which has no head_dim 16 kernel) + processor to
    ``out_dir`` with ``save_pretrained``; it loads back through AutoProcessor / AutoModelForImageTextToText."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (GotOcr2ImageProcessor, InternVLConfig, InternVLForConditionalGeneration,
                              InternVLProcessor, InternVLVideoProcessor, PreTrainedTokenizerFast)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        extra_special_tokens=NAMED_TOKENS, chat_template=CHAT_TEMPLATE)
    size = {"height": tile, "width": tile}
    processor = InternVLProcessor(image_processor=GotOcr2ImageProcessor(size=size, max_patches=2),
                                  video_processor=InternVLVideoProcessor(size=size), tokenizer=tokenizer,
                                  image_seq_length=1, chat_template=CHAT_TEMPLATE)
    config = InternVLConfig(
        vision_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           image_size=tile, patch_size=tile // 2),
        text_config=dict(model_type="qwen2", vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                         max_position_embeddings=2048, tie_word_embeddings=True, bos_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id),
        image_token_id=tokenizer.context_image_token_id, image_seq_length=1, downsample_ratio=0.5)
    torch.manual_seed(0)
    model = InternVLForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return Path(out_dir)
