"""GPU check: SFT tokens/s + MFU, a GRPO step split, evaluation throughput and peak GPU memory per stage, on a
Qwen2.5-VL-3B-architecture model with random bf16 weights (no download, no network, HF backend only).

    bash bench/gpu_check.sh                              # one GPU (H200 peak FLOPs); stops at 8 min
    python bench/bench_gpu.py --smoke --out smoke.json   # the same code on CPU with a tiny config (< 60 s)

The 3B config is written below from Qwen/Qwen2.5-VL-3B-Instruct's published config.json (the model card's
files); transformers' ``Qwen2_5_VLConfig()`` defaults are not the 3B (its text defaults are 72B-sized). The
tokenizer / processor are the tiny base's (a cached ``~/.cache/dualtune/models/tiny-*`` if there is one, else
trained here in seconds): token ids stay below 1k, which changes no shape or FLOP. Images are random RGB
(``--image-size`` px square). Random weights rarely emit EOS, so generation runs to the budget (worst case).

Stages (each reports the peak ``torch.cuda.max_memory_allocated`` since the stage began):
* sft: the repo's `SFTModule` + `SFTDataModule` (CoT targets) under a Lightning Trainer (bf16-true, full
  fine-tuning); tokens = every input token (text + image placeholders); MFU = 6 * N * tokens/s / peak FLOP/s.
* grpo: the repo's `GRPOModule` under a Trainer; one step split into generation (``model.generate``), reward
  (``combine_rewards``), logprob (policy re-scoring forward), backward, optimizer (clip + AdamW) and other.
* eval: `evaluate_model` (greedy ``model.generate``) in direct and cot modes: samples/s and generated tokens/s.
"""

from __future__ import annotations

import argparse
import gc
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

H200_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H200 SXM: 1,979 TFLOPS bf16 with 2:4 sparsity -> 989 dense
# Qwen/Qwen2.5-VL-3B-Instruct config.json: text tower (with tie_word_embeddings) and vision tower.
QWEN25_VL_3B = {
    "text": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                 num_key_value_heads=2, vocab_size=151936, max_position_embeddings=128000, rms_norm_eps=1e-6,
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
                 tie_word_embeddings=True),
    "vision": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                   patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                   fullatt_block_indexes=[7, 15, 23, 31]),
}
# --smoke: the test model's sizes (tests/conftest.py TEST_MODEL_OVERRIDES), vocabulary = the tokenizer's.
TINY = {
    "text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}),
    "vision": dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=1, out_hidden_size=64, patch_size=14,
                   spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[0]),
}
GPU_DEFAULTS = dict(sft_batch=8, sft_steps=6, cot_words=700, grpo_steps=2, prompts=4, generations=8,
                    grpo_new_tokens=256, eval_samples=32, eval_direct=64, eval_cot=512, image_size=448, warmup=1)
SMOKE_DEFAULTS = dict(sft_batch=2, sft_steps=2, cot_words=20, grpo_steps=1, prompts=2, generations=2,
                      grpo_new_tokens=6, eval_samples=2, eval_direct=3, eval_cot=6, image_size=56, warmup=1)


def mfu(n_params: int, tokens_per_s: float, peak_tflops: float) -> float:
    """Model FLOPs utilisation: 6 * N * tokens/s (forward 2N + backward 4N FLOPs per token) over the peak."""
    return 6.0 * n_params * tokens_per_s / (peak_tflops * 1e12)


