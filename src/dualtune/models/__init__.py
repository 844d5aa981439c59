"""Model loading: real checkpoints (hub id or local path) and the embedded tiny Qwen2.5-VL."""
