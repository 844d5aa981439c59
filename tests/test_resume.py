"""Interrupted training resumes for real: kill -9 / SIGTERM of a `python train.py` subprocess mid-run, then
``hydra.run.dir=<same dir> ckpt_path=last``; the data order, step count and GRPO reward curve continue as in an
uninterrupted run; checkpoints are written atomically."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from dualtune.data.datamodule import ResumableDataLoader
from dualtune.training.checkpointing import read_batch_log
from tests.conftest import TEST_MODEL_OVERRIDES, compose

ROOT = Path(__file__).resolve().parents[1]
# 4 spatial subtasks x 4 train items: SFT dual = 32 examples -> 32 steps/epoch at batch 1; GRPO 16 prompts.
DATA = ["domain=spatial", "domain.n_train_per_subtask=4", "domain.n_test_per_subtask=1", "eval.enabled=false",
        "logger=csv", "trainer.log_batch_ids=true", "mode.max_new_tokens={direct: 4, cot: 8}"]
SFT = [*DATA, "algo.epochs=3", "algo.batch_size=1", "trainer.checkpoint_every_n_steps=5"]  # 96 steps
SFT_STEPS, SFT_EPOCH = 96, 32
GRPO = [*DATA, "algo=grpo", "mode=direct", "algo.num_generations=2", "algo.batch_size=2", "algo.max_steps=40",
        "trainer.checkpoint_every_n_steps=3"]  # 8 rollout steps per pass over the prompts


# ----- helpers ----------------------------------------------------------------------------------
def train_in_process(cache_dir, out, *overrides):
    """`dualtune.recipes.train.train` on a composed config writing into ``out``."""
    from dualtune.recipes.train import train

    return train(compose("train", [f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES, f"output_dir={out}", *overrides]))


def train_cmd(cache_dir, run_dir, *overrides) -> list[str]:
    """``python train.py`` with the test model, writing into ``run_dir`` (Hydra's run dir)."""
    return [sys.executable, str(ROOT / "train.py"), f"cache_dir={cache_dir}", *TEST_MODEL_OVERRIDES,
            f"hydra.run.dir={run_dir}", *overrides]


def env() -> dict:
    """The subprocess environment: offline, no W&B, one thread."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def complete_steps(path: Path) -> int:
    """Complete lines of a batch log being written by another process."""
    return path.read_text().count("\n") if path.exists() else 0


def interrupt_at(cmd, run_dir: Path, step: int, sig) -> tuple[int, str]:
    """Start ``cmd``, send ``sig`` once its batch log shows ``step`` steps; return (exit status, output)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = run_dir / "batch_ids.jsonl"
    deadline = time.monotonic() + 300
    while complete_steps(log) < step:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"run ended or stalled before step {step}:\n{proc.communicate()[0][-3000:]}")
        time.sleep(0.01)
    proc.send_signal(sig)
    out = proc.communicate(timeout=300)[0]
    return proc.returncode, out


def run_to_end(cmd) -> str:
    """Run ``cmd`` to completion (must succeed); return its output."""
    done = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout + done.stderr


def ckpt_step(run_dir: Path) -> int:
    """``global_step`` of the run's last.ckpt."""
    return int(torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"])


def ids_per_step(run_dir: Path) -> list[list[str]]:
    """Sample ids of each step from the run's batch log (steps must be 1..n, once each)."""
    rows = read_batch_log(run_dir / "batch_ids.jsonl")
    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    return [r["ids"] for r in rows]


@pytest.fixture(scope="module")
def sft_reference(cache_dir, tiny_model_path, tmp_path_factory) -> list[list[str]]:
    """Sample ids per step of an uninterrupted SFT run."""
    out = tmp_path_factory.mktemp("sft_ref")
    train_in_process(cache_dir, out, *SFT)
    ids = ids_per_step(out)
    assert len(ids) == SFT_STEPS and ids[:SFT_EPOCH] != ids[SFT_EPOCH:2 * SFT_EPOCH]  # epochs are reshuffled
    return ids


# ----- data order ---------------------------------------------------------------------------------
class Recorder(L.LightningModule):
    """Records the batches it trains on (a Linear layer so there is something to optimise)."""

    def __init__(self, width: int = 1):
        super().__init__()
        self.layer, self.seen = torch.nn.Linear(width, 1), []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch.tolist())
        return self.layer(batch.float().reshape(len(batch), -1)).sum()

    def configure_optimizers(self):
        _ = self.trainer.estimated_stepping_batches  # as SFTModule / GRPOModule do
        return torch.optim.SGD(self.parameters(), lr=0.0)


def fit_order(loader, **limits) -> list[int]:
    """The indices a Lightning fit over ``loader`` trains on, in order."""
    module = Recorder()
    L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
              **limits).fit(module, loader)
    return [i for batch in module.seen for i in batch]


@pytest.mark.parametrize("n,batch_size", [(10, 3), (12, 3)])
def test_resumable_loader_keeps_the_shuffled_order_runs_had(n, batch_size):
    # The resumable loader trains the same order per epoch as the former DataLoader(shuffle, seeded generator).
    for limits in ({"max_epochs": 3}, {"max_epochs": -1, "max_steps": 9}):
        seeded = torch.Generator().manual_seed(5)
        plain = DataLoader(list(range(n)), batch_size=batch_size, shuffle=True, generator=seeded)
        resumable = ResumableDataLoader(list(range(n)), batch_size=batch_size, seed=5)
        order = fit_order(resumable, **limits)
        assert order == fit_order(plain, **limits)
        assert sorted(order[:n]) == list(range(n)) and order[:n] != order[n:2 * n]


