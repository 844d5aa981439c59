"""Bad configs and empty / all-invalid datasets stop a run before any work, naming the key or the split."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import compose

ROOT = Path(__file__).resolve().parents[1]


def test_train_cli_bad_lr_fails_before_loading_data(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cache = tmp_path / "cache"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "train.py", "algo.lr=abc", f"cache_dir={cache}",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    elapsed = time.monotonic() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "algo.lr='abc': expected a number > 0" in out
    assert "[stage] load data" not in out  # failed before the first stage
    assert not cache.exists() or not any(cache.iterdir())  # no lab data built, no base model built
    assert elapsed < 120, elapsed  # imports only (a few seconds on an idle machine)


def _row(i: int, question: str = "How many?") -> dict:
    return {"id": f"r{i}", "domain": "toy", "subtask": "count", "images": [], "video": [], "question": question,
            "options": [], "answer": "3", "answer_type": "number", "cot": "", "source": "test", "meta": "{}"}


def _dataset(path: Path, train: list[dict], test: list[dict]) -> Path:
    """A ``save_to_disk`` DatasetDict in the sample schema."""
    import datasets

    from dualtune.schema import FEATURES

    def split(rows):
        return datasets.Dataset.from_dict({k: [r[k] for r in rows] for k in FEATURES}, features=FEATURES)

    datasets.DatasetDict({"train": split(train), "test": split(test)}).save_to_disk(str(path))
    return path


def _hf_cfg(task: str, ds: Path, tmp_path: Path, *overrides):
    return compose(task, ["domain=hf", f"domain.hf.path={ds}", f"cache_dir={tmp_path / 'cache'}",
                          f"output_dir={tmp_path / 'out'}", *overrides])


@pytest.mark.parametrize("task", ["train", "score"])
def test_all_invalid_train_split_names_domain_split_and_count(tmp_path, task):
    ds = _dataset(tmp_path / "ds", [_row(i, question="") for i in range(3)], [_row(9)])  # empty questions
    if task == "train":
        from dualtune.recipes.train import train as run
    else:
        from dualtune.recipes.score import score as run
    with pytest.raises(ValueError, match=r"domain 'hf': the train split has no valid rows \(all 3 rows of .*\[train\] "
                                         r"are invalid"):
        run(_hf_cfg(task, ds, tmp_path))


def test_all_invalid_test_split_fails_for_evaluation_only(tmp_path):
    from dualtune.config_checks import require_data
    from dualtune.recipes.evaluate import evaluate
    from dualtune.recipes.train import train

    bad = [dict(_row(i), answer_type="essay") for i in range(2)]  # not an answer type
    ds = _dataset(tmp_path / "ds", [_row(0)], bad)
    with pytest.raises(ValueError, match=r"domain 'hf': the test split has no valid rows \(all 2 rows of .*\[test\] "
                                         r"are invalid.*\); nothing to evaluate"):
        evaluate(_hf_cfg("evaluate", ds, tmp_path))
    with pytest.raises(ValueError, match="the test split has no valid rows"):
        train(_hf_cfg("train", ds, tmp_path))  # eval.enabled: the report needs test items
    cfg = _hf_cfg("train", ds, tmp_path, "eval.enabled=false")
    data = {"train": [_row(0)], "test": []}
    assert require_data(cfg, data, "train") is data  # without evaluation an empty test split is fine


def test_empty_lab_split_names_the_settings():
    from dualtune.config_checks import require_data

    cfg = compose("train", ["domain=math"])
    with pytest.raises(ValueError, match=r"domain 'math': the train split .* domain.n_train_per_subtask=64"):
        require_data(cfg, {"train": [], "test": [{"id": 1}]}, "train")


def test_saved_dataset_with_an_empty_split_is_named_not_an_index_error(tmp_path):
    from dualtune.recipes.evaluate import evaluate

    ds = _dataset(tmp_path / "ds", [_row(0)], [])  # datasets itself cannot load_from_disk an empty split
    with pytest.raises(ValueError, match=r"domain 'hf': the test split has no valid rows.*nothing to evaluate"):
        evaluate(_hf_cfg("evaluate", ds, tmp_path))


def test_invalid_row_count_comes_from_load_domain_skips_not_a_reload(tmp_path):
    from dualtune.config_checks import require_data

    cfg = _hf_cfg("evaluate", tmp_path / "gone", tmp_path)  # the dataset is not re-opened on the error path
    skipped = {"test": [{"id": "r0", "reason": "bad"}, {"id": "r1", "reason": "bad"}]}
    with pytest.raises(ValueError, match=r"the test split has no valid rows \(all 2 rows of .*gone\[test\] are "
                                         r"invalid"):
        require_data(cfg, {"train": [], "test": []}, "evaluate", skipped)
    with pytest.raises(ValueError, match=r"\(.*gone\[test\] is empty\)"):
        require_data(cfg, {"test": []}, "evaluate", {})
