"""Rollout helpers and short GRPO fits on a real tiny Qwen2.5-VL (CPU)."""

import math

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from torch.utils.data import DataLoader

from dualtune.models.loading import load_model, load_processor
from dualtune.models.tiny import build_tiny_checkpoint
from dualtune.training.grpo_math import token_logprobs
from dualtune.training.grpo_module import GRPOModule, dual_modes, grpo_collate, kept_group_rows
from dualtune.training.rollout import (
    build_policy_batch,
    collate_prompts,
    completion_logprobs,
    completion_mask,
    encode_prompt,
    generate_completions,
)

CORPUS = [
    "What color is the square? Options: A. red B. blue <think>The square is red.</think><answer>A</answer>",
    "How many circles are in the image? <think>I count 3 circles.</think><answer>3</answer>",
    "How far is the chair from the table in meters? <think>About 2 meters.</think><answer>2</answer>",
    "Answer directly with the option letter. Do not explain. Think step by step inside <think></think>.",
] * 10
TRL_METRICS = ("reward", "reward_std", "frac_reward_zero_std", "completions/mean_length",
               "completions/clipped_ratio", "clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean",
               "loss")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    # Smaller than the default tiny config (2 layers, hidden 64) to keep six Trainer fits fast.
    return str(build_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), CORPUS, vocab_size=300, hidden_size=64,
                                     layers=2, intermediate_size=128, vision_hidden=32))


@pytest.fixture(scope="module")
def processor(checkpoint):
    return load_processor(checkpoint)


def make_model(checkpoint, lora=False):
    cfg = OmegaConf.create({"dtype": "float32", "attn_implementation": "eager", "freeze_vision": False,
                            "lora": {"enabled": lora, "r": 4, "alpha": 8, "dropout": 0.0,
                                     "target_modules": r".*language_model.*\.(q_proj|v_proj)"}})
    torch.manual_seed(0)
    return load_model(checkpoint, cfg)


def samples():
    red = Image.new("RGB", (112, 112), (255, 0, 0))
    tall = Image.new("RGB", (56, 84), (0, 0, 255))
    return [
        {"id": "red", "domain": "spatial", "question": "What color is the square?", "options": ["red", "blue"],
         "answer": "A", "answer_type": "choice", "images": [red]},
        {"id": "count", "domain": "spatial", "question": "How many circles are in the image?", "options": [],
         "answer": "3", "answer_type": "number", "images": [tall]},
        {"id": "dist", "domain": "spatial", "question": "How far is the chair from the table in meters?",
         "options": [], "answer": "2", "answer_type": "number", "images": [red]},
        {"id": "text", "domain": "math", "question": "How many circles are there?", "options": [],
         "answer": "3", "answer_type": "number", "images": []},
    ]


def char_reward(completions, **_):
    """Dense test reward that differs between sampled completions, so advantages are non-zero."""
    return [sum(map(ord, c)) % 13 / 13 for c in completions]


# ----- pure helpers --------------------------------------------------------------------------------
def test_completion_mask_and_truncation():
    mask, truncated = completion_mask(torch.tensor([[5, 2, 9, 2], [5, 5, 5, 5], [2, 0, 0, 0]]), eos_ids=[2])
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]
    assert truncated.tolist() == [False, True, False]


def test_dual_modes_and_dynamic_filter_rows():
    assert dual_modes(0, 3) == ["cot", "direct", "cot"]
    assert dual_modes(3, 2) == ["direct", "cot"]  # the alternation continues across batches
    rows = kept_group_rows(torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0]), group_size=2)
    assert rows.tolist() == [2, 3]  # only the mixed group survives
    assert grpo_collate(["a", "b"]) == ["a", "b"]


