"""Resolve a model config to a checkpoint path; build + pretrain the tiny base model on first use.

The tiny base is a deterministic, short pretraining of a random tiny Qwen2.5-VL on the lab's *generic*
mixture (perception / description questions in both answer modes, templates disjoint from the target
subtasks), so that base accuracy in both modes (B_S, B_L) is measurable. It is cached under
``<cache_dir>/models/tiny-<config hash>`` and reused by every later run.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from dualtune.utils.hashing import stable_hash

log = logging.getLogger(__name__)

# Bump when the tiny build or pretraining recipe changes, so caches are rebuilt.
TINY_VERSION = 2


def generic_mixture_digest(seed: int = 0, n: int = 128) -> str:
    """Digest of the generic pretraining mixture's content: the text and picture counts of its first ``n``
    samples plus every generic subtask's knobs. Part of the base cache key, so an edit to the mixture
    rebuilds the base model even when ``LAB_VERSION`` was not bumped."""
    from dualtune.lab import generic_samples, subtasks_for

    rows = [(r["question"], r["answer"], r["cot"], r["options"], len(r["images"]), len(r["video"]))
            for r in generic_samples(n, seed=seed)]
    return stable_hash({"rows": rows, "knobs": {s.name: s.knobs for s in subtasks_for("generic")}})


def tiny_base_dir(model_cfg, cache_dir) -> Path:
    """Cache location of the tiny base model for this config (hash of sizes, recipe, lab version and the
    generic mixture's content)."""
    from dualtune.lab import LAB_VERSION

    key = stable_hash({"tiny": model_cfg.tiny, "pretrain": model_cfg.pretrain, "v": TINY_VERSION, "lab": LAB_VERSION,
                       "generic": generic_mixture_digest(int(model_cfg.pretrain.seed))})
    return Path(cache_dir) / "models" / f"tiny-{key}"


def pretrain_tiny(path: Path, model_cfg) -> dict:
    """Pretrain the checkpoint at ``path`` in place on the generic lab mixture; return stats."""
    import lightning as L
    from omegaconf import OmegaConf

    from dualtune.data.datamodule import SFTDataModule
    from dualtune.lab import generic_samples
    from dualtune.models.loading import load_model, load_processor, vision_tower_patterns
    from dualtune.training.callbacks import ProgressLog
    from dualtune.training.sft_module import SFTModule

    pcfg = model_cfg.pretrain
    L.seed_everything(int(pcfg.seed), verbose=False)
    processor = load_processor(str(path))
    model = load_model(str(path), OmegaConf.create({"dtype": "float32", "attn_implementation": "sdpa"}))
    samples = generic_samples(int(pcfg.n_samples), seed=int(pcfg.seed))
    data = SFTDataModule(processor, samples, mode="dual", batch_size=int(pcfg.batch_size),
                         max_length=int(pcfg.max_length), seed=int(pcfg.seed))
    module = SFTModule(model, lr=float(pcfg.lr), warmup_ratio=0.05,
                       vision_lr_scale=float(pcfg.get("vision_lr_scale", 1.0)),
                       vision_patterns=vision_tower_patterns(model_cfg))
    trainer = L.Trainer(max_epochs=int(pcfg.epochs), accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        log_every_n_steps=10, callbacks=[ProgressLog(every=50, name="pretrain")])
    trainer.fit(module, data)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return {"steps": trainer.global_step, "final_loss": float(trainer.callback_metrics.get("train/loss_epoch", -1))}


def tokenizer_corpus() -> list[str]:
    """Lab text plus the prompt scaffolding (templates, option blocks, frame labels) the model will see."""
    from dualtune.lab import lab_text_corpus
    from dualtune.prompting.templates import ANSWER_HINTS, DEFAULT_TEMPLATES

    scaffold = [tpl.format(question="", options="\nOptions:\nA. x\nB. y", answer_hint=hint)
                for tpl in DEFAULT_TEMPLATES.values() for hint in ANSWER_HINTS.values()]
    scaffold += [f"Frame {k}:" for k in range(1, 9)]
    return lab_text_corpus(seed=0) + scaffold * 20


def ensure_tiny_base(model_cfg, cache_dir) -> Path:
    """Return the cached tiny base model dir, building and pretraining it first if needed (atomic)."""
    from dualtune.models.tiny import build_tiny_checkpoint

    final = tiny_base_dir(model_cfg, cache_dir)
    if (final / "config.json").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=final.parent))
    start = time.perf_counter()
    log.info("building the tiny base model (first use; cached at %s)", final)
    t = model_cfg.tiny
    build_tiny_checkpoint(tmp, tokenizer_corpus(), seed=int(model_cfg.pretrain.seed),
                          vocab_size=int(t.vocab_size), hidden_size=int(t.hidden_size), layers=int(t.layers),
                          heads=int(t.heads), intermediate_size=int(t.intermediate_size),
                          vision_hidden=int(t.vision_hidden), vision_depth=int(t.vision_depth))
    stats = pretrain_tiny(tmp, model_cfg)
    stats["build_seconds"] = round(time.perf_counter() - start, 1)
    (tmp / "dualtune_pretrain.json").write_text(__import__("json").dumps(stats, indent=2))
    try:
        os.replace(tmp, final)
    except OSError:  # another process finished first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("tiny base model ready in %.1fs: %s", stats["build_seconds"], stats)
    return final


def resolve_model_path(model_cfg, cache_dir) -> str:
    """Checkpoint path for ``model_cfg``: its ``path`` (hub id or dir), or the tiny base built on demand."""
    if model_cfg.get("path"):
        return str(model_cfg.path)
    if model_cfg.name == "tiny" or model_cfg.get("tiny"):
        return str(ensure_tiny_base(model_cfg, cache_dir))
    raise ValueError(f"model config {model_cfg.name!r} has no path")
