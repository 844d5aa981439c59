"""GRPO-on-vLLM parts that need no vLLM (main venv): truncated importance sampling on hand-computed numbers, and
the policy weights `engine_sync` pushes (checkpoint names, LoRA merged on the fly without touching the adapter)."""

from __future__ import annotations

import math

import pytest
import torch

from dualtune.training.engine_sync import checkpoint_name, engine_logprob_rows, policy_weights
from dualtune.training.grpo_math import policy_loss, truncated_importance_weights

OLD = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -9.0, -9.0]])
ENGINE = torch.tensor([[-1.0, -2.5, 0.5], [-1.0, 0.0, 0.0]])
MASK = torch.tensor([[1, 1, 1], [1, 0, 0]])


def test_truncated_importance_weights_by_hand():
    w = truncated_importance_weights(OLD, ENGINE, MASK, cap=2.0)
    # exp(0) = 1, exp(0.5) = 1.6487, exp(-1) = 0.3679; exp(0.7) = 2.0138 truncated to the cap 2; padding 1.
    expected = torch.tensor([[1.0, math.exp(0.5), math.exp(-1.0)], [2.0, 1.0, 1.0]])
    assert torch.allclose(w, expected, atol=1e-6)
    assert truncated_importance_weights(OLD, ENGINE, MASK, cap=3.0)[1, 0].item() == pytest.approx(math.exp(0.7))
    old = OLD.clone().requires_grad_()
    assert not truncated_importance_weights(old, ENGINE, MASK).requires_grad  # a constant weight
    with pytest.raises(ValueError, match="cap"):
        truncated_importance_weights(OLD, ENGINE, MASK, cap=0.0)
    with pytest.raises(ValueError, match="shape"):
        truncated_importance_weights(OLD, ENGINE[:, :2], MASK)


def test_policy_loss_weights_the_policy_gradient_term_only():
    logp = OLD.clone().requires_grad_()  # ratio 1: per-token loss -A * w
    adv = torch.tensor([1.0, -2.0])
    w = truncated_importance_weights(OLD, ENGINE, MASK, cap=2.0)
    loss, stats = policy_loss(logp, OLD, adv, MASK, "bnpo", is_weights=w)
    # row 0: -1 * (1 + 1.6487 + 0.3679) = -3.0166; row 1: +2 * 2 = 4; over 4 tokens: 0.98340 / 4 = 0.24585.
    assert loss.item() == pytest.approx((-(1 + math.exp(0.5) + math.exp(-1.0)) + 4.0) / 4, abs=1e-6)
    loss.backward()
    assert logp.grad[1, 0].item() == pytest.approx(2.0 * 2.0 / 4)  # d/dlogp of -A * w * exp(logp - old)
    assert logp.grad[0, 1].item() == pytest.approx(-math.exp(0.5) / 4)
    assert stats["sampling/importance_sampling_ratio/mean"].item() == pytest.approx(
        (1 + math.exp(0.5) + math.exp(-1.0) + 2.0) / 4)
    # Ones change nothing, and the KL term is not weighted: beta * kl is added after the weighting.
    plain, plain_stats = policy_loss(OLD, OLD, adv, MASK, "bnpo")
    assert policy_loss(OLD, OLD, adv, MASK, "bnpo", is_weights=torch.ones(2, 3))[0].item() == pytest.approx(
        plain.item()) and "sampling/importance_sampling_ratio/mean" not in plain_stats
    kl = torch.full((2, 3), 0.5)
    with_kl = policy_loss(OLD, OLD, adv, MASK, "bnpo", kl=kl, beta=0.1, is_weights=w)[0]
    assert with_kl.item() == pytest.approx(loss.item() + 0.1 * 0.5, abs=1e-6)


def test_engine_logprob_rows_pad_like_completions():
    rows = [{"engine_logprobs": torch.tensor([-0.5, -1.0])}, {"engine_logprobs": torch.tensor([-2.0])}]
    assert engine_logprob_rows(rows).tolist() == [[-0.5, -1.0], [-2.0, 0.0]]
    assert engine_logprob_rows([{"completion_ids": torch.tensor([1])}]) is None


def test_checkpoint_names_of_peft_keys():
    assert checkpoint_name("model.language_model.layers.0.mlp.up_proj.weight") == \
        "model.language_model.layers.0.mlp.up_proj.weight"
    assert checkpoint_name("base_model.model.model.language_model.layers.0.self_attn.q_proj.base_layer.weight") == \
        "model.language_model.layers.0.self_attn.q_proj.weight"
    assert checkpoint_name("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight") \
        is None
    assert checkpoint_name("base_model.model.lm_head.original_module.weight") is None
    assert checkpoint_name("base_model.model.lm_head.modules_to_save.default.weight") == "lm_head.weight"


def test_lora_policy_weights_are_merged_without_touching_the_adapter(random_tiny_ckpt):
    """What the engine receives equals `merge_and_unload` of a copy, under the checkpoint's names, and the
    trained adapter (including one on the vision tower, which vLLM cannot serve as a LoRA) stays as it was."""
    import copy

    from omegaconf import OmegaConf

    from dualtune.models.loading import apply_lora, load_model

    base = load_model(random_tiny_ckpt, {"dtype": "float32"}, for_training=False)
    names = {k for k in base.state_dict()}
    lora = OmegaConf.create({"r": 4, "alpha": 8, "dropout": 0.0,
                             "target_modules": r".*(language_model.*\.(q_proj|down_proj)|visual.*\.qkv)"})
    model = apply_lora(base, lora)
    with torch.no_grad():  # trained-looking adapters (peft initialises B to zero: the delta would vanish)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    adapter = {k: v.clone() for k, v in model.state_dict().items() if "lora_" in k}
    assert any("visual" in k for k in adapter)
    pushed = dict(policy_weights(model))
    merged = copy.deepcopy(model).merge_and_unload().state_dict()
    assert set(pushed) == set(merged) == names
    for name, tensor in merged.items():
        assert torch.allclose(pushed[name], tensor, atol=1e-6), name
    for name in ("model.language_model.layers.0.self_attn.q_proj.weight", "model.visual.blocks.0.attn.qkv.weight"):
        base_weight = model.state_dict()["base_model.model." + name.replace(".weight", ".base_layer.weight")]
        assert not torch.allclose(pushed[name], base_weight)  # the adapter's delta is in
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in adapter.items())  # adapter untouched
    assert not any(getattr(m, "merged", False) for m in model.modules())


def test_config_checks_for_grpo_on_the_engine():
    from dualtune.config_checks import ConfigError, check_config
    from tests.conftest import compose

    with pytest.raises(ConfigError) as err:
        check_config(compose("train", ["algo=grpo", "generation=vllm", "trainer.devices=2",
                                       "algo.vllm_importance_sampling_cap=0", "algo.vllm_enable_sleep_mode=maybe"]),
                     "train")
    text = str(err.value)
    assert "GRPO with generation.backend=vllm needs one process" in text and "trainer.devices': 2" in text
    assert "algo.vllm_importance_sampling_cap=0" in text and "algo.vllm_enable_sleep_mode='maybe'" in text
    with pytest.raises(ConfigError, match="generation.vllm.in_process': False"):
        check_config(compose("train", ["algo=sft_then_grpo", "generation=vllm", "generation.vllm.in_process=false"]),
                     "train")