# ----- rollout -----------------------------------------------------------------------------------
def test_greedy_rollout_layout_and_mode_restore(checkpoint, processor):
    model = make_model(checkpoint).train()
    batch = samples()[:3]
    out = generate_completions(model, processor, batch, ["cot", "direct", "cot"], num_generations=2,
                               max_new_tokens={"cot": 6, "direct": 3}, do_sample=False, micro_batch_size=4)
    assert model.training  # restored after eval-mode generation
    assert [(r["sample_id"], r["mode"]) for r in out] == [
        ("red", "cot"), ("red", "cot"), ("count", "direct"), ("count", "direct"), ("dist", "cot"), ("dist", "cot")]
    for first, second in zip(out[::2], out[1::2]):  # greedy: both generations of a prompt agree
        assert torch.equal(first["completion_ids"], second["completion_ids"])
    eos = processor.tokenizer.eos_token_id
    for r in out:
        budget = 6 if r["mode"] == "cot" else 3
        ids = r["completion_ids"].tolist()
        assert 1 <= len(ids) <= budget and (eos not in ids[:-1])
        assert r["truncated"] == (ids[-1] != eos)
        assert "<|im_start|>user" not in r["completion_text"]  # the prompt is never part of the completion
        assert processor.image_token not in r["completion_text"]  # vision tokens are suppressed
        assert torch.equal(r["prompt_ids"], encode_prompt(processor, batch[r["sample_index"]], r["mode"])["input_ids"])


def test_rescored_logprobs_match_generation_logits(checkpoint, processor):
    """Re-scoring left-padded prompts + right-padded completions (images repeated) reproduces the
    generation-time log-probs, so old_logp / ratio bookkeeping is aligned token by token."""
    model = make_model(checkpoint).eval()
    prompts = [encode_prompt(processor, s, "cot") for s in samples()]
    batch = collate_prompts(prompts, processor.tokenizer.pad_token_id)
    assert batch["pixel_values"].shape[0] == sum(p["pixel_values"].shape[0] for p in prompts if "pixel_values" in p)
    torch.manual_seed(1)
    out = model.generate(**batch, max_new_tokens=8, do_sample=True, top_k=0, output_logits=True,
                         return_dict_in_generate=True, use_cache=True)
    new = out.sequences[:, batch["input_ids"].shape[1]:]
    expected = token_logprobs(torch.stack(out.logits, dim=1), new)
    inputs, completions, mask = build_policy_batch(prompts, list(new), processor.tokenizer.pad_token_id)
    assert inputs["input_ids"].shape[1] == batch["input_ids"].shape[1] + 8 and mask.sum() == new.numel()
    with torch.no_grad():
        got = completion_logprobs(model, inputs, completions)
    assert torch.allclose(got, expected, atol=1e-4)
    with torch.no_grad():  # temperature rescales the logits before the softmax
        hot = completion_logprobs(model, inputs, completions, temperature=2.0)
    assert not torch.allclose(hot, got, atol=1e-3)


# ----- GRPO fits -----------------------------------------------------------------------------------
def fit(module, n_samples=2, max_steps=2):
    loader = DataLoader(samples()[:n_samples], batch_size=2, collate_fn=grpo_collate, shuffle=False)
    trainer = L.Trainer(max_steps=max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader)
    return trainer


def trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def assert_changed_and_logged(trainer, module, before, extra=()):
    after = dict(module.model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before), "no trainable parameter moved"
    metrics = trainer.callback_metrics
    for name in (*TRL_METRICS, *extra):
        assert name in metrics, f"missing metric {name}"
        assert math.isfinite(float(metrics[name])), f"{name} = {metrics[name]}"


@pytest.mark.parametrize("mode", ["cot", "direct", "dual"])
def test_grpo_fit_each_mode(checkpoint, processor, mode):
    model = make_model(checkpoint)
    module = GRPOModule(model, processor, num_generations=2, mode=mode, max_new_tokens={"cot": 8, "direct": 4},
                        reward_funcs=["accuracy", "format", char_reward], reward_weights=[1.0, 0.5, 1.0],
                        lr=1e-2, log_completions_every=1, generation_micro_batch_size=4)
    before = trainable(model)
    trainer = fit(module, n_samples=4 if mode == "dual" else 2)
    extra = {"cot": ("rewards/format/mean",), "direct": (), "dual": ("modes/cot/reward", "modes/direct/reward")}
    assert_changed_and_logged(trainer, module, before, ("rewards/accuracy/mean", "rewards/char_reward/mean",
                                                        *extra[mode]))
    if mode == "direct":  # format is "not applicable" to every direct completion: no metric at all
        assert "rewards/format/mean" not in trainer.callback_metrics
    assert module.rollouts_done == 2 and module.prompts_seen == 4
    rows = module.last_completions
    assert len(rows) == 4 and {"sample_id", "mode", "completion", "char_reward", "reward", "advantage"} <= set(rows[0])
    if mode == "dual":  # second batch = prompts 2 and 3: cot then direct, each group one mode
        assert [r["mode"] for r in rows] == ["cot", "cot", "direct", "direct"]


