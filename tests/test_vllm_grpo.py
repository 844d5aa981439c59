"""GRPO rollouts on a colocated vLLM engine (`training.engine_sync`), in the vLLM environment (run by .ci/vllm).

After a GRPO optimizer update the engine holds the policy's weights (tensor for tensor, in vLLM's fused layout),
greedy-decodes what the HF policy decodes, and its sampled tokens' log-probs are the trainer's (the inputs of
the truncated importance-sampling correction); `python train.py algo=grpo generation=vllm` runs end to end.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm")
pytestmark = pytest.mark.vllm

import torch  # noqa: E402

from tests.conftest import TEST_MODEL_OVERRIDES, sharpen_weights  # noqa: E402
from tests.test_vllm_generation import CORPUS, MAX_PIXELS, VLLM_TINY, _rows, _samples  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# HF projections vLLM stacks into one parameter: name -> (fused name, position).
STACKED = {"q_proj": ("qkv_proj", 0), "k_proj": ("qkv_proj", 1), "v_proj": ("qkv_proj", 2),
           "gate_proj": ("gate_up_proj", 0), "up_proj": ("gate_up_proj", 1)}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    """A tiny Qwen2.5-VL (head_dim 32, vLLM's CPU attention needs it) with sharpened random weights."""
    from dualtune.models.loading import load_model
    from dualtune.models.tiny import build_tiny_checkpoint

    path = build_tiny_checkpoint(tmp_path_factory.mktemp("vllm_grpo"), CORPUS, vocab_size=300, hidden_size=64,
                                 layers=2, heads=2, intermediate_size=128, vision_hidden=32, vision_depth=1)
    model = load_model(str(path), {"dtype": "float32"}, for_training=False)
    sharpen_weights(model, seed=3)
    model.save_pretrained(path)
    return str(path)


def token_reward(completions, completion_ids, **_):
    """A reward with spread in every group of sampled completions (the tiny model answers nothing right)."""
    return [float(sum(ids) % 5) for ids in completion_ids]


def engine_layout(hf_state: dict) -> dict:
    """The HF state dict under vLLM's Qwen2.5-VL parameter names, q/k/v and gate/up stacked as vLLM stores them."""
    out, parts = {}, {}
    for name, tensor in hf_state.items():
        for hf, vllm in (("model.language_model.", "language_model.model."), ("model.visual.", "visual."),
                         ("lm_head.", "language_model.lm_head.")):
            if name.startswith(hf):
                name = vllm + name[len(hf):]
        module, _, leaf = name.rpartition(".")
        parent, _, proj = module.rpartition(".")
        if proj in STACKED:
            fused, index = STACKED[proj]
            parts.setdefault(f"{parent}.{fused}.{leaf}", {})[index] = tensor
        else:
            out[name] = tensor
    out.update({name: torch.cat([pieces[i] for i in sorted(pieces)]) for name, pieces in parts.items()})
    return out


def engine_state(engine) -> dict:
    """Copies of the engine model's parameters and buffers."""
    return engine.generator.llm.apply_model(lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()})[0]


