"""Loading at scale: peak memory and speed of `load_domain` for 1k vs 50k rows of 448x448 images.

    python bench/bench_loading.py                        # 1,000 and 50,000 rows, both sources (a few minutes)
    python bench/bench_loading.py --sizes 1000 5000 --sources hf

Target (issue 10, "Scale"): peak RSS grows by < 10 % from 1k to 50k rows (before: every image was decoded and
kept, +2.7 GB per 3,000 rows of 448x448 images).

For each source and size it writes a dataset of N generated rows, then measures, in a fresh subprocess:
importing the loader and the SFT data code (torch, lightning), `load_domain` (reading, the adapter for the
published source, validation: every image decoded once) and one pass over every row's text (`limit_samples`,
the SFT examples index `expand_modes` in dual mode, each example's prompt and target text), plus decoding the
images of one batch of 16 rows, as training would. Peak RSS is the process's ``VmHWM``.

Sources: ``hf`` = a ``save_to_disk`` dataset in the sample schema (``domain=hf``); ``published`` = a
ThinkLite-VL-70k snapshot as published (parquet shards with id, problem, answer, image, choices;
``domain=thinklite_vl``), converted by ``load_dataset`` into its Arrow cache once, in a process of its own (its
peak is printed apart), so the measurement is the load every later run does (the adapter, validation, ...).
Images: 64 distinct 448x448 PNGs (a background and four solid rectangles each, seeded), used in turn, so
generating 50k rows takes seconds; every row stores its own copy of the PNG bytes (~1.7 KB each, a solid-colour
PNG compresses well; decoding one costs what any 448x448 PNG costs).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIDE, POOL, BATCH = 448, 64, 16


def png_pool(n: int = POOL, seed: int = 0) -> list[bytes]:
    """``n`` distinct 448x448 PNGs: a background colour and four solid rectangles, seeded."""
    from PIL import Image, ImageDraw

    rng, pool = random.Random(seed), []
    for _ in range(n):
        img = Image.new("RGB", (SIDE, SIDE), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        for _ in range(4):
            x, y = rng.randrange(SIDE - 64), rng.randrange(SIDE - 64)
            draw.rectangle([x, y, x + rng.randrange(32, SIDE - x), y + rng.randrange(32, SIDE - y)],
                           fill=tuple(rng.randrange(256) for _ in range(3)))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        pool.append(buf.getvalue())
    return pool


def schema_rows(n: int, pool: list[bytes], prefix: str = "train"):
    """``n`` rows in the sample schema (one image each, lab-like text lengths)."""
    for i in range(n):
        count = i % 13
        yield {"id": f"{prefix}/{i:06d}", "domain": "bench", "subtask": f"task{i % 8}",
               "images": [{"bytes": pool[i % len(pool)], "path": None}], "video": [],
               "question": f"How many red squares are in the grid? Count every square once. (item {i})",
               "options": [], "answer": str(count), "answer_type": "number",
               "cot": f"Row one has {count // 2} red squares and row two has {count - count // 2}, "
                      f"so there are {count // 2} + {count - count // 2} = {count}.",
               "source": "bench", "meta": json.dumps({"item": i})}


def write_hf(path: Path, n: int, pool: list[bytes], work: Path) -> None:
    """A ``save_to_disk`` DatasetDict: ``n`` train rows and 32 test rows."""
    from datasets import Dataset, DatasetDict

    from dualtune.schema import FEATURES

    def rows(split: str, k: int):  # no list in gen_kwargs: datasets would shard the generator over it
        return lambda: schema_rows(k, pool, split)

    splits = {split: Dataset.from_generator(rows(split, k), features=FEATURES, cache_dir=str(work / "gen"))
              for split, k in (("train", n), ("test", 32))}
    DatasetDict(splits).save_to_disk(str(path))


def write_published(path: Path, n: int, pool: list[bytes], work: Path) -> None:
    """A ThinkLite-VL-70k snapshot: ``data/train-0000k-of-0000m.parquet`` shards of 10,000 rows + README.md."""
    from datasets import Dataset, Features, Image, Sequence, Value

    features = Features({"id": Value("string"), "problem": Value("string"), "answer": Value("string"),
                         "image": Image(), "choices": Sequence(Value("string"))})

    def rows():
        for row in schema_rows(n, pool):
            yield {"id": row["id"], "problem": "<image>" + row["question"], "answer": row["answer"],
                   "image": row["images"][0], "choices": None}

    ds = Dataset.from_generator(rows, features=features, cache_dir=str(work / "gen"))
    (path / "data").mkdir(parents=True)
    shards = max(1, -(-n // 10_000))
    for k in range(shards):
        ds.shard(shards, k, contiguous=True).to_parquet(str(path / "data" / f"train-{k:05d}-of-{shards:05d}.parquet"))
    (path / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                    "    path: data/train-*.parquet\n---\n")


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB: ``VmRSS`` and ``VmHWM`` of /proc/self/status (the peak
    of this program; ``ru_maxrss`` would also count the parent's RSS at fork, carried over ``exec``)."""
    status = Path("/proc/self/status").read_text()
    return tuple(int(status.split(f"{key}:")[1].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))


def convert(path: str) -> dict:
    """``load_dataset``'s one-time parquet -> Arrow conversion of a published snapshot (run in a fresh
    process before the measurement, which then reads the Arrow cache as every later run does)."""
    import datasets

    imports = rss_mb()[0]
    datasets.load_dataset(path, split="train")
    return {"rss_imports_mb": imports, "peak_mb": rss_mb()[1]}


