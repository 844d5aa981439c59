#!/usr/bin/env bash
# SFT on RAP-selected data vs a random subset of the same size vs the full training split (issue 4),
# one lab domain, the main job's recipe (mode=dual, 4 epochs) and, second, the same number of optimizer
# steps as the full run. RAP runs twice: with its defaults (DRM swaps as many samples as it removes) and
# with DRM's k raised so that RAP keeps 10 % of the split (the paper's budget); each RAP selection gets a
# random control of the same size. Every run evaluates base and tuned model in both modes.
#   bash sweeps/rap_vs_random.sh [domain] [out dir]      # defaults: multidiscipline, outputs/rap_vs_random
set -euo pipefail
cd "$(dirname "$0")/.."
DOMAIN="${1:-multidiscipline}"
OUT="${2:-outputs/rap_vs_random/$DOMAIN}"
field() { python -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, d))" "$@"; }

python score.py selection=rap domain="$DOMAIN" output_dir="$OUT/score"
K=$(field "$OUT/score/selection.json" "n_kept")
# DRM k that brings the kept set to 10 %: the target minus what CDE/ACE kept (net of DRM's easy removals).
K10=$(field "$OUT/score/selection.json" \
  "max(0, round(0.1 * n_total) - n_kept + counts_by_reason.get('added_drm', 0))")
python train.py domain="$DOMAIN" selection=full output_dir="$OUT/full"
STEPS=$(python -c "from dualtune.scoring.compare import optimizer_steps as s; print(s('$OUT/full'))")
for steps in -1 "$STEPS"; do
  tag=$([ "$steps" = -1 ] && echo epochs || echo steps)
  python train.py domain="$DOMAIN" selection=rap algo.max_steps="$steps" output_dir="$OUT/rap_$tag"
  python train.py domain="$DOMAIN" selection=random selection.budget="$K" algo.max_steps="$steps" \
    output_dir="$OUT/random_$tag"
  python train.py domain="$DOMAIN" selection=rap selection.drm.k="$K10" algo.max_steps="$steps" \
    output_dir="$OUT/rap10_$tag"
  K10_KEPT=$(field "$OUT/rap10_$tag/selection.json" "n_kept")
  python train.py domain="$DOMAIN" selection=random selection.budget="$K10_KEPT" algo.max_steps="$steps" \
    output_dir="$OUT/random10_$tag"
done
python -m dualtune.scoring.compare full="$OUT/full" \
  "rap"="$OUT/rap_epochs" "random"="$OUT/random_epochs" "rap, 10 %"="$OUT/rap10_epochs" \
  "random, 10 %"="$OUT/random10_epochs" "rap (full's steps)"="$OUT/rap_steps" \
  "random (full's steps)"="$OUT/random_steps" "rap, 10 % (full's steps)"="$OUT/rap10_steps" \
  "random, 10 % (full's steps)"="$OUT/random10_steps" | tee "$OUT/comparison.md"