def sampling_logprobs(model, processor, rollouts, suppressed) -> list[torch.Tensor]:
    """The HF policy's log-probs of each rollout's tokens under the sampled distribution (temperature 1, the
    suppressed vision tokens excluded, as the engine's processed log-probs)."""
    from dualtune.training.rollout import build_policy_batch

    inputs, completions, mask = build_policy_batch([r["prompt_inputs"] for r in rollouts],
                                                   [r["completion_ids"] for r in rollouts],
                                                   processor.tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model.eval()(**inputs, use_cache=False).logits[:, -completions.shape[1] - 1: -1].float()
    logits[..., suppressed] = float("-inf")
    logp = torch.log_softmax(logits, -1).gather(-1, completions.unsqueeze(-1)).squeeze(-1)
    return [row[: int(m.sum())] for row, m in zip(logp, mask)]


def test_grpo_update_is_pushed_into_the_engine(ckpt):
    import lightning as L
    from torch.utils.data import DataLoader

    from dualtune.generation.hf import HFGenerator
    from dualtune.generation.vllm import VLLMGenerator
    from dualtune.models.loading import load_model, load_processor
    from dualtune.training.engine_sync import EngineRollouts, EngineSyncCallback
    from dualtune.training.grpo_module import GRPOModule, grpo_collate

    processor = load_processor(ckpt, MAX_PIXELS, 784)
    model = load_model(ckpt, {"dtype": "float32"})
    hf = HFGenerator(model, processor, micro_batch_size=6)
    engine = EngineRollouts(VLLMGenerator(ckpt, processor, min_pixels=784, max_pixels=MAX_PIXELS, dtype="float32",
                                          logprobs_mode="processed_logprobs"), importance_sampling=True)
    probe = _samples()
    try:
        before = engine.generator.generate(probe, "cot", max_new_tokens=10, do_sample=False)
        assert _rows(before) == _rows(hf.generate(probe, "cot", max_new_tokens=10, do_sample=False))
        start = {k: v.clone() for k, v in model.state_dict().items()}
        module = GRPOModule(model, processor, rollout_engine=engine, num_generations=4, mode="cot", max_new_tokens=8,
                            reward_funcs=[token_reward], loss_type="grpo", lr=0.05, vision_lr_scale=1.0)
        torch.manual_seed(0)
        trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[EngineSyncCallback(engine)])
        trainer.fit(module, DataLoader(_samples()[:4], batch_size=4, collate_fn=grpo_collate))
        assert trainer.global_step == 1 and engine.syncs == 2  # at train start and after the step
        assert any(not torch.equal(v, start[k]) for k, v in model.state_dict().items())  # the policy moved
        # The rollouts came from the engine with its log-probs: the correction ran (float32: weights near 1).
        ratio = float(trainer.callback_metrics["sampling/importance_sampling_ratio/mean"])
        assert 0.9 < ratio <= 1.0 + 1e-3

        # 1. The engine's weights are the updated policy's, tensor for tensor. On CPU vLLM keeps most linear
        # weights packed in its GEMM kernels (the parameter left empty): those are checked by decoding (2, 3).
        expected, got = engine_layout(model.state_dict()), engine_state(engine)
        assert len(set(expected) & set(got)) >= len(expected) - 1  # at most a tied lm_head is not separate
        compared = [name for name in set(expected) & set(got) if got[name].numel()]
        for name in compared:  # vLLM pads the vocabulary rows of the embedding to a multiple of 64
            assert torch.equal(got[name][: len(expected[name])].to(expected[name].dtype), expected[name]), name
        moved = [name for name in compared if not torch.equal(got[name][: len(expected[name])],
                                                                engine_layout(start)[name])]
        assert "language_model.model.embed_tokens.weight" in moved and any("norm" in n for n in moved)
        # 2. Greedy decoding: the engine equals the updated HF policy token for token, and differs from before.
        after = engine.generator.generate(probe, "cot", max_new_tokens=10, do_sample=False)
        assert _rows(after) == _rows(hf.generate(probe, "cot", max_new_tokens=10, do_sample=False))
        assert _rows(after) != _rows(before)
        # 3. Sampled rollouts: the engine's log-probs of its tokens are the updated policy's (TIS inputs).
        rollouts = engine(model, processor, probe[:3], "cot", num_generations=2, max_new_tokens=6,
                          return_inputs=True)
        assert len(rollouts) == 6 and all(len(r["engine_logprobs"]) == len(r["completion_ids"]) for r in rollouts)
        reference = sampling_logprobs(model, processor, rollouts, engine.generator.suppressed_ids)
        for row, ref in zip(rollouts, reference):
            assert torch.allclose(row["engine_logprobs"], ref, atol=1e-4)
    finally:
        engine.close()


def test_train_grpo_with_the_vllm_backend_from_the_command_line(ckpt, cache_dir, tmp_path):
    """`python train.py algo=grpo generation=vllm ...`: two rollout steps on the engine, the model saved."""
    out = tmp_path / "run"
    args = [f"model.path={ckpt}", f"cache_dir={cache_dir}", f"output_dir={out}", *TEST_MODEL_OVERRIDES, *VLLM_TINY,
            "algo=grpo", "generation=vllm", "eval.enabled=false", "domain=math", "domain.n_train_per_subtask=1",
            "domain.n_test_per_subtask=1", "algo.max_steps=2", "algo.batch_size=2", "algo.num_generations=2",
            "mode.max_new_tokens={direct: 4, cot: 8}", "logger=csv", f"model.max_pixels={MAX_PIXELS}"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled")
    run = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    logs = run.stdout + run.stderr + "".join(p.read_text() for p in out.rglob("*.log"))
    assert "vLLM engine on" in logs and "GRPO done: 2 rollout steps" in logs
    assert (out / "model" / "config.json").exists()
    with (out / "reward_curve.csv").open() as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [1, 2]
    metrics = next(out.rglob("metrics.csv")).read_text()
    assert "sampling/importance_sampling_ratio/mean" in metrics  # rollouts came from the engine, corrected
