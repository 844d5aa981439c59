#!/usr/bin/env bash
# The paper's preliminary grid (Tables 1-2, E1-E8 pattern): per domain, DA-only (S), CoT-only (L) and
# joint Dual Tuning (SL), each evaluated in both modes (Eval-S / Eval-L). Extra args pass through to Hydra,
# e.g. `bash sweeps/dual_tuning_e1_e8.sh model=qwen2_5_vl_3b trainer=gpu logger=wandb`.
set -euo pipefail
cd "$(dirname "$0")/.."
python train.py -m domain=spatial,math,multidiscipline mode=direct,cot,dual "$@"
