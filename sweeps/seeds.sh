#!/usr/bin/env bash
# The main job over 3 seeds, to see how stable each subtask's region is (the paper reports one run).
set -euo pipefail
cd "$(dirname "$0")/.."
python train.py -m seed=0,1,2 "$@"
