"""A tiny, randomly initialised Qwen3-VL built from a config through transformers' own classes
(`Qwen3VLForConditionalGeneration`, `Qwen3VLProcessor`, `Qwen2VLImageProcessor` with 16-px patches), with the
byte-level BPE tokenizer `dualtune.models.tiny` trains for the tiny Qwen2.5-VL (Qwen3-VL keeps the same vision
special tokens and chat format): no downloads. Tests use it to run the Qwen3-VL family through both backends."""

from __future__ import annotations

from pathlib import Path

PATCH = 16  # Qwen3-VL's vision patch; merged 2x2, a visual token covers a 32x32 cell


def build_tiny_qwen3vl(out_dir: Path, corpus: list[str], vocab_size: int = 300, hidden_size: int = 64,
                       heads: int = 2, min_pixels: int = 32 * 32, max_pixels: int = 128 * 128, seed: int = 0) -> Path:
    """Write a tiny Qwen3-VL (2-layer text model with ``heads`` heads of ``hidden_size / heads`` dims and
    interleaved M-RoPE, a 2-block vision tower with one deepstack layer) + processor to ``out_dir`` with
    ``save_pretrained``; it loads back through AutoProcessor / AutoModelForImageTextToText. ``heads=2`` gives
    head_dim 32 (vLLM's CPU attention has no head_dim 16 kernel)."""
    import torch
    from transformers import (Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLForConditionalGeneration,
                              Qwen3VLProcessor, Qwen3VLVideoProcessor)

    from dualtune.models.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, train_tokenizer

    tokenizer = train_tokenizer(corpus, vocab_size=vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    pixels = dict(patch_size=PATCH, merge_size=2, temporal_patch_size=2, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels, **pixels),
        video_processor=Qwen3VLVideoProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels * 2},
                                              **pixels),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    half = hidden_size // heads // 2  # rotary frequencies, split over (t, h, w) like Qwen3-VL's 24:20:20
    mrope = [half - 2 * (half * 5 // 16), half * 5 // 16, half * 5 // 16]
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=2, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                         head_dim=hidden_size // heads, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope,
                                          "mrope_interleaved": True},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=True),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=1, out_hidden_size=hidden_size,
                           patch_size=PATCH, spatial_merge_size=2, temporal_patch_size=2,
                           num_position_embeddings=64, deepstack_visual_indexes=[0]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return Path(out_dir)
