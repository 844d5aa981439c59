"""dualtune: reasoning-efficacy-driven data curation for multimodal LLM post-training.

Implements Dual Tuning (arXiv 2603.04415) and RAP (arXiv 2506.04755) on Hydra + Lightning,
with an embedded tiny Qwen2.5-VL model and a procedural "reasoning lab" for offline use.
"""

__version__ = "0.1.0"