def parse_args(argv=None):
    """Command-line options (unset sizes take the GPU or the --smoke defaults)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny config on CPU: exercises every stage in < 60 s")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default: $OUT/bench_gpu.json if $OUT)")
    p.add_argument("--processor", default=None, help="a saved processor dir (default: the cached tiny base)")
    p.add_argument("--peak-tflops", type=float, default=H200_BF16_DENSE_TFLOPS, help="peak dense bf16 TFLOP/s")
    for key, value in GPU_DEFAULTS.items():
        p.add_argument("--" + key.replace("_", "-"), type=int, default=None, help=f"GPU default {value}")
    args = p.parse_args(argv)
    for key, value in (SMOKE_DEFAULTS if args.smoke else GPU_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None and os.environ.get("OUT"):
        args.out = Path(os.environ["OUT"]) / "bench_gpu.json"
    return args


def load_tiny_processor(path: str | None, workdir: Path, min_pixels: int, max_pixels: int):
    """The tiny base's processor (pixel bounds set): ``path``, a cached tiny base, or one trained now."""
    from dualtune.models.loading import load_processor

    cache = os.environ.get("DUALTUNE_CACHE", str(Path.home() / ".cache" / "dualtune"))
    found = sorted(glob.glob(f"{cache}/models/tiny-*/processor_config.json"))
    path = path or (str(Path(found[0]).parent) if found else None)
    if path is None:
        from dualtune.models.base import tokenizer_corpus
        from dualtune.models.tiny import tiny_processor, train_tokenizer

        path = str(workdir / "processor")
        tiny_processor(train_tokenizer(tokenizer_corpus(), vocab_size=1024)).save_pretrained(path)
    return load_processor(path, max_pixels=max_pixels, min_pixels=min_pixels), path


def build_model(sizes: dict, tokenizer, device: str, dtype):
    """A randomly initialised Qwen2.5-VL of ``sizes`` on ``device`` whose special-token ids are the tokenizer's."""
    from transformers import AutoModelForImageTextToText, Qwen2_5_VLConfig

    from dualtune.models.tiny import SPECIAL_TOKENS

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = {"vocab_size": len(tokenizer), **sizes["text"], "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"]}
    config = Qwen2_5_VLConfig(text_config=text, vision_config=sizes["vision"], tie_word_embeddings=True,
                              image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                              vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype, attn_implementation="sdpa")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def make_rows(n: int, image_size: int, cot_words: int, seed: int = 0) -> list[dict]:
    """``n`` schema rows, each with one random RGB image, a question, a CoT of ``cot_words`` words and an answer."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    words = ["count", "the", "red", "squares", "left", "of", "the", "line", "then", "add", "two", "so"]
    rows = []
    for k in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (image_size, image_size, 3), dtype=np.uint8)).save(buf, format="PNG")
        cot = " ".join(words[i] for i in rng.integers(0, len(words), cot_words))
        rows.append({"id": f"b{k}", "domain": "bench", "subtask": "s", "images": [{"bytes": buf.getvalue(),
                     "path": None}], "video": [], "question": "How many red squares are left of the line?",
                     "options": [], "answer": str(k % 7), "answer_type": "number", "cot": cot, "source": "bench",
                     "meta": "{}"})
    return rows


class Stage:
    """Context manager: wall time and peak CUDA memory (GiB; None on CPU) of one stage."""

    def __init__(self, device: str, results: dict, name: str):
        self.cuda, self.results, self.name = device == "cuda", results, name

    def __enter__(self):
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        peak = torch.cuda.max_memory_allocated() / 2**30 if self.cuda else None
        self.results[self.name] = {"wall_s": time.perf_counter() - self.start, "peak_mem_gib": peak}


class Clock:
    """Synchronised wall time summed per key: `wrap` times a function's calls, `mark` / `lap` an interval."""

    def __init__(self, device: str):
        self.cuda, self.totals, self.marks = device == "cuda", {}, {}

    def now(self) -> float:
        """Seconds, after the GPU queue drained."""
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def wrap(self, fn, key: str):
        """``fn`` with its calls timed into ``key``."""
        def timed(*args, **kwargs):
            self.mark(key)
            try:
                return fn(*args, **kwargs)
            finally:
                self.lap(key)
        return timed

    def mark(self, key: str) -> None:
        """Start an interval of ``key``."""
        self.marks[key] = self.now()

    def lap(self, key: str) -> None:
        """End the open interval of ``key`` (if any) and add it to the total."""
        if key in self.marks:
            self.totals[key] = self.totals.get(key, 0.0) + self.now() - self.marks.pop(key)


