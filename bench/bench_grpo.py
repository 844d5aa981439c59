"""GRPO step time split into generation / reward / update (re-scoring, backward, optimizer step).

    python bench/bench_grpo.py                                   # tiny Qwen2.5-VL (random init), CPU
    python bench/bench_grpo.py --model qwen2_5_vl_3b_random      # Qwen2.5-VL-3B shapes, random bf16, CUDA

Both models are built from a config (no download) with random weights and the tiny model's tokenizer
/ processor (Qwen2.5-VL image processing: 14 px patches merged 2x2); token ids beyond the tiny vocabulary
decode to nothing. Random weights rarely emit EOS, so completions run to ``--max-new-tokens``: a
fixed-length, worst-case generation. Prompts are lab spatial samples (images / video frames).
Timings come from the real `GRPOModule.training_step` under a Lightning Trainer: generation and reward
calls are wrapped with timers, update = step total - generation - reward. Without CUDA the 3B model
prints a message and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# Qwen/Qwen2.5-VL-3B-Instruct's config.json (text + vision towers), applied over the tiny config.
QWEN25_VL_3B_TEXT = dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                         num_key_value_heads=2, vocab_size=151936, max_position_embeddings=128000,
                         max_window_layers=70, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                                                "mrope_section": [16, 24, 24]})
QWEN25_VL_3B_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                           fullatt_block_indexes=[7, 15, 23, 31], window_size=112)


def parse_args(argv=None):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["tiny", "qwen2_5_vl_3b_random"], default="tiny")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: cuda for the 3B model (exit 0 without it), cpu for tiny")
    p.add_argument("--mode", choices=["cot", "direct", "dual"], default="cot")
    p.add_argument("--prompts", type=int, default=4, help="prompts per step (algo.batch_size)")
    p.add_argument("--generations", type=int, default=8, help="completions per prompt (G)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: 64 (tiny), 256 (3B)")
    p.add_argument("--steps", type=int, default=4, help="timed steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--layers", type=int, default=None, help="override the text layer count (smoke runs)")
    p.add_argument("--vision-depth", type=int, default=None, help="override the vision block count")
    p.add_argument("--micro-batch", type=int, default=64, help="generation_micro_batch_size")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p.parse_args(argv)


def build_checkpoint(args, workdir: Path) -> Path:
    """A random-init checkpoint dir: the tiny model, or the tiny one re-shaped to Qwen2.5-VL-3B."""
    from omegaconf import OmegaConf

    from dualtune.models.base import tokenizer_corpus
    from dualtune.models.tiny import build_tiny_checkpoint

    t = OmegaConf.load(ROOT / "conf" / "model" / "tiny.yaml").tiny
    return build_tiny_checkpoint(workdir / "tiny", tokenizer_corpus(), seed=0, vocab_size=int(t.vocab_size),
                                 hidden_size=int(t.hidden_size), layers=int(t.layers), heads=int(t.heads),
                                 intermediate_size=int(t.intermediate_size), vision_hidden=int(t.vision_hidden),
                                 vision_depth=int(t.vision_depth))


def build_model(args, checkpoint: Path, device: str):
    """The policy in train mode on ``device``: loaded from the tiny checkpoint, or built from a 3B config."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(checkpoint)
    if args.model == "qwen2_5_vl_3b_random":
        for key, value in QWEN25_VL_3B_TEXT.items():
            setattr(config.text_config, key, value)
        for key, value in QWEN25_VL_3B_VISION.items():
            setattr(config.vision_config, key, value)
    if args.layers:
        config.text_config.num_hidden_layers = args.layers
    if args.vision_depth:
        config.vision_config.depth = args.vision_depth
        config.vision_config.fullatt_block_indexes = [args.vision_depth - 1]
    config.text_config.layer_types = ["full_attention"] * config.text_config.num_hidden_layers
    dtype = torch.bfloat16 if args.model == "qwen2_5_vl_3b_random" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):  # initialise directly on the target device (3.8B params)
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype, attn_implementation="sdpa")
    return model.train()


def lab_prompts(n: int, workdir: Path) -> list[dict]:
    """``n`` lab spatial training samples (round-robin over its subtasks)."""
    from dualtune.lab import load_lab

    rows = list(load_lab("spatial", workdir / "lab", n_train=max(1, n), n_test=1, seed=0)["train"])
    by_subtask: dict[str, list] = {}
    for row in rows:
        by_subtask.setdefault(row["subtask"], []).append(row)
    mixed = [r for group in zip(*by_subtask.values()) for r in group]
    return (mixed * n)[:n]


