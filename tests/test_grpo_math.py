"""Hand-computed checks for dualtune.training.grpo_math (advantages, losses, KL, log-probs) and
grpo_metrics (per-rollout metrics)."""

import math

import pytest
import torch

from dualtune.training.grpo_math import (
    group_advantages,
    kl_k3,
    policy_loss,
    reward_stats,
    token_logprobs,
)
from dualtune.training.grpo_metrics import completion_rows, nan_mean_std, rollout_metrics, sample_rewards

EPS = 1e-6
ATOL = 1e-6

# Two groups of G=4, laid out group-contiguous.
#   group 1 = [1, 0, 0, 0]: mean 0.25, dev [0.75, -0.25, -0.25, -0.25],
#            unbiased var = (0.5625 + 3*0.0625) / 3 = 0.25 -> std 0.5
#   group 2 = [0, 0, 0, 2]: mean 0.5,  dev [-0.5, -0.5, -0.5, 1.5],
#            unbiased var = (3*0.25 + 2.25) / 3 = 1    -> std 1
#   batch: mean 3/8, sum sq dev = (1 + 4) - 8*(3/8)^2 = 3.875, var = 3.875/7 = 31/56
REWARDS = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0])
GRPO_DEV = [0.75, -0.25, -0.25, -0.25, -0.5, -0.5, -0.5, 1.5]
# RLOO: r_i - mean(other 3) = 4/3 * dev, e.g. 1 - 0 = 1, 0 - 1/3 = -1/3, 2 - 0 = 2, 0 - 2/3 = -2/3.
RLOO_DEV = [1.0, -1 / 3, -1 / 3, -1 / 3, -2 / 3, -2 / 3, -2 / 3, 2.0]
GROUP_STD = [0.5] * 4 + [1.0] * 4
BATCH_STD = math.sqrt(31 / 56)


def _expected(dev, scale):
    if scale == "none":
        return torch.tensor(dev)
    if scale == "group":
        return torch.tensor([d / (s + EPS) for d, s in zip(dev, GROUP_STD)])
    return torch.tensor([d / (BATCH_STD + EPS) for d in dev])


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("estimator", ["grpo", "rloo"])
def test_group_advantages_every_combination(scale, estimator):
    dev = GRPO_DEV if estimator == "grpo" else RLOO_DEV
    got = group_advantages(REWARDS, 4, scale=scale, estimator=estimator)
    torch.testing.assert_close(got, _expected(dev, scale), atol=ATOL, rtol=0)


def test_group_advantages_readable_values():
    # group scale: g1 dev/0.5 = [1.5, -0.5, -0.5, -0.5], g2 dev/1 = [-0.5, -0.5, -0.5, 1.5]
    got = group_advantages(REWARDS, 4)
    torch.testing.assert_close(got, torch.tensor([1.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, 1.5]), atol=1e-5, rtol=0)
    # rloo + group: g1 = [2, -2/3, -2/3, -2/3]
    got = group_advantages(REWARDS, 4, estimator="rloo")
    torch.testing.assert_close(got[:4], torch.tensor([2.0, -2 / 3, -2 / 3, -2 / 3]), atol=1e-5, rtol=0)


def test_unset_scale_is_the_estimators_default():
    """RLOO as verl / EasyR1 / TRL's RLOO define it: the leave-one-out advantage, not divided by a std.
    g1 rewards [1, 0, 0, 0]: baseline of item 0 = mean(0, 0, 0) = 0 -> A = 1; item 1: mean(1, 0, 0) = 1/3 -> -1/3."""
    got = group_advantages(REWARDS, 4, scale=None, estimator="rloo")
    torch.testing.assert_close(got[:4], torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3]), atol=1e-6, rtol=0)
    # GRPO keeps TRL's default: divided by the group std (same as scale="group").
    torch.testing.assert_close(group_advantages(REWARDS, 4, scale=None), group_advantages(REWARDS, 4, scale="group"))