def step_timer(clock: Clock, steps: list, warmup: int):
    """A Lightning callback: per training step, the total, backward and optimizer intervals plus ``clock``'s
    wrapped-function totals and the step's input tokens; the first ``warmup`` steps are dropped."""
    import lightning as L

    class StepTimer(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            clock.totals.clear()
            mask = batch.get("attention_mask") if isinstance(batch, dict) else None
            self.tokens = int(mask.sum()) if mask is not None else 0
            clock.mark("total")

        def on_before_backward(self, trainer, pl_module, loss):
            clock.mark("backward")

        def on_after_backward(self, trainer, pl_module):
            clock.lap("backward")

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            clock.mark("optimizer")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            clock.lap("optimizer")
            clock.lap("total")
            if batch_idx >= warmup:
                steps.append({**clock.totals, "tokens": self.tokens})

    return StepTimer()


def fit(module, loader, device: str, n_steps: int, callback) -> None:
    """``n_steps`` Lightning training steps of ``module`` on one device (bf16-true on CUDA)."""
    import lightning as L

    trainer = L.Trainer(accelerator="gpu" if device == "cuda" else "cpu", devices=1, max_steps=n_steps,
                        precision="bf16-true" if device == "cuda" else "32-true", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[callback])
    trainer.fit(module, loader)


def bench_sft(model, processor, rows, args, device: str, n_params: int) -> dict:
    """SFT tokens/s and MFU over the timed steps."""
    from dualtune.data.datamodule import SFTDataModule
    from dualtune.training.sft_module import SFTModule

    clock, steps = Clock(device), []
    data = SFTDataModule(processor, rows, mode="cot", batch_size=args.sft_batch, max_length=8192, seed=0)
    module = SFTModule(model, lr=1e-5, warmup_ratio=0.0, scheduler="constant")
    fit(module, data, device, args.warmup + args.sft_steps, step_timer(clock, steps, args.warmup))
    seconds, tokens = sum(s["total"] for s in steps), sum(s["tokens"] for s in steps)
    return {"steps": len(steps), "batch": args.sft_batch, "tokens_per_step": tokens / len(steps),
            "step_s": seconds / len(steps), "tokens_per_s": tokens / seconds,
            "mfu": mfu(n_params, tokens / seconds, args.peak_tflops)}


def bench_grpo(model, processor, rows, args, device: str) -> dict:
    """Mean seconds per GRPO step: generation / reward / logprob / backward / optimizer / other."""
    from torch.utils.data import DataLoader

    import dualtune.training.grpo_module as grpo_module

    clock, steps = Clock(device), []
    patched = {name: getattr(grpo_module, name) for name in ("combine_rewards", "completion_logprobs")}
    grpo_module.combine_rewards = clock.wrap(patched["combine_rewards"], "reward")
    grpo_module.completion_logprobs = clock.wrap(patched["completion_logprobs"], "logprob")
    model.generate = clock.wrap(model.generate, "generation")
    try:
        module = grpo_module.GRPOModule(
            model, processor, num_generations=args.generations, mode="cot", reward_funcs=["accuracy", "format"],
            max_new_tokens={"cot": args.grpo_new_tokens, "direct": args.grpo_new_tokens}, lr=1e-6,
            generation_micro_batch_size=args.prompts * args.generations)
        loader = DataLoader(rows, batch_size=args.prompts, collate_fn=grpo_module.grpo_collate)
        fit(module, loader, device, args.warmup + args.grpo_steps, step_timer(clock, steps, args.warmup))
    finally:
        for name, fn in patched.items():
            setattr(grpo_module, name, fn)
        del model.generate
    keys = ("generation", "reward", "logprob", "backward", "optimizer")
    split = {k: statistics.mean(s.get(k, 0.0) for s in steps) for k in (*keys, "total")}
    split["other"] = split["total"] - sum(split[k] for k in keys)
    return {"steps": len(steps), "prompts": args.prompts, "generations": args.generations,
            "max_new_tokens": args.grpo_new_tokens, "seconds": split}


def bench_eval(model, processor, rows, args) -> dict:
    """Greedy evaluation throughput per mode: samples/s and generated tokens/s."""
    from dualtune.evaluation.runner import evaluate_model

    budgets = {"direct": args.eval_direct, "cot": args.eval_cot}
    result = evaluate_model(model, processor, rows, modes=("direct", "cot"), max_new_tokens=budgets,
                            batch_size=len(rows), progress=False)
    out = {}
    for mode, seconds in result.wall_time_s.items():
        tokens = sum(r["n_tokens"] for r in result.records if r["mode"] == mode)
        out[mode] = {"samples": len(rows), "max_new_tokens": budgets[mode], "seconds": seconds,
                     "samples_per_s": len(rows) / seconds, "tokens_per_s": tokens / seconds}
    return out


def run(args) -> dict:
    """Build the model once and run the three stages; returns the JSON-ready results."""
    device = "cpu" if args.smoke else "cuda"
    results, usage = {}, {}
    pixels = (784, 12544) if args.smoke else (3136, 1003520)  # conf/model/{tiny,qwen2_5_vl_3b}.yaml bounds
    with tempfile.TemporaryDirectory() as tmp:
        processor, processor_path = load_tiny_processor(args.processor, Path(tmp), *pixels)
    model = build_model(TINY if args.smoke else QWEN25_VL_3B, processor.tokenizer, device,
                        torch.float32 if args.smoke else torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    rows = make_rows(max(args.sft_batch * (args.warmup + args.sft_steps), args.eval_samples,
                         args.prompts * (args.warmup + args.grpo_steps)), args.image_size, args.cot_words)
    with Stage(device, usage, "sft"):
        results["sft"] = bench_sft(model, processor, rows[: args.sft_batch * (args.warmup + args.sft_steps)],
                                   args, device, n_params)
    for p in model.parameters():
        p.grad = None
    with Stage(device, usage, "grpo"):
        results["grpo"] = bench_grpo(model, processor, rows[: args.prompts * (args.warmup + args.grpo_steps)],
                                     args, device)
    with Stage(device, usage, "eval"):
        results["eval"] = bench_eval(model, processor, rows[: args.eval_samples], args)
    return {"config": "tiny (smoke)" if args.smoke else "Qwen2.5-VL-3B architecture, random init, bf16",
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
            "params": n_params, "processor": processor_path, "image_size": args.image_size,
            "peak_tflops": args.peak_tflops, "stages": results, "stage_usage": usage}


def report(result: dict) -> str:
    """The printed table."""
    s, g, e = (result["stages"][k] for k in ("sft", "grpo", "eval"))
    mem = {k: ("n/a" if v["peak_mem_gib"] is None else f"{v['peak_mem_gib']:.1f} GiB")
           for k, v in result["stage_usage"].items()}
    lines = [f"{result['config']} on {result['device']} (torch {result['torch']}), N = {result['params']:,} params",
             f"SFT   batch {s['batch']}, {s['tokens_per_step']:.0f} tokens/step, {s['step_s']:.3f} s/step: "
             f"{s['tokens_per_s']:,.0f} tokens/s; MFU = 6 * N * tokens/s / ({result['peak_tflops']:g}e12 FLOP/s) "
             f"= {100 * s['mfu']:.1f}%   peak mem {mem['sft']}",
             f"GRPO  {g['prompts']} prompts x G={g['generations']}, max_new_tokens {g['max_new_tokens']}, "
             f"{g['seconds']['total']:.2f} s/step   peak mem {mem['grpo']}"]
    lines += [f"      {k:<11}{v:8.3f} s ({100 * v / g['seconds']['total']:5.1f}%)"
              for k, v in g["seconds"].items() if k != "total"]
    lines += [f"EVAL  {m:<7}{v['samples']} samples, max_new_tokens {v['max_new_tokens']}: {v['samples_per_s']:.2f} "
              f"samples/s, {v['tokens_per_s']:,.0f} tokens/s" for m, v in e.items()]
    lines.append(f"      peak mem {mem['eval']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point: run, print the table, write the JSON (``--out`` or ``$OUT/bench_gpu.json``)."""
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not args.smoke and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU; run with --smoke for the CPU check", file=sys.stderr)
        return 2
    result = run(args)
    print(report(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
