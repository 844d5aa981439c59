"""Saving a sharded (FSDP) model: the full state dict is gathered on every rank and rank 0 writes a model that
loads and equals the unsharded training result.

`python train.py trainer=fsdp trainer.accelerator=cpu` cannot run here: Lightning rejects FSDP without a GPU
(ValueError below) and torch's FSDP1, which Lightning's ``strategy=fsdp`` wraps, refuses CPU-only processes
("FSDP needs a non-CPU accelerator device"). So the helper runs in 2 spawned gloo processes on the tiny
Qwen2.5-VL sharded with ``fully_shard`` (FSDP2, which does run on CPU), through `save_trained_model` — the same
code the recipes call via `save_from_trainer`.
"""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import compose

ROOT = Path(__file__).resolve().parents[1]


def _model_cfg(lora: bool):
    cfg = OmegaConf.load(ROOT / "conf/model/tiny.yaml")
    cfg.lora.update(enabled=lora, r=4, alpha=8)
    return cfg


def _load(ckpt: str, lora: bool):
    """The policy as the recipes load it; seeded so every process draws the same LoRA init."""
    from dualtune.models.loading import load_model

    torch.manual_seed(0)
    return load_model(ckpt, _model_cfg(lora))


def _train_step(model) -> None:
    """One deterministic SGD step on a fixed text batch (same data on every rank)."""
    ids = torch.randint(3, 250, (2, 10), generator=torch.Generator().manual_seed(0))
    model(input_ids=ids, labels=ids).loss.backward()
    torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0).step()


class _Holder(torch.nn.Module):
    """Stands in for the LightningModule: the policy is its ``.model`` and the strategy wraps the holder."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, **inputs):
        return self.model(**inputs)


def _fsdp_worker(rank: int, port: int, ckpt: str, out: str) -> None:
    import os

    import torch.distributed as dist
    from torch.distributed.fsdp import FullyShardedDataParallel, fully_shard
    from torch.distributed.tensor import DTensor

    from dualtune.models.loading import load_model, load_processor
    from dualtune.training.saving import gather_full_state_dict, is_sharded, save_trained_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        with pytest.raises(RuntimeError, match="FSDP needs a non-CPU accelerator"):  # why Lightning's fsdp can't
            FullyShardedDataParallel(torch.nn.Linear(2, 2))
        for name, lora in (("full", False), ("lora", True)):  # full fine-tuning and a LoRA policy
            holder = _Holder(_load(ckpt, lora))
            blocks = set(getattr(holder.model, "_no_split_modules", None) or
                         holder.model.get_base_model()._no_split_modules)
            for module in list(holder.modules()):  # decoder layers / vision blocks, then the root (HF auto-wrap)
                if type(module).__name__ in blocks:
                    fully_shard(module)
            fully_shard(holder)
            assert is_sharded(holder)
            _train_step(holder)
            # A plain state_dict() holds per-rank shards: save_pretrained on rank 0 alone would be broken.
            assert any(isinstance(v, DTensor) for v in holder.model.state_dict().values())
            save_trained_model(holder.model, load_processor(ckpt), Path(out) / name / "model", root=holder,
                               rebuild=lambda: load_model(ckpt, _model_cfg(lora)), is_global_zero=rank == 0)
            gathered = gather_full_state_dict(holder, holder.model)
            if rank == 0:
                torch.save(gathered, Path(out) / name / "gathered.pt")
            else:
                assert gathered == {}  # cpu_offload: full tensors on rank 0 only
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lightning_fsdp_needs_a_gpu_so_the_cpu_end_to_end_run_is_impossible(tmp_path):
    from dualtune.recipes.sft import build_trainer

    cfg = compose("train", ["trainer=fsdp", "trainer.devices=2", "trainer.accelerator=cpu",
                            "trainer.precision=32-true"])
    with pytest.raises(ValueError, match="The strategy `fsdp` requires a GPU accelerator"):
        build_trainer(cfg, tmp_path)


def test_clean_name_and_prefix_drop_wrapper_parts():
    from dualtune.training.saving import clean_name, submodule_prefix

    assert clean_name("_fsdp_wrapped_module.model._checkpoint_wrapped_module.layers.0") == "model.layers.0"
    assert clean_name("_orig_mod.model") == "model"
    inner = torch.nn.Linear(2, 2)
    root = torch.nn.Module()
    root._fsdp_wrapped_module = _Holder(inner)  # the shape of FSDP1(LightningModule)
    assert submodule_prefix(root, inner) == "model."
    assert submodule_prefix(inner, inner) == ""
    with pytest.raises(ValueError, match="not a submodule"):
        submodule_prefix(inner, root)


def test_unsharded_model_is_saved_by_rank_zero_only(tmp_path, random_tiny_ckpt):
    from dualtune.models.loading import load_model, load_processor
    from dualtune.training.saving import is_sharded, save_trained_model

    model = load_model(random_tiny_ckpt, _model_cfg(False))
    assert not is_sharded(model)
    save_trained_model(model, load_processor(random_tiny_ckpt), tmp_path / "other", is_global_zero=False)
    assert not (tmp_path / "other").exists()
    save_trained_model(model, load_processor(random_tiny_ckpt), tmp_path / "zero")
    assert (tmp_path / "zero/config.json").exists()


def test_two_process_fsdp_save_equals_unsharded_training_and_evaluates(tmp_path, random_tiny_ckpt):
    from transformers import AutoModelForImageTextToText

    from dualtune.recipes.evaluate import run_eval

    torch.multiprocessing.spawn(_fsdp_worker, args=(_free_port(), random_tiny_ckpt, str(tmp_path)), nprocs=2)
    initial = AutoModelForImageTextToText.from_pretrained(random_tiny_ckpt).state_dict()
    for name, lora in (("full", False), ("lora", True)):
        reference = _load(random_tiny_ckpt, lora)  # the same step without sharding
        _train_step(reference)
        trained = {k: v.detach() for k, v in reference.state_dict().items()}
        gathered = torch.load(tmp_path / name / "gathered.pt")
        assert gathered.keys() == trained.keys()
        for key, value in trained.items():
            assert torch.equal(gathered[key], value), (name, key)
        if lora:
            assert any("lora_B" in k and v.abs().sum() > 0 for k, v in gathered.items())  # the adapter trained
            reference = reference.merge_and_unload()
        saved = AutoModelForImageTextToText.from_pretrained(tmp_path / name / "model").state_dict()
        expected = reference.state_dict()
        assert saved.keys() == expected.keys()
        for key, value in expected.items():
            assert torch.equal(saved[key], value), (name, key)
        assert any(not torch.equal(saved[k], initial[k]) for k in saved)  # the step changed the saved weights

    cfg = compose("evaluate", [f"cache_dir={tmp_path / 'cache'}", "mode.max_new_tokens.direct=2",
                               "mode.max_new_tokens.cot=3"])
    result = run_eval(cfg, str(tmp_path / "lora/model"), [_row("a"), _row("b", answer="2")], use_cache=False)
    assert sorted((i["id"], i["mode"]) for i in result.records) == [("a", "cot"), ("a", "direct"),
                                                                    ("b", "cot"), ("b", "direct")]


def _row(rid: str, answer: str = "1") -> dict:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (28, 28), "red").save(buf, format="PNG")
    return {"id": rid, "domain": "d", "subtask": "s", "images": [{"bytes": buf.getvalue(), "path": None}],
            "video": [], "question": "How many squares?", "options": [], "answer": answer, "answer_type": "number",
            "cot": "one", "source": "t", "meta": "{}"}