def test_rloo_default_in_the_grpo_config():
    from dualtune.training.grpo_math import default_scale
    from tests.conftest import compose

    cfg = compose("train", ["algo=grpo", "algo.estimator=rloo"])
    assert cfg.algo.scale_rewards is None and default_scale(cfg.algo.estimator) == "none"
    assert default_scale("grpo") == "group"


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("estimator", ["grpo", "rloo"])
def test_zero_std_groups_give_exact_zero(scale, estimator):
    # group 1 all 0.1 (its float mean need not be exactly 0.1), group 2 all 1, group 3 = [0, 1, 0].
    rewards = torch.tensor([0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    got = group_advantages(rewards, 3, scale=scale, estimator=estimator)
    assert torch.all(got[:6] == 0.0)
    assert torch.all(got[6:] != 0.0)
    # group 3: mean 1/3, dev [-1/3, 2/3, -1/3]; positive sign preserved under every option.
    assert got[7] > 0 and got[6] < 0


def test_group_advantages_validation():
    with pytest.raises(ValueError, match="multiple of group_size"):
        group_advantages(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        group_advantages(torch.zeros(4), 1)
    with pytest.raises(ValueError, match="scale"):
        group_advantages(torch.zeros(4), 2, scale="global")
    with pytest.raises(ValueError, match="estimator"):
        group_advantages(torch.zeros(4), 2, estimator="ppo")
    with pytest.raises(ValueError, match="1-D"):
        group_advantages(torch.zeros(2, 2), 2)


def test_reward_stats():
    # REWARDS: mean 3/8; group stds 0.5 and 1 -> reward_std 0.75; no zero-std group.
    stats = reward_stats(REWARDS, 4)
    assert stats == pytest.approx({"reward": 0.375, "reward_std": 0.75, "frac_reward_zero_std": 0.0})
    # [1,0,0,0 | 1,1,1,1]: mean 5/8, stds (0.5, 0) -> 0.25, half the groups have zero std.
    stats = reward_stats(torch.tensor([1.0, 0, 0, 0, 1, 1, 1, 1]), 4)
    assert stats == pytest.approx({"reward": 0.625, "reward_std": 0.25, "frac_reward_zero_std": 0.5})


# Policy-loss example, B=2, T=3, eps_low = eps_high = 0.2, old_logp = -1, logp = -1 + log(ratio).
#   seq 0: A = +1, mask [1, 1, 1], ratio [1.5, 1.0, 0.5]
#     t0: -min(1.5, clip 1.2) = -1.2  (high-clipped: ratio > 1.2 and A > 0)
#     t1: -min(1.0, 1.0)      = -1.0
#     t2: -min(0.5, clip 0.8) = -0.5  (not counted: low clip needs A < 0)
#     sum -2.7, token mean -0.9
#   seq 1: A = -1, mask [1, 1, 0], ratio [0.5, 1.1, 0.3 (padding)]
#     t0: -min(-0.5, -0.8) = 0.8       (low-clipped: ratio < 0.8 and A < 0)
#     t1: -min(-1.1, -1.1) = 1.1
#     t2: masked out (would be 0.8 and a second low clip if the mask were ignored)
#     sum 1.9, token mean 0.95
#   grpo    = (-0.9 + 0.95) / 2        = 0.025
#   dapo    = bnpo = (-2.7 + 1.9) / 5  = -0.16
#   dr_grpo = -0.8 / (2 * 3)           = -0.133333...
#   clip low = 1/5, high = 1/5, region = 2/5
RATIO = torch.tensor([[1.5, 1.0, 0.5], [0.5, 1.1, 0.3]])
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])
ADV = torch.tensor([1.0, -1.0])


def _inputs(ratio=RATIO):
    old = torch.full(ratio.shape, -1.0)
    logp = (old + torch.log(ratio)).requires_grad_(True)
    return logp, old


@pytest.mark.parametrize(
    ("loss_type", "expected"),
    [("grpo", 0.025), ("dapo", -0.16), ("bnpo", -0.16), ("dr_grpo", -0.8 / 6)],
)
def test_policy_loss_every_type(loss_type, expected):
    logp, old = _inputs()
    loss, stats = policy_loss(logp, old, ADV, MASK, loss_type=loss_type)
    assert loss.item() == pytest.approx(expected, abs=ATOL)
    assert stats["clip_ratio/low_mean"].item() == pytest.approx(0.2, abs=ATOL)
    assert stats["clip_ratio/high_mean"].item() == pytest.approx(0.2, abs=ATOL)
    assert stats["clip_ratio/region_mean"].item() == pytest.approx(0.4, abs=ATOL)
    assert "kl" not in stats


def test_dr_grpo_max_completion_length_and_dapo_global_tokens():
    logp, old = _inputs()
    # dr_grpo with L=4: -0.8 / (2 * 4) = -0.1
    loss, _ = policy_loss(logp, old, ADV, MASK, loss_type="dr_grpo", max_completion_length=4)
    assert loss.item() == pytest.approx(-0.1, abs=ATOL)
    # dapo with 10 active tokens globally on 1 process: -0.8 / 10 = -0.08
    loss, _ = policy_loss(logp, old, ADV, MASK, loss_type="dapo", global_active_tokens=10)
    assert loss.item() == pytest.approx(-0.08, abs=ATOL)
    # 10 tokens over 2 processes -> per-process normaliser 5 -> -0.16
    loss, _ = policy_loss(logp, old, ADV, MASK, loss_type="dapo", global_active_tokens=10, num_processes=2)
    assert loss.item() == pytest.approx(-0.16, abs=ATOL)


def test_asymmetric_clip_high():
    # eps_high = 0.6: seq0 t0 is no longer clipped -> -1.5; seq0 sum -3.0, grpo = (-1.0 + 0.95)/2 = -0.025
    logp, old = _inputs()
    loss, stats = policy_loss(logp, old, ADV, MASK, eps_high=0.6)
    assert loss.item() == pytest.approx(-0.025, abs=ATOL)
    assert stats["clip_ratio/high_mean"].item() == 0.0


def test_on_policy_identity_and_gradient():
    # ratio = 1 everywhere -> per-token loss -A; grpo loss = -mean_seq(A) = -(0.7 - 0.2)/2 = -0.25.
    # d loss / d logp_t = -A_i / (n_i * B): seq0 -0.7/6, seq1 +0.2/4 = 0.05, padding 0.
    adv = torch.tensor([0.7, -0.2])
    logp, old = _inputs(torch.ones(2, 3))
    loss, stats = policy_loss(logp, old, adv, MASK)
    assert loss.item() == pytest.approx(-0.25, abs=ATOL)
    assert stats["clip_ratio/region_mean"].item() == 0.0
    loss.backward()
    expected_grad = torch.tensor([[-0.7 / 6] * 3, [0.05, 0.05, 0.0]])
    torch.testing.assert_close(logp.grad, expected_grad, atol=ATOL, rtol=0)


def test_beta_adds_kl():
    # kl mean per seq: seq0 (0.1+0.2+0.3)/3 = 0.2, seq1 (0.4+0.5)/2 = 0.45 (9.0 is padding)
    # grpo + 0.1 * (0.2 + 0.45)/2 = 0.025 + 0.0325 = 0.0575; kl stat = 1.5/5 = 0.3
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 9.0]])
    logp, old = _inputs()
    loss, stats = policy_loss(logp, old, ADV, MASK, kl=kl, beta=0.1)
    assert loss.item() == pytest.approx(0.0575, abs=ATOL)
    assert stats["kl"].item() == pytest.approx(0.3, abs=ATOL)
    # dapo: (-0.8 + 0.1 * 1.5) / 5 = -0.13
    loss, _ = policy_loss(logp, old, ADV, MASK, loss_type="dapo", kl=kl, beta=0.1)
    assert loss.item() == pytest.approx(-0.13, abs=ATOL)
    # beta = 0: kl is only logged, the loss is unchanged
    loss, stats = policy_loss(logp, old, ADV, MASK, kl=kl, beta=0.0)
    assert loss.item() == pytest.approx(0.025, abs=ATOL)
    assert "kl" in stats


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "bnpo", "dr_grpo"])
def test_gradients_finite_even_with_inf_padding(loss_type):
    logp, old = _inputs()
    # a -inf log-prob on the padding token must not poison the loss or gradient
    padded = torch.where(MASK.bool(), logp, torch.tensor(float("-inf")))
    ref = old - 0.5
    loss, _ = policy_loss(padded, old, ADV, MASK, loss_type=loss_type, kl=kl_k3(padded, ref), beta=0.04)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logp.grad).all()
    assert logp.grad[1, 2] == 0.0
    assert logp.grad[0, 1] != 0.0


