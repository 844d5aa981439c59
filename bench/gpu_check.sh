#!/usr/bin/env bash
# The GPU check of issue 11 in one short run (`timeout` stops it at 8 minutes; not yet run on a GPU):
# SFT tokens/s + MFU, GRPO step split, evaluation throughput and peak memory per stage, on a
# Qwen2.5-VL-3B-architecture model with random bf16 weights. No network, HF backend only.
#   bash bench/gpu_check.sh [bench_gpu.py options]     # e.g. --sft-batch 4 if memory is short
# Results: $OUT/bench_gpu.json (or outputs/gpu_check/ without $OUT), the log and nvidia-smi's view next to it.
# Python: $PYTHON, else .venv/bin/python, else python (needs requirements.txt installed).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
DEST=${OUT:-outputs/gpu_check}
mkdir -p "$DEST"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$DEST/nvidia_smi.csv" 2>&1 || true
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
timeout 480 "$PY" bench/bench_gpu.py --out "$DEST/bench_gpu.json" "$@" 2>&1 | tee "$DEST/bench_gpu.log"
