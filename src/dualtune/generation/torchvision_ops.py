"""Make PyPI's torchvision importable next to a CPU-only torch (the vLLM CPU environment, `make vllm-env`).

PyPI ships torchvision built against the CUDA torch wheel; next to ``torch==X+cpu`` its compiled ops (``_C.so``)
cannot load (they link ``libtorch_cuda``). torchvision tolerates that (``torchvision.extension._has_ops()`` is
False, and every op wrapper raises a clear error when called) except for one import-time step:
``torchvision._meta_registrations`` registers fake kernels for ``torchvision::nms`` / ``qnms``, which raises
"operator torchvision::nms does not exist". The Qwen-VL processors only need torchvision's pure-PyTorch
transforms, so this module declares those two operator schemas (no kernel: calling them still fails) right
before that step, and only when the compiled ops did not load.

Installed by `make vllm-env` (CPU flavour) as a ``.pth`` line, so it is active in every interpreter of that
venv; it imports nothing heavy until torchvision itself is imported. Never used in the main venv.
"""

from __future__ import annotations

import importlib.abc
import sys

_TARGET = "torchvision._meta_registrations"
# The schemas torchvision's compiled library would have defined (torchvision/csrc/ops/nms.cpp).
SCHEMAS = {"nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
           "qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"}


def declare_missing_ops() -> list[str]:
    """Declare the torchvision operator schemas that are missing because ``_C`` did not load; return their names."""
    import torch
    import torchvision.extension

    if torchvision.extension._has_ops():
        return []
    declared = []
    for name, schema in SCHEMAS.items():
        if not _op_exists(name):
            torch.library.define(f"torchvision::{name}", schema)
            declared.append(name)
    return declared


def _op_exists(name: str) -> bool:
    """True when ``torchvision::name`` has a schema already."""
    import torch

    try:
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
    except RuntimeError:
        return False
    return True


class _BeforeMetaRegistrations(importlib.abc.MetaPathFinder):
    """One-shot import hook: declares the missing schemas when torchvision starts its meta registrations."""

    def find_spec(self, fullname, path, target=None):
        """Run `declare_missing_ops` before ``torchvision._meta_registrations`` loads; never supplies a module."""
        if fullname == _TARGET:
            sys.meta_path.remove(self)
            declare_missing_ops()
        return None


def install() -> None:
    """Register the import hook (idempotent)."""
    if not any(isinstance(f, _BeforeMetaRegistrations) for f in sys.meta_path):
        sys.meta_path.insert(0, _BeforeMetaRegistrations())