def test_clipped_tokens_have_zero_gradient():
    # seq0 t0 (high clip) and seq1 t0 (low clip) sit on the flat part of the clipped objective;
    # seq0 t2 (ratio 0.5, A > 0) is below the clip range but min() keeps the unclipped term -> grad.
    logp, old = _inputs()
    loss, _ = policy_loss(logp, old, ADV, MASK, loss_type="dapo")
    loss.backward()
    assert logp.grad[0, 0] == 0.0 and logp.grad[1, 0] == 0.0
    # d/dlogp of -ratio*A / 5 at seq0 t2 = -0.5 / 5 = -0.1; seq1 t1: +1.1 / 5 = 0.22
    assert logp.grad[0, 2].item() == pytest.approx(-0.1, abs=ATOL)
    assert logp.grad[1, 1].item() == pytest.approx(0.22, abs=ATOL)


def test_policy_loss_validation():
    logp, old = _inputs()
    with pytest.raises(ValueError, match="loss_type"):
        policy_loss(logp, old, ADV, MASK, loss_type="cispo")
    with pytest.raises(ValueError, match="advantages"):
        policy_loss(logp, old, ADV.unsqueeze(1), MASK)
    with pytest.raises(ValueError, match="shape"):
        policy_loss(logp, old[:, :2], ADV, MASK)