class StepTimer:
    """Wraps the module-level generation and reward functions of `grpo_module` with wall-clock timers."""

    def __init__(self, device: str):
        import dualtune.training.grpo_module as grpo_module

        self.module, self.device = grpo_module, device
        self.current = {"generation": 0.0, "reward": 0.0}
        self.steps: list[dict] = []
        for attr, key in (("generate_completions", "generation"), ("combine_rewards", "reward")):
            setattr(grpo_module, attr, self._timed(getattr(grpo_module, attr), key))

    def _sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()

    def _timed(self, fn, key):
        def wrapper(*args, **kwargs):
            self._sync()
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            self._sync()
            self.current[key] += time.perf_counter() - start
            return out
        return wrapper

    def callback(self):
        """A Lightning callback timing each whole training step (rollout + optimizer step)."""
        import lightning as L

        timer = self

        class _Callback(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                timer._sync()
                timer.current = {"generation": 0.0, "reward": 0.0, "start": time.perf_counter()}

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                timer._sync()
                total = time.perf_counter() - timer.current.pop("start")
                metrics = trainer.callback_metrics
                timer.steps.append({**timer.current, "update": total - sum(timer.current.values()), "total": total,
                                    "completion_tokens": float(metrics.get("completions/mean_length", 0.0))})

        return _Callback()


def run(args) -> dict:
    """Build everything, run warmup + timed steps, return per-phase mean seconds."""
    import lightning as L
    from torch.utils.data import DataLoader

    from dualtune.models.loading import load_processor
    from dualtune.training.grpo_module import GRPOModule, grpo_collate

    device = "cuda" if args.device == "cuda" or (args.device == "auto" and args.model != "tiny") else "cpu"
    max_new = args.max_new_tokens or (64 if args.model == "tiny" else 256)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        checkpoint = build_checkpoint(args, workdir)
        processor = load_processor(str(checkpoint), max_pixels=12544, min_pixels=784)
        model = build_model(args, checkpoint, device)
        n_params = sum(p.numel() for p in model.parameters())
        module = GRPOModule(model, processor, num_generations=args.generations, mode=args.mode,
                            max_new_tokens={"cot": max_new, "direct": max_new}, reward_funcs=["accuracy", "format"],
                            lr=1e-6, generation_micro_batch_size=args.micro_batch,
                            gradient_checkpointing=args.gradient_checkpointing)
        timer = StepTimer(device)
        steps = args.warmup + args.steps
        loader = DataLoader(lab_prompts(args.prompts * steps, workdir), batch_size=args.prompts,
                            collate_fn=grpo_collate)
        trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_steps=steps,
                            precision="bf16-true" if device == "cuda" else "32-true", logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            callbacks=[timer.callback()])
        trainer.fit(module, loader)
    timed = timer.steps[args.warmup:]
    means = {k: statistics.mean(s[k] for s in timed) for k in ("generation", "reward", "update", "total")}
    return {"model": args.model, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "params_M": round(n_params / 1e6, 1), "mode": args.mode, "prompts": args.prompts,
            "generations": args.generations, "max_new_tokens": max_new,
            "mean_completion_tokens": statistics.mean(s["completion_tokens"] for s in timed),
            "steps_timed": len(timed), "seconds": means}


def main(argv=None) -> int:
    """Entry point: print the step-time split (and optionally write it as JSON)."""
    args = parse_args(argv)
    wants_cuda = args.device == "cuda" or (args.device == "auto" and args.model != "tiny")
    if wants_cuda and not torch.cuda.is_available():
        print(f"bench_grpo: --model {args.model} needs a CUDA GPU and none is available; skipping "
              "(use --model tiny for the CPU benchmark).")
        return 0
    result = run(args)
    s = result["seconds"]
    print(f"GRPO step on {result['model']} ({result['params_M']}M params, {result['device']}), mode={result['mode']}, "
          f"{result['prompts']} prompts x G={result['generations']}, max_new_tokens={result['max_new_tokens']} "
          f"(mean completion {result['mean_completion_tokens']:.1f} tokens), {result['steps_timed']} timed steps:")
    for key in ("generation", "reward", "update", "total"):
        share = 100 * s[key] / s["total"] if s["total"] else 0.0
        print(f"  {key:<10} {s[key]:8.3f} s  ({share:5.1f}%)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