def measure(source: str, path: str, n: int) -> dict:
    """The measurement (run in a fresh process): see the module docstring."""
    start = time.perf_counter()
    from omegaconf import open_dict

    from dualtune.data.benchmarks import domain_config
    from dualtune.data.datamodule import expand_modes
    from dualtune.data.sources import limit_samples, load_domain
    from dualtune.prompting.templates import prompt_text, target_text
    from dualtune.schema import decode_image

    imports_s, (rss_imports, _) = time.perf_counter() - start, rss_mb()
    cfg = domain_config("hf" if source == "hf" else "thinklite_vl", None if source == "hf" else path)
    if source == "hf":
        with open_dict(cfg):
            cfg.hf.path = path
    start = time.perf_counter()
    data = load_domain(cfg, Path(path).parent / "cache")
    load_s = time.perf_counter() - start
    rows = data["train"]
    start = time.perf_counter()
    samples, modes = expand_modes(limit_samples(rows, 10**9), "dual")
    chars = sum(len(prompt_text(s, m)) + len(target_text(s, m)) for s, m in zip(samples, modes))
    pixels = sum(decode_image(img).size[0] for row in rows[:BATCH] for img in row["images"])
    pass_s = time.perf_counter() - start
    rss_end, peak = rss_mb()
    return {"source": source, "n": n, "kept": len(rows), "examples": len(samples), "chars": chars,
            "batch_pixels_ok": pixels == BATCH * SIDE, "image_type": type(rows[0]["images"][0]).__name__,
            "imports_s": imports_s, "load_s": load_s, "pass_s": pass_s, "rss_imports_mb": rss_imports,
            "rss_end_mb": rss_end, "peak_mb": peak}


def run_one(source: str, n: int, work: Path, pool: list[bytes]) -> dict:
    """Write the dataset, then measure it in a fresh subprocess."""
    where = work / f"{source}-{n}"
    where.mkdir(parents=True)
    start = time.perf_counter()
    (write_hf if source == "hf" else write_published)(where / "data", n, pool, where)
    shutil.rmtree(where / "gen", ignore_errors=True)
    written = time.perf_counter() - start
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(where / "hf_cache"),
               HF_DATASETS_DISABLE_PROGRESS_BARS="1")

    def child(*args: str) -> dict:
        proc = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, cwd=ROOT)
        if proc.returncode:
            raise SystemExit(f"{args[0]} of {source} n={n} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    conversion = child("--convert", str(where / "data")) if source == "published" else None
    return {**child("--measure", source, str(where / "data"), str(n)), "write_s": written, "conversion": conversion}


def report(results: list[dict]) -> bool:
    """Print the figures side by side per source, with the target; True when every source meets it."""
    ok = True
    print(f"\n{'source':<10} {'rows':>7} {'kept':>7} {'load+validate s':>16} {'rows/s':>8} {'text pass s':>12} "
          f"{'RSS after imports MB':>21} {'peak RSS MB':>12} {'peak - imports MB':>18}")
    for r in results:
        print(f"{r['source']:<10} {r['n']:>7} {r['kept']:>7} {r['load_s']:>16.1f} {r['kept'] / r['load_s']:>8.0f} "
              f"{r['pass_s']:>12.1f} {r['rss_imports_mb']:>21.0f} {r['peak_mb']:>12.0f} "
              f"{r['peak_mb'] - r['rss_imports_mb']:>18.0f}")
    for source in dict.fromkeys(r["source"] for r in results):
        runs = sorted((r for r in results if r["source"] == source), key=lambda r: r["n"])
        small, large = runs[0], runs[-1]
        growth = 100 * (large["peak_mb"] / small["peak_mb"] - 1)
        per_row = (large["peak_mb"] - small["peak_mb"]) * 2**20 / max(1, large["n"] - small["n"])
        met = growth < 10 and all(r["image_type"] == "ImageRef" and r["batch_pixels_ok"] for r in runs)
        ok &= met
        print(f"{source}: peak RSS {small['n']:,} -> {large['n']:,} rows: {small['peak_mb']:.0f} -> "
              f"{large['peak_mb']:.0f} MB, +{growth:.1f} % ({per_row:,.0f} bytes per extra row; rows hold "
              f"{large['image_type']}s)  target < 10 %: {'met' if met else 'NOT met'}")
        if small["conversion"]:
            a, b = small["conversion"], large["conversion"]
            print(f"{source}: load_dataset's one-time parquet -> Arrow conversion (datasets' code, before the first "
                  f"load; not in the figures above): peak RSS {a['peak_mb']:.0f} -> {b['peak_mb']:.0f} MB "
                  f"(imports alone {a['rss_imports_mb']:.0f} MB)")
    return ok


def main(argv=None) -> int:
    """Generate, measure, report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 50_000])
    parser.add_argument("--sources", nargs="+", choices=["hf", "published"], default=["hf", "published"])
    parser.add_argument("--measure", nargs=3, metavar=("SOURCE", "PATH", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--convert", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure or args.convert:
        print(json.dumps(measure(args.measure[0], args.measure[1], int(args.measure[2])) if args.measure
                         else convert(args.convert)))
        return 0
    import datasets

    datasets.disable_progress_bars()
    start, pool = time.perf_counter(), png_pool()
    work = Path(tempfile.mkdtemp(prefix="dualtune-bench-loading-"))
    print(f"cpu cores: {os.cpu_count()}; images: {POOL} distinct {SIDE}x{SIDE} PNGs "
          f"(mean {sum(map(len, pool)) / len(pool):,.0f} bytes), one per row; work dir {work}", flush=True)
    results = []
    try:
        for source in args.sources:
            for n in sorted(args.sizes):
                results.append(run_one(source, n, work, pool))
                r = results[-1]
                print(f"  {source} n={n}: written in {r['write_s']:.1f}s, loaded in {r['load_s']:.1f}s, "
                      f"peak RSS {r['peak_mb']:.0f} MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = report(results)
    print(f"total wall time {time.perf_counter() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