def test_kl_k3_hand_values_and_nonnegative():
    # d = ref - logp: d = ln2 -> 2 - ln2 - 1 = 0.3068528; d = 0 -> 0; d = -ln2 -> 0.5 + ln2 - 1 = 0.1931472
    logp = torch.zeros(3)
    ref = torch.tensor([math.log(2), 0.0, -math.log(2)])
    torch.testing.assert_close(kl_k3(logp, ref), torch.tensor([0.3068528, 0.0, 0.1931472]), atol=ATOL, rtol=0)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(100, generator=gen) * 3, torch.randn(100, generator=gen) * 3
    assert (kl_k3(a, b) >= 0).all()


def test_token_logprobs_hand_and_manual():
    # logits [0, 0, ln2]: softmax = [1, 1, 2] / 4 -> log-probs [ln .25, ln .25, ln .5]
    logits = torch.tensor([[[0.0, 0.0, math.log(2)], [0.0, 0.0, math.log(2)]]])
    got = token_logprobs(logits, torch.tensor([[2, 0]]))
    torch.testing.assert_close(got, torch.tensor([[math.log(0.5), math.log(0.25)]]), atol=ATOL, rtol=0)

    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 5, 11, generator=gen)
    labels = torch.randint(0, 11, (2, 5), generator=gen)
    manual = torch.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    got = token_logprobs(logits, labels)
    assert got.shape == (2, 5)
    torch.testing.assert_close(got, manual, atol=ATOL, rtol=0)
    # bf16 path upcasts per row; agrees to bf16 input precision
    got_bf16 = token_logprobs(logits.bfloat16(), labels)
    assert got_bf16.dtype == torch.float32
    torch.testing.assert_close(got_bf16, manual, atol=5e-2, rtol=0)
    with pytest.raises(ValueError):
        token_logprobs(logits, labels[:, :4])


def test_rollout_metrics_hand_computed():
    nan = float("nan")
    # Two groups of G=2, dual mode: rows 0-1 cot, rows 2-3 direct; format is not applicable to direct rows.
    rollout = {
        "results": [{"completion_ids": [1] * n, "truncated": t, "mode": m, "sample_id": i // 2,
                     "completion_text": "x" * n} for i, (n, t, m) in
                    enumerate([(4, False, "cot"), (8, True, "cot"), (2, False, "direct"), (2, False, "direct")])],
        "per_func": torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, nan], [1.0, nan]]),
        "total": torch.tensor([2.0, 0.0, 1.0, 1.0]), "advantages": torch.tensor([0.7071, -0.7071, 0.0, 0.0]),
        "rows": torch.tensor([0, 1])}
    metrics = rollout_metrics(rollout, ["accuracy", "format"], num_generations=2, dynamic_filter=True, dual=True)
    assert metrics["reward"] == pytest.approx(1.0) and metrics["frac_reward_zero_std"] == pytest.approx(0.5)
    assert metrics["rewards/accuracy/mean"] == pytest.approx(0.75)  # (1 + 0 + 1 + 1) / 4
    assert metrics["rewards/format/mean"] == pytest.approx(0.5)  # NaN rows skipped: (1 + 0) / 2
    assert metrics["rewards/format/std"] == pytest.approx(math.sqrt(0.5))  # unbiased std of {1, 0}
    assert metrics["completions/mean_length"] == 4.0 and metrics["completions/clipped_ratio"] == 0.25
    assert metrics["completions/mean_terminated_length"] == pytest.approx(8 / 3)  # (4 + 2 + 2) / 3
    assert metrics["frac_groups_filtered"] == 0.5  # 2 of 4 rows kept
    assert metrics["modes/cot/reward"] == 1.0 and metrics["modes/direct/mean_length"] == 2.0
    assert nan_mean_std(torch.tensor([nan, nan])) is None and nan_mean_std(torch.tensor([3.0])) == (3.0, 0.0)
    columns, rows = completion_rows(rollout, ["accuracy", "format"], step=7, max_rows=1, max_chars=2)
    assert columns[-2:] == ["reward", "advantage"] and rows == [[7, "0", "cot", "xx", 1.0, 1.0, 2.0, 0.707]]


def test_sample_rewards_are_per_prompt_means():
    # Two prompts x G=2 completions; rewards (accuracy, format): prompt a -> totals 2 and 0, prompt b -> 1 and 1.
    rollout = {"results": [{"sample_id": "a", "mode": "cot"}, {"sample_id": "a", "mode": "cot"},
                           {"sample_id": "b", "mode": "direct"}, {"sample_id": "b", "mode": "direct"}],
               "per_func": torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]),
               "total": torch.tensor([2.0, 0.0, 1.0, 1.0])}
    assert sample_rewards(rollout, ["accuracy", "format"], 2) == [
        {"id": "a", "mode": "cot", "reward": 1.0, "accuracy": 0.5, "format": 0.5},
        {"id": "b", "mode": "direct", "reward": 1.0, "accuracy": 0.5, "format": 0.5}]