def test_loader_state_resumes_the_same_epoch_only():
    loader = ResumableDataLoader(list(range(10)), batch_size=3, seed=1)
    loader.sampler.set_epoch(1)
    full = [b.tolist() for b in loader]
    it = iter(loader)
    first = [next(it).tolist() for _ in range(2)]
    state = loader.state_dict()
    assert state == {"epoch": 1, "batches": 2} and first == full[:2]
    again = ResumableDataLoader(list(range(10)), batch_size=3, seed=1)
    again.load_state_dict(state)
    again.sampler.set_epoch(1)
    assert [b.tolist() for b in again] == full[2:] and again.state_dict() == {"epoch": 1, "batches": 4}
    again.load_state_dict(state)  # a position saved in epoch 1 does not apply to epoch 2
    again.sampler.set_epoch(2)
    assert len([b for b in again]) == 4


# ----- SFT: kill -9 and SIGTERM ---------------------------------------------------------------------
def test_sft_killed_mid_run_resumes_at_checkpoint_with_same_data(cache_dir, sft_reference, tmp_path):
    run = tmp_path / "run"
    cmd = train_cmd(cache_dir, run, *SFT)
    status, _ = interrupt_at(cmd, run, SFT_EPOCH + 10, signal.SIGKILL)  # second epoch, past a checkpoint
    assert status == -signal.SIGKILL
    step = ckpt_step(run)
    assert SFT_EPOCH < step < SFT_STEPS and step % 5 == 0  # a periodic checkpoint mid-epoch, not an epoch end
    assert not (run / "model").exists()
    out = run_to_end(cmd + ["ckpt_path=last"])
    assert f"resumed at step {step} " in out
    assert ids_per_step(run) == sft_reference  # steps 1..96 once each, the uninterrupted run's samples
    assert ckpt_step(run) == SFT_STEPS and (run / "model" / "config.json").exists()


def test_sft_sigterm_saves_checkpoint_and_exits_143(cache_dir, sft_reference, tmp_path):
    run = tmp_path / "run"
    status, out = interrupt_at(train_cmd(cache_dir, run, *SFT), run, 12, signal.SIGTERM)
    assert status == 143, out[-3000:]
    step = ckpt_step(run)
    assert f"SIGTERM: training stopped at step {step}; resumable checkpoint" in out
    assert step == len(read_batch_log(run / "batch_ids.jsonl")) and 12 <= step < SFT_STEPS
    assert not (run / "model").exists() and not (run / "checkpoints" / "last.ckpt.tmp").exists()
    train_in_process(cache_dir, run, *SFT, "ckpt_path=last")
    assert ids_per_step(run) == sft_reference and ckpt_step(run) == SFT_STEPS


# ----- GRPO: kill -9 -------------------------------------------------------------------------------
def test_grpo_killed_mid_run_resumes_same_prompts_and_whole_curve(cache_dir, tiny_model_path, tmp_path):
    reference = tmp_path / "reference"
    train_in_process(cache_dir, reference, *GRPO)
    expected = ids_per_step(reference)
    run = tmp_path / "run"
    cmd = train_cmd(cache_dir, run, *GRPO)
    status, _ = interrupt_at(cmd, run, 11, signal.SIGKILL)  # checkpoint at 9: one step into the second pass
    assert status == -signal.SIGKILL
    step = ckpt_step(run)
    assert 8 < step < 40 and step % 3 == 0
    out = run_to_end(cmd + ["ckpt_path=last"])
    assert f"resumed at step {step} " in out
    assert ids_per_step(run) == expected and len(expected) == 40
    with (run / "reward_curve.csv").open() as fh:
        steps = [int(line.split(",")[0]) for line in fh.read().splitlines()[1:]]
    assert steps == list(range(1, 41))


# ----- atomic checkpoint writes -----------------------------------------------------------------------
def _fitted_trainer(tmp_path):
    """A trainer from `build_trainer` (the recipes' trainer) after two steps of a small model."""
    from dualtune.recipes.sft import build_trainer

    cfg = compose("train", ["logger=none", "algo.max_steps=2", "trainer.checkpoint_every_n_steps=1"])
    trainer = build_trainer(cfg, tmp_path)
    trainer.fit(Recorder(width=256), DataLoader(torch.randn(8, 256), batch_size=2))
    return trainer, tmp_path / "checkpoints" / "last.ckpt"


def test_failed_checkpoint_write_leaves_the_previous_one_intact(tmp_path):
    resource = pytest.importorskip("resource")
    trainer, last = _fitted_trainer(tmp_path)
    before = last.read_bytes()
    # A full disk: files may not grow past half a checkpoint (EFBIG instead of ENOSPC; same partial write).
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2, hard))
    try:
        with pytest.raises(OSError):
            trainer.save_checkpoint(last)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert last.read_bytes() == before and not last.with_name("last.ckpt.tmp").exists()
    assert torch.load(last, weights_only=False)["global_step"] == 2


def test_checkpoint_is_written_beside_its_target_not_in_the_system_temp_dir(tmp_path, monkeypatch):
    # Lightning's own writer stages the file in the system temp dir and moves it: across filesystems that move
    # copies into last.ckpt in place (a full disk truncates it), and it needs temp space as large as the model.
    import tempfile

    trainer, last = _fitted_trainer(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))
    trainer.save_checkpoint(last)
    assert torch.load(last, weights_only=False)["global_step"] == 2


def test_checkpoint_write_that_raises_midway_keeps_previous(tmp_path, monkeypatch):
    trainer, last = _fitted_trainer(tmp_path)
    before = last.read_bytes()
    real_save = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        import io

        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        trainer.save_checkpoint(last)
    monkeypatch.undo()
    assert last.read_bytes() == before and torch.load(last, weights_only=False)["global_step"] == 2
    assert [p.name for p in last.parent.iterdir()] == ["last.ckpt"]  # no temp file left behind
