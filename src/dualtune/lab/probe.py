"""Perception probe: which content readouts does a (tiny) model really do?

    python -m dualtune.lab.probe ~/.cache/dualtune/models/tiny-<hash> [--n 32] [--seed 7]

Three probes in direct mode, ``n`` items each, all in the generic mixture's own wording:

- ``total``: "What is the total number of objects in the picture?" (1..9 shapes);
- ``color_fixed``: "Count the red objects in the picture." with exactly 3 shapes of other colors, as in
  the generic mixture (there the total minus 3 gives the answer away);
- ``color_varied``: the same question with 0..5 shapes of other colors, so only the color can give it;
- ``clip``: "Watch the clip. How many red objects does it show across its frames?" on 4 frames that each
  hold one red shape or nothing (so the answer is simply the number of shapes in the clip).

For each probe it prints the accuracy and the share of answers equal to ``total - distractors``. A model
that counts one color among others scores about the same on both color probes; one that counts every shape
and subtracts the usual number of distractors scores well on ``color_fixed`` only (lab v10 diagnosis,
README "color_product").
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict

from dualtune.lab.draw import COLOR_NAMES, FRAME_COLS, FRAME_ROWS, all_cells, random_scene, render_clip, render_grid
from dualtune.lab.generic import count_all_words, count_color_words

PROBES = ("total", "color_fixed", "color_varied", "clip")


def probe_samples(n: int, seed: int = 7) -> list[dict]:
    """``n`` samples per probe (ids ``<probe>-<i>``); ``meta`` holds ``total`` and ``distractors``."""
    rng = random.Random(seed)
    rows = []
    for i in range(n * len(PROBES)):
        kind = PROBES[i % len(PROBES)]
        color = rng.choice(COLOR_NAMES)
        question = count_color_words(color, [])[0]
        images, video = [], []
        if kind == "clip":
            frames = [random_scene(rng, rng.randint(0, 1), colors=[color], cells=all_cells(FRAME_ROWS, FRAME_COLS))
                      for _ in range(4)]
            answer = total = sum(len(f) for f in frames)
            distractors, video = 0, render_clip(frames)
            question = f"Watch the clip. How many {color} objects does it show across its frames?"
        else:
            count = rng.randint(1, 4) if kind == "total" else rng.randint(0, 4)
            distractors = 3 if kind == "color_fixed" else rng.randint(0, 5)
            scene = random_scene(rng, count, colors=[color])
            scene = random_scene(rng, distractors, colors=[c for c in COLOR_NAMES if c != color], scene=scene)
            images, total, answer = [render_grid(scene)], len(scene), count
            if kind == "total":
                question, answer = count_all_words(total)[0], total
        rows.append({"id": f"{kind}-{i}", "domain": "probe", "subtask": kind, "images": images, "video": video,
                     "question": question, "options": [], "answer": str(answer), "answer_type": "number",
                     "cot": "", "meta": json.dumps({"total": total, "distractors": distractors})})
    return rows


def summarize(samples: list[dict], records: list[dict]) -> dict:
    """Per probe: ``accuracy`` and, for the color probes, ``total_minus_distractors`` (the share of answers
    equal to all shapes minus the distractors: the shortcut's answer)."""
    by_kind: dict[str, list] = defaultdict(list)
    for sample, record in zip(samples, records):
        m = json.loads(sample["meta"])
        by_kind[sample["subtask"]].append((float(record["score"]),
                                           record["extracted"] == str(m["total"] - m["distractors"])))
    return {kind: {"n": len(v), "accuracy": sum(a for a, _ in v) / len(v),
                   "total_minus_distractors": None if kind in ("total", "clip") else sum(s for _, s in v) / len(v)}
            for kind, v in by_kind.items()}


def main(argv=None) -> dict:
    """Evaluate the probes on a model dir (greedy, direct mode) and print the summary as JSON."""
    from omegaconf import OmegaConf

    from dualtune.evaluation.runner import evaluate_model
    from dualtune.models.loading import load_model, load_processor

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model dir (e.g. the cached tiny base or <run dir>/model)")
    parser.add_argument("--n", type=int, default=32, help="items per probe")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    samples = probe_samples(args.n, args.seed)
    processor = load_processor(args.model, 12544, 784)
    model = load_model(args.model, OmegaConf.create({"dtype": "float32", "attn_implementation": "sdpa"}),
                       for_training=False)
    result = evaluate_model(model, processor, samples, modes=["direct"], batch_size=32, progress=False)
    summary = summarize(samples, result.records)
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
