"""Generation throughput, HF (reference) vs vLLM, on the same prompts: both answer modes, images, greedy
and M=5 sampling. Run it in the vLLM environment (it has both backends):

    make vllm-env && .venv-vllm/bin/python bench/bench_generation.py            # tiny default model, CPU
    .venv-vllm/bin/python bench/bench_generation.py --per-subtask 4 --m 5 -- model=qwen2_5_vl_3b trainer=gpu

Prints generated tokens / s per backend and setting, side by side, and the vLLM / HF ratio. The model is the
configured one (default: the embedded tiny base, built into $DUALTUNE_CACHE if missing); prompts are the lab's
test items (every domain, ``--per-subtask`` each). Wall times include nothing but ``generate`` calls.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = (("direct", "greedy", 1), ("cot", "greedy", 1), ("direct", "sampled", None), ("cot", "sampled", None))


def compose(overrides):
    """The train config with ``overrides`` (Hydra compose API over conf/)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=list(overrides))


def run_backend(cfg, backend: str, model_path: str, samples, m: int, batch_size: int) -> dict:
    """{(mode, kind): (generated tokens, seconds)} for one backend over every setting."""
    from omegaconf import open_dict

    from dualtune.generation.base import build_generator
    from dualtune.models.loading import load_model, load_processor

    with open_dict(cfg):
        cfg.generation.backend = backend
    processor = load_processor(model_path, cfg.model.get("max_pixels"), cfg.model.get("min_pixels"))
    model = load_model(model_path, cfg.model, for_training=False) if backend == "hf" else None
    budgets = dict(cfg.mode.max_new_tokens)
    out = {}
    with build_generator(cfg, model_path, processor, model=model, micro_batch_size=batch_size) as generator:
        generator.generate(samples[:2], "direct", n=1, max_new_tokens=4, do_sample=False, seed=0)  # warm-up
        for mode, kind, n in SETTINGS:
            n = n or m
            start = time.perf_counter()
            done = generator.generate(samples, mode, n=n, max_new_tokens=int(budgets[mode]),
                                      do_sample=kind == "sampled", temperature=1.0, top_p=1.0, seed=0)
            seconds = time.perf_counter() - start
            out[(mode, kind)] = (sum(len(c["completion_ids"]) for c in done), seconds)
    return out


def main(argv=None) -> int:
    """Benchmark both backends and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-subtask", type=int, default=4, help="lab test items per subtask")
    parser.add_argument("--m", type=int, default=5, help="completions per prompt when sampling")
    parser.add_argument("--batch-size", type=int, default=32, help="HF micro-batch size")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (after --)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    from dualtune.data.sources import limit_samples, load_domain
    from dualtune.models.base import resolve_model_path

    cfg = compose(args.overrides)
    samples = limit_samples(load_domain(cfg.domain, cfg.cache_dir)["test"], args.per_subtask)
    model_path = resolve_model_path(cfg.model, cfg.cache_dir)
    print(f"model {model_path}; {len(samples)} prompts with images; M={args.m}; torch threads "
          f"{torch.get_num_threads()}; cpu cores {os.cpu_count()}")
    results = {b: run_backend(cfg, b, model_path, samples, args.m, args.batch_size) for b in ("hf", "vllm")}
    print(f"{'mode':<7}{'decoding':<10}{'HF tok':>9}{'HF s':>8}{'HF tok/s':>10}{'vLLM tok':>10}{'vLLM s':>8}"
          f"{'vLLM tok/s':>12}{'vLLM/HF':>9}")
    for mode, kind, _ in SETTINGS:
        (ht, hs), (vt, vs) = results["hf"][(mode, kind)], results["vllm"][(mode, kind)]
        print(f"{mode:<7}{kind:<10}{ht:>9}{hs:>8.2f}{ht / hs:>10.1f}{vt:>10}{vs:>8.2f}{vt / vs:>12.1f}"
              f"{(vt / vs) / (ht / hs):>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
