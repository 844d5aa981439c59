"""Saving the tuned model under every training strategy: one process, DDP, and sharded ones (Lightning's
``strategy=fsdp``, i.e. FSDP1 ``FullyShardedDataParallel``; ``fully_shard`` / FSDP2, e.g. Lightning's
``ModelParallelStrategy``).

Under a sharded strategy each rank holds only a slice of every parameter, so ``model.save_pretrained`` on
rank 0 would write a broken model. `save_trained_model` is called on *every* rank after ``trainer.fit``:

1. not sharded (one process, DDP): rank 0 saves ``model`` as it is (LoRA merged);
2. sharded: every rank takes part in gathering the full state dict (torch.distributed.checkpoint's
   ``get_model_state_dict(full_state_dict=True, cpu_offload=True)``: full tensors on CPU, on rank 0 only);
   rank 0 then rebuilds an unsharded copy of the model (``rebuild()``, e.g. ``load_model(start, cfg.model)``:
   same architecture and LoRA wrapping), loads the gathered weights into it (strictly: only tied weights
   may be absent) and saves that copy with `save_tuned` (LoRA merged, ``save_pretrained``).

Rank 0 needs CPU memory for the gathered weights plus the rebuilt copy (2x the model). DeepSpeed ZeRO-3 is not
handled (no such strategy is configured).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

log = logging.getLogger(__name__)
# Module-name parts that wrappers insert (FSDP1, activation checkpointing, torch.compile); state-dict keys
# from torch.distributed.checkpoint never contain them.
WRAPPER_PARTS = ("_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod")


def save_tuned(model, processor, save_dir: Path) -> Path:
    """``save_pretrained`` the tuned model (LoRA merged into the base weights) and its processor."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.save_pretrained(save_dir)
    processor.save_pretrained(save_dir)
    return Path(save_dir)


def clean_name(name: str) -> str:
    """A module name without wrapper parts: ``_fsdp_wrapped_module.model`` -> ``model``."""
    return ".".join(part for part in name.split(".") if part and part not in WRAPPER_PARTS)


def is_sharded(module: torch.nn.Module) -> bool:
    """True when ``module`` (or a submodule) is FSDP1-wrapped or holds ``fully_shard`` (DTensor) parameters."""
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.distributed.tensor import DTensor

    return (any(isinstance(m, FullyShardedDataParallel) for m in module.modules())
            or any(isinstance(p, DTensor) for p in module.parameters()))


def submodule_prefix(root: torch.nn.Module, model: torch.nn.Module) -> str:
    """The state-dict key prefix of ``model`` inside ``root`` (``"model."`` for a LightningModule's
    ``self.model``, ``""`` when ``model`` is ``root``), wrapper parts removed."""
    for name, module in root.named_modules(remove_duplicate=False):
        if module is model:
            name = clean_name(name)
            return f"{name}." if name else ""
    raise ValueError(f"{type(model).__name__} is not a submodule of {type(root).__name__}")


def gather_full_state_dict(root: torch.nn.Module, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Collective (call on every rank): ``model``'s full, unsharded weights as CPU tensors, keyed like an
    unwrapped ``model.state_dict()``, on global rank 0; an empty dict on the other ranks. ``root`` is the
    outermost (wrapped) module the strategy trains, e.g. ``trainer.strategy.model``."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(root, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    prefix = submodule_prefix(root, model)
    return {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}


def load_full_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load gathered weights into an unsharded ``model``; raise ``ValueError`` on unexpected keys or on a
    missing key that is not tied to (does not share storage with) a loaded one."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    own = model.state_dict()
    loaded_storages = {own[k].untyped_storage().data_ptr() for k in state if k in own}
    untied = [k for k in missing if own[k].untyped_storage().data_ptr() not in loaded_storages]
    if unexpected or untied:
        raise ValueError(f"gathered state dict does not match the rebuilt model: missing {untied[:5]} "
                         f"({len(untied)}), unexpected {list(unexpected)[:5]} ({len(unexpected)})")


def save_trained_model(model, processor, save_dir: Path, *, root=None, rebuild: Callable | None = None,
                       is_global_zero: bool = True) -> Path:
    """Save the trained ``model`` to ``save_dir`` from any strategy; call on every rank (a sharded model
    needs every rank for the gather). ``root``: the wrapped module the strategy trains (default ``model``);
    ``rebuild``: returns an unsharded copy of ``model``'s architecture (needed only when sharded)."""
    save_dir = Path(save_dir)
    root = model if root is None else root
    if not is_sharded(root):
        if is_global_zero:
            save_tuned(model, processor, save_dir)
        return save_dir
    if rebuild is None:
        raise ValueError("a sharded model needs rebuild= (an unsharded copy to load the gathered weights into)")
    state = gather_full_state_dict(root, model)
    if is_global_zero:
        log.info("gathered the full state dict (%d tensors) from the sharded model; saving from rank 0",
                 len(state))
        copy = rebuild()
        load_full_state(copy, state)
        del state
        save_tuned(copy, processor, save_dir)
    return save_dir


def save_from_trainer(trainer, module, processor, save_dir: Path, rebuild: Callable) -> Path:
    """`save_trained_model` for a LightningModule ``module`` whose policy is ``module.model``, after
    ``trainer.fit`` (call on every rank, then `dualtune.utils.distributed.after_fit`)."""
    root = getattr(trainer.strategy, "model", None)
    root = module if root is None else root
    return save_trained_model(module.model, processor, save_dir, root=root, rebuild=rebuild,
                              is_global_zero=trainer.is_global_zero)
