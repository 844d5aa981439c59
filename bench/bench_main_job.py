"""Time the main job (`python train.py` with the defaults) and print per-stage wall times.

    python bench/bench_main_job.py                 # uses $DUALTUNE_CACHE (base model/lab reused if cached)
    python bench/bench_main_job.py --fresh-cache   # also times building the tiny base model and the lab
    python bench/bench_main_job.py -- domain=math  # extra Hydra overrides after `--`
    python bench/bench_main_job.py --json out.json seed=3   # also write the timings and regions as JSON

Target (issue 3): the whole main job <= 10 min on 2 CPU cores, tiny base model already cached.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def base_build_stats(run_dir: Path, cache_dir: Path) -> dict | None:
    """Build time and steps of the tiny base model that the run in ``run_dir`` used (None for other models);
    ``cache_dir`` is the run's ``$DUALTUNE_CACHE`` (the saved config holds the unresolved interpolation)."""
    from omegaconf import OmegaConf

    from dualtune.models.base import tiny_base_dir

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    if cfg.model.get("path") or "tiny" not in cfg.model:
        return None
    base = tiny_base_dir(cfg.model, cache_dir)
    stats = base / "dualtune_pretrain.json"
    return {**json.loads(stats.read_text()), "dir": base.name} if stats.is_file() else None


def main(argv=None) -> int:
    """Run train.py in a subprocess, then print its stage timings, the base-model build time and the total."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh-cache", action="store_true", help="build the tiny base + lab in a new cache dir")
    parser.add_argument("--json", type=Path, help="also write wall time, stage times and regions here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for train.py")
    args = parser.parse_args(argv)
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE=os.environ.get("WANDB_MODE", "disabled"))
    if args.fresh_cache:
        env["DUALTUNE_CACHE"] = tempfile.mkdtemp(prefix="dualtune-bench-cache-")
    run_dir = Path(tempfile.mkdtemp(prefix="dualtune-bench-run-"))
    cmd = [sys.executable, str(ROOT / "train.py"), f"hydra.run.dir={run_dir}", *args.overrides]
    print("running:", " ".join(cmd), flush=True)
    load_before = os.getloadavg()  # other work on the machine inflates the timings
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    total = time.perf_counter() - start
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        return proc.returncode
    timings = json.loads((run_dir / "timings.json").read_text())
    print(f"cpu cores: {os.cpu_count()}  torch threads: {os.environ.get('OMP_NUM_THREADS', 'default')}  "
          f"load avg (1/5/15 min) before: {load_before}, after: {os.getloadavg()}")
    for stage, secs in timings.items():
        print(f"  {stage:<40s} {secs:8.1f} s")
    stats = base_build_stats(run_dir, Path(env.get("DUALTUNE_CACHE", Path.home() / ".cache/dualtune")))
    if stats:
        print(f"  tiny base build (cached, once): {stats['build_seconds']:.1f} s, {stats['steps']} steps "
              f"({stats['dir']})")
    print(f"main job total wall time: {total:.1f} s (target <= 600 s); outputs in {run_dir}")
    report = json.loads((run_dir / "thinking_boundary.json").read_text())
    from dualtune.boundary import recovered_regions

    hits = [r for r in report["subtasks"] if r.get("planted_region")]
    ok, _ = recovered_regions(hits) or (0, 0)
    print(f"planted regions recovered: {ok}/{len(hits)}")
    for r in hits:
        if r["region"] != r["planted_region"]:
            print(f"  missed: {r['subtask']} planted {r['planted_region']}, landed {r['region']}"
                  f"{'?' if r['uncertain'] else ''} (GAP_DT {r['GAP_DT']:.2f})")
    if args.json:
        regions = {r["subtask"]: {k: r[k] for k in ("region", "uncertain", "planted_region", "n", "DT_S", "DT_L",
                                                    "GAP_DT", "Gain_DA", "Gain_CoT")} for r in hits}
        args.json.write_text(json.dumps({"command": cmd, "wall_s": round(total, 1), "stages": timings,
                                         "load_before": load_before, "load_after": os.getloadavg(),
                                         "recovered": [ok, len(hits)], "subtasks": regions}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
