#!/usr/bin/env bash
# SFT on RAP-selected data vs a random subset of the same size vs the full training split (issue 4),
# one lab domain, the main job's recipe (mode=dual, 4 epochs) and, second, the same number of optimizer
# steps as the full run. Every run evaluates base and tuned model in both modes.
#   bash sweeps/rap_vs_random.sh [domain] [out dir]      # defaults: multidiscipline, outputs/rap_vs_random
set -euo pipefail
cd "$(dirname "$0")/.."
DOMAIN="${1:-multidiscipline}"
OUT="${2:-outputs/rap_vs_random/$DOMAIN}"

python score.py selection=rap domain="$DOMAIN" output_dir="$OUT/score"
K=$(python -c "import json,sys; print(json.load(open(sys.argv[1]))['n_kept'])" "$OUT/score/selection.json")
python train.py domain="$DOMAIN" selection=full output_dir="$OUT/full"
python train.py domain="$DOMAIN" selection=rap output_dir="$OUT/rap"
python train.py domain="$DOMAIN" selection=random selection.budget="$K" output_dir="$OUT/random"
STEPS=$(python -c "from dualtune.scoring.compare import optimizer_steps as s; print(s('$OUT/full'))")
python train.py domain="$DOMAIN" selection=rap algo.max_steps="$STEPS" output_dir="$OUT/rap_steps"
python train.py domain="$DOMAIN" selection=random selection.budget="$K" algo.max_steps="$STEPS" \
  output_dir="$OUT/random_steps"
python -m dualtune.scoring.compare full="$OUT/full" rap="$OUT/rap" random="$OUT/random" \
  "rap (full's steps)"="$OUT/rap_steps" "random (full's steps)"="$OUT/random_steps" | tee "$OUT/comparison.md"
