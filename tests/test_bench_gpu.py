"""bench/bench_gpu.py (the GPU check behind bench/gpu_check.sh): its --smoke mode runs every stage on CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mfu_is_six_n_tokens_over_peak():
    # 6 * 1e9 params * 1e4 tokens/s = 6e13 FLOP/s of a 100 TFLOP/s peak = 0.6
    assert abs(_bench().mfu(1_000_000_000, 10_000.0, 100.0) - 0.6) < 1e-12


def test_gpu_config_is_the_published_qwen2_5_vl_3b():
    config = _bench().QWEN25_VL_3B
    assert {k: config["text"][k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                           "num_key_value_heads", "intermediate_size", "vocab_size")} == {
        "hidden_size": 2048, "num_hidden_layers": 36, "num_attention_heads": 16, "num_key_value_heads": 2,
        "intermediate_size": 11008, "vocab_size": 151936}
    assert config["vision"]["depth"] == 32 and config["vision"]["out_hidden_size"] == 2048


def test_smoke_run_measures_every_stage(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_gpu.py"), "--smoke", "--out",
                           str(tmp_path / "gpu.json")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    sft, grpo, evals = (result["stages"][k] for k in ("sft", "grpo", "eval"))
    assert sft["steps"] == 2 and sft["tokens_per_s"] > 0 and 0 < sft["mfu"] < 1
    assert abs(sft["mfu"] - 6 * result["params"] * sft["tokens_per_s"] / 989e12) < 1e-12
    split = grpo["seconds"]
    for key in ("generation", "reward", "logprob", "backward", "optimizer"):
        assert split[key] > 0, key  # every timer fired inside the real GRPO step
    assert abs(sum(v for k, v in split.items() if k != "total") - split["total"]) < 1e-9
    assert set(evals) == {"direct", "cot"} and all(v["tokens_per_s"] > 0 for v in evals.values())
    assert set(result["stage_usage"]) == {"sft", "grpo", "eval"}
    assert "MFU = 6 * N * tokens/s" in proc.stdout and "generation" in proc.stdout
