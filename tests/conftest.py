"""Shared fixtures: compose the real Hydra configs with tiny overrides, a session tiny model, sample rows."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

# Small tiny-model recipe used by tests: same builder and pretraining code as the default, fewer steps.
TEST_MODEL_OVERRIDES = [
    "model.tiny.vocab_size=512", "model.tiny.hidden_size=64", "model.tiny.layers=2",
    "model.tiny.intermediate_size=128", "model.tiny.vision_hidden=32", "model.tiny.vision_depth=1",
    "model.pretrain.n_samples=64", "model.pretrain.epochs=1",
]


def compose(config_name: str = "train", overrides=(), return_hydra_config: bool = False):
    """Compose a config from conf/ like the entry points do (HydraConfig set so ${hydra:...} resolves)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    if not return_hydra_config:
        from omegaconf import open_dict

        with open_dict(cfg):
            del cfg["hydra"]
    return cfg


@pytest.fixture(scope="session", autouse=True)
def single_torch_thread():
    """Tiny models: intra-op threads only add synchronisation cost (10-50x slower on a busy 2-core box)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A per-session cache dir (lab datasets, tiny base model, eval cache)."""
    return tmp_path_factory.mktemp("dualtune_cache")


@pytest.fixture(scope="session")
def tiny_model_path(cache_dir) -> str:
    """A tiny base model built and briefly pretrained through the production path (cached per session)."""
    from dualtune.models.base import ensure_tiny_base

    cfg = compose("train", [f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES])
    return str(ensure_tiny_base(cfg.model, cfg.cache_dir))


@pytest.fixture(scope="session")
def random_tiny_ckpt(tmp_path_factory) -> str:
    """A randomly initialised tiny Qwen2.5-VL (no pretraining): for tests that need a real model through
    the real loading path, not a good one (e.g. evaluating a published-format benchmark end to end)."""
    from dualtune.models.tiny import build_tiny_checkpoint

    corpus = ["How many? Answer directly with a single number. Options: A. B. C. D.",
              "<think>one</think><answer>1</answer>"] * 4
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("random_ckpt"), corpus, vocab_size=300, hidden_size=64,
                                     layers=2, intermediate_size=128, vision_hidden=32, vision_depth=1))


@pytest.fixture()
def hf_datasets_cache(tmp_path, monkeypatch):
    """``load_dataset`` caches under the test's tmp dir, not ~/.cache/huggingface."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def sharpen_weights(model, seed: int = 0, std: float = 0.3) -> None:
    """Redraw a random tiny model's matrices with std ``std`` (instead of 0.02) so greedy outputs depend on
    the input (otherwise every prompt decodes to the same "\\n\\n\\n" and comparisons test constants)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.dim() >= 2:
                weight.copy_(torch.randn(weight.shape, generator=generator) * std)
