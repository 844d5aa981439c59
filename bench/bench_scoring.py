"""RAP scoring throughput: batched rollouts (the scoring pipeline) vs a per-sample generate loop.

    python bench/bench_scoring.py                       # tiny base model (test-sized), 16 lab samples, CPU
    python bench/bench_scoring.py --full-tiny --samples 32 --M 5 --max-new-tokens 48 --threads 2

Both paths generate the same work: M multimodal + M text-only rollouts per sample with the same
decoding settings (T = 1.0, top_p = 1.0). Batched = ``scoring.rollouts.collect_rollouts`` through
``HFRolloutBackend`` (all samples x M sequences per condition, ``--micro-batch`` sequences per
``generate`` call, judged and written to a fresh rollout cache). Per-sample = one ``generate_completions``
call per sample and condition (its M sequences batched), and per-rollout = one call per rollout
(batch size 1). Prints wall times, generated tokens and speedups (target: batched >= 5x the loops).
The tiny model rarely emits EOS, so most rollouts run to ``--max-new-tokens`` in every path.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["model.tiny.vocab_size=512", "model.tiny.hidden_size=64", "model.tiny.layers=2",
         "model.tiny.intermediate_size=128", "model.tiny.vision_hidden=32", "model.tiny.vision_depth=1",
         "model.pretrain.n_samples=64", "model.pretrain.epochs=1"]


def parse_args(argv=None):
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--M", type=int, default=4, help="rollouts per condition")
    p.add_argument("--max-new-tokens", type=int, default=24)
    p.add_argument("--micro-batch", type=int, default=64, help="sequences per generate() call (batched path)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 avoids oversubscription)")
    p.add_argument("--full-tiny", action="store_true", help="the default tiny model instead of the test-sized one")
    p.add_argument("--no-per-rollout", dest="per_rollout", action="store_false",
                   help="skip the (slow) loop with one generate call per rollout")
    p.add_argument("--model-path", default=None, help="an existing checkpoint dir (skips building the tiny model)")
    p.add_argument("--cache-dir", type=Path, default=None, help="dualtune cache (tiny model, lab); default: temp")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    return p.parse_args(argv)


def load(args, cache_dir: Path):
    """Config, model, processor and lab math training samples."""
    sys.path.insert(0, str(ROOT))
    from tests.conftest import compose

    from dualtune.data.sources import load_domain
    from dualtune.models.base import resolve_model_path
    from dualtune.models.loading import load_model, load_processor

    overrides = [f"cache_dir={cache_dir}", "domain=math", f"domain.n_train_per_subtask={max(1, args.samples // 4 + 1)}"]
    overrides += [f"model.path={args.model_path}"] if args.model_path else []
    cfg = compose("score", overrides + ([] if args.full_tiny else SMALL))
    path = resolve_model_path(cfg.model, cfg.cache_dir)
    model = load_model(path, cfg.model, for_training=False)
    processor = load_processor(path, cfg.model.get("max_pixels"), cfg.model.get("min_pixels"))
    samples = load_domain(cfg.domain, cfg.cache_dir)["train"][: args.samples]
    return cfg, model, processor, samples


def time_batched(args, model, processor, samples, templates, workdir: Path) -> tuple[float, int]:
    """Both conditions through the scoring pipeline's rollout collection (fresh cache)."""
    from dualtune.scoring.rollouts import HFRolloutBackend, RolloutCache, RolloutSettings, collect_rollouts

    settings = RolloutSettings(num_generations=args.M, max_new_tokens=args.max_new_tokens)
    backend = HFRolloutBackend(model, processor, templates, args.micro_batch)
    cache, stats = RolloutCache(workdir, "bench"), {}
    start = time.perf_counter()
    for condition in ("mm", "txt"):
        collect_rollouts(backend, cache, samples, condition, settings, stats)
    return time.perf_counter() - start, int(stats["generated_tokens"])


def time_loop(args, model, processor, samples, templates, per_rollout: bool) -> tuple[float, int]:
    """One generate call per sample and condition (or per rollout), same decoding settings."""
    from dualtune.scoring.rollouts import condition_inputs
    from dualtune.training.rollout import generate_completions

    tokens, start = 0, time.perf_counter()
    for condition in ("mm", "txt"):
        for sample in condition_inputs(samples, condition):
            calls, n = (args.M, 1) if per_rollout else (1, args.M)
            for _ in range(calls):
                outs = generate_completions(model, processor, [sample], "cot", num_generations=n,
                                            max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0,
                                            micro_batch_size=n, templates=templates)
                tokens += sum(len(o["completion_ids"]) for o in outs)
    return time.perf_counter() - start, tokens


def main(argv=None) -> dict:
    """Run the benchmark and print a summary."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "cache"
        cfg, model, processor, samples = load(args, cache_dir)
        templates = dict(cfg.mode.templates)
        time_loop(args, model, processor, samples[:1], templates, per_rollout=False)  # warm-up
        batched_s, batched_tokens = time_batched(args, model, processor, samples, templates, Path(tmp) / "rollouts")
        loop_s, loop_tokens = time_loop(args, model, processor, samples, templates, per_rollout=False)
        result = {"samples": len(samples), "M": args.M, "max_new_tokens": args.max_new_tokens,
                  "threads": args.threads, "model": args.model_path or ("tiny" if args.full_tiny else "tiny-test"),
                  "batched_s": round(batched_s, 2), "batched_tokens": batched_tokens,
                  "per_sample_s": round(loop_s, 2), "per_sample_tokens": loop_tokens,
                  "speedup_vs_per_sample": round(loop_s / batched_s, 2)}
        if args.per_rollout:
            one_s, one_tokens = time_loop(args, model, processor, samples, templates, per_rollout=True)
            result.update(per_rollout_s=round(one_s, 2), per_rollout_tokens=one_tokens,
                          speedup_vs_per_rollout=round(one_s / batched_s, 2))
    print(f"{len(samples)} samples x {args.M} rollouts x 2 conditions, <= {args.max_new_tokens} new tokens "
          f"({result['model']}, {args.threads} thread(s))")
    print(f"  batched scoring   : {batched_s:7.2f} s  ({batched_tokens} generated tokens)")
    print(f"  per-sample loop   : {loop_s:7.2f} s  ({loop_tokens} generated tokens)  "
          f"speedup {result['speedup_vs_per_sample']:.1f}x")
    if args.per_rollout:
        print(f"  per-rollout loop  : {result['per_rollout_s']:7.2f} s  ({result['per_rollout_tokens']} generated "
              f"tokens)  speedup {result['speedup_vs_per_rollout']:.1f}x")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