def test_curated_rows_roll_out_in_their_route_mode(checkpoint, processor):
    # selection=boundary marks rows with train_mode; it wins over mode=direct and over the dual alternation.
    rows = [dict(samples()[0], train_mode="cot"), samples()[1], dict(samples()[2], train_mode="direct")]
    for mode, expected in (("direct", ["cot", "direct", "direct"]), ("dual", ["cot", "direct", "direct"])):
        module = GRPOModule(make_model(checkpoint), processor, num_generations=2, mode=mode,
                            max_new_tokens={"cot": 6, "direct": 3}, reward_funcs=["accuracy"])
        results = module._rollout(rows)["results"]
        assert [r["mode"] for r in results] == [m for m in expected for _ in range(2)]
        assert module.last_modes == ("cot", "direct") and module.per_mode_metrics  # mixed batch: per-mode metrics


def test_grpo_fit_lora(checkpoint, processor):
    model = make_model(checkpoint, lora=True)
    module = GRPOModule(model, processor, num_generations=2, mode="cot", max_new_tokens=8, loss_type="grpo",
                        reward_funcs=["accuracy", char_reward], lr=1e-2)
    before = trainable(model)
    assert before and all("lora_" in n for n in before)  # only adapters train
    trainer = fit(module)
    assert_changed_and_logged(trainer, module, before, ("rewards/accuracy/mean",))


def test_grpo_fit_kl_with_adapter_reference(checkpoint, processor):
    model = make_model(checkpoint, lora=True)
    module = GRPOModule(model, processor, num_generations=2, mode="direct", max_new_tokens=6, beta=0.1,
                        loss_type="dr_grpo", reward_funcs=[char_reward, "overlong"],
                        reward_options={"overlong": {"max_len": 6, "cache_len": 2}}, lr=1e-2)
    assert module.uses_adapter_reference and module.ref_model is None
    before = trainable(model)
    trainer = fit(module)
    assert_changed_and_logged(trainer, module, before, ("kl", "rewards/overlong/mean"))
    assert float(trainer.callback_metrics["kl"]) > 0.0  # step 2: the adapters moved away from the base model
    with pytest.raises(ValueError, match="beta > 0"):
        GRPOModule(make_model(checkpoint), processor, beta=0.1)  # no reference available


def test_grpo_fit_manual_optimization_mu2(checkpoint, processor):
    model = make_model(checkpoint)
    module = GRPOModule(model, processor, num_generations=2, mode="cot", max_new_tokens=8, mu=2,
                        reward_funcs=[char_reward], lr=1e-2, train_micro_batch_size=3, dynamic_filter=True)
    assert not module.automatic_optimization
    before = trainable(model)
    trainer = fit(module, max_steps=2)
    assert trainer.global_step == 2 and module.rollouts_done == 1  # one rollout feeds two optimizer steps
    assert_changed_and_logged(trainer, module, before, ("frac_groups_filtered",))


def test_vision_tower_trains_at_scaled_lr(checkpoint, processor):
    from dualtune.recipes.grpo import build_grpo_module
    from tests.conftest import compose

    model = make_model(checkpoint)
    # The recipe passes conf/algo/grpo.yaml's vision_lr_scale (0.1, as SFT) to the module.
    cfg = compose("train", ["algo=grpo", "mode=direct"])
    built = build_grpo_module(cfg, cfg.algo, model, processor)
    assert built.hparams.vision_lr_scale == 0.1
    assert tuple(built.hparams.vision_patterns) == ("visual.patch_embed", "visual.blocks", "visual.merger")
    module = GRPOModule(model, processor, num_generations=2, mode="direct", max_new_tokens=4,
                        reward_funcs=[char_reward], lr=1e-2, vision_lr_scale=0.1, max_grad_norm=None)
    before = trainable(model)
    trainer = fit(module, max_steps=1)
    groups = trainer.optimizers[0].param_groups
    vision_names = [n for n in before if "visual." in n]
    assert vision_names and [g["lr"] for g in groups] == pytest.approx([1e-2, 1e-3])
    assert len(groups[1]["params"]) == len(vision_names) and len(groups[0]["params"]) == len(before) - len(vision_names)
    # AdamW's first step moves every parameter with a non-zero gradient by ~lr: 1e-2 (LM), 1e-3 (vision).
    after = dict(model.named_parameters())
    step = {n: (after[n] - before[n]).abs().max().item() for n in before}
    assert max(step[n] for n in vision_names) == pytest.approx(1e-3, rel=1e-2)
    assert max(v for n, v in step.items() if n not in vision_names) == pytest.approx(1e-2, rel=1e-2)


def test_all_groups_filtered_means_no_update(checkpoint, processor):
    model = make_model(checkpoint)
    constant = lambda completions, **_: [1.0] * len(completions)  # noqa: E731 - zero-std groups only
    module = GRPOModule(model, processor, num_generations=2, mode="direct", max_new_tokens=4,
                        reward_funcs=[constant], dynamic_filter=True, lr=1e-2)
    before = trainable(model)
    trainer = fit(module, max_steps=1)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters() if n in before)
    metrics = trainer.callback_metrics
    assert float(metrics["frac_groups_filtered"]) == 1.0 and float(metrics["frac_reward_zero_std"]) == 1.0
    assert float(metrics["reward_std"]) == 0.0


def test_separate_reference_model_and_checkpoint_hooks(checkpoint, processor):
    model, ref = make_model(checkpoint), make_model(checkpoint)  # same weights
    module = GRPOModule(model, processor, ref_model=ref, num_generations=2, mode="cot", max_new_tokens=4, beta=0.1)
    assert not module.uses_adapter_reference and not any(p.requires_grad for p in ref.parameters())
    prompt = encode_prompt(processor, samples()[0], "cot")
    inputs, completions, _ = build_policy_batch([prompt], [torch.tensor([7, 8, 9])], processor.tokenizer.pad_token_id)
    chunk = {"inputs": inputs, "completions": completions}
    with torch.no_grad():
        policy = completion_logprobs(model.eval(), inputs, completions)
    assert torch.allclose(module._reference_logprobs(chunk), policy, atol=1e-5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        GRPOModule(model, processor, mode="dual", max_new_tokens={"cot": 8})
    # Checkpoints keep the dual-mode counter but not the frozen reference weights.
    module.prompts_seen = 5
    checkpoint_dict = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint_dict)
    assert checkpoint_dict["grpo_prompts_seen"] == 5
    assert not any(k.startswith("ref_model.") for k in checkpoint_dict["state_dict"])
    module.prompts_seen = 0
    module.on_load_checkpoint(checkpoint_dict)
    assert module.prompts_seen == 5
    module.load_state_dict(checkpoint_dict["state_dict"])  # strict loading works again


@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "bnpo", "dr_grpo"])
def test_micro_batched_loss_matches_full_batch(checkpoint, processor, loss_type):
    """Chunked backward passes (train_micro_batch_size=1) accumulate exactly the full-batch gradient."""
    model = make_model(checkpoint)
    results = generate_completions(model, processor, samples()[:2], "cot", num_generations=2, max_new_tokens=6,
                                   return_inputs=True)
    advantages = torch.tensor([1.0, -1.0, 0.5, -0.5])
    grads, losses = [], []
    for size in (None, 1):
        module = GRPOModule(model, processor, num_generations=2, max_new_tokens=6, loss_type=loss_type,
                            train_micro_batch_size=size)
        chunks = module._chunks(results, advantages, torch.arange(4))
        tokens = float(sum(c["mask"].sum() for c in chunks))
        normaliser = (torch.tensor(tokens), 1) if loss_type in ("dapo", "bnpo") else (None, 1)
        model.zero_grad()
        loss, _ = module._policy_loss(chunks, normaliser, backward=lambda value: value.backward())
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
        losses.append(loss)
    assert len(grads[0]) == len(grads[1]) > 0 and torch.allclose(losses[0], losses[1], atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))
