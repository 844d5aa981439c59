"""Evaluation data configured apart from training data.

``eval.domains: null`` (default) evaluates on the training domain's test split, as the lab does. A list of
domain config names (``conf/domain/<name>.yaml``) evaluates on each benchmark's test split instead, e.g.
train on a training set that publishes no test split and report the Thinking Boundary per benchmark::

    python train.py domain=mm_eureka eval.domains=[mathvista,mmmu] +eval.paths.mathvista=/data/MathVista

``eval.paths`` maps a benchmark name to its local snapshot (default: the config's hub id). Every
benchmark's samples carry its name as ``domain``, so the boundary report has one block per benchmark.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from dualtune.data.sources import load_domain


def config_dir() -> Path:
    """The ``conf/`` directory the running app was composed from (Hydra's primary config source), else
    the repository's ``conf/``."""
    try:
        from hydra.core.hydra_config import HydraConfig

        for source in HydraConfig.get().runtime.config_sources:
            if source.provider == "main" and source.schema == "file":
                return Path(source.path)
    except Exception:  # noqa: BLE001 - not under Hydra (library use)
        pass
    return Path(__file__).resolve().parents[3] / "conf"


def group_config(group: str, name: str, key: str) -> DictConfig:
    """``conf/<group>/<name>.yaml`` as a config; for an unknown name a clear error that names the config
    ``key`` that asked for it and lists the group's options."""
    folder = config_dir() / group
    file = folder / f"{name}.yaml"
    if not file.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ValueError(f"{key}: unknown {group} {name!r}; available: {known}")
    return OmegaConf.load(file)


def domain_config(name: str, path: str | None = None) -> DictConfig:
    """``conf/domain/<name>.yaml`` as a config (``path`` replaces its ``path`` when given); a clear error
    listing the available domains for an unknown name."""
    cfg = group_config("domain", name, "eval.domains")
    if path is not None:
        with open_dict(cfg):
            cfg.path = str(path)
    return cfg


def load_eval_rows(cfg, train_data: dict, skipped: dict) -> tuple[list[dict], list[dict]]:
    """(test rows, skipped input rows) to evaluate: the training domain's test split, or the test splits of
    ``cfg.eval.domains`` (each loaded and validated like any domain)."""
    names = cfg.eval.get("domains")
    if not names:
        return train_data.get("test", []), skipped.get("test", [])
    paths = cfg.eval.get("paths") or {}
    rows, skips = [], []
    for name in names:
        bench_skips: dict = {}
        data = load_domain(domain_config(str(name), paths.get(name)), cfg.cache_dir, seed=cfg.seed,
                           strict=cfg.strict, skipped=bench_skips)
        if not data["test"]:
            raise ValueError(f"eval.domains: benchmark {name!r} has no valid test rows; see the warnings above")
        rows.extend(data["test"])
        skips.extend(bench_skips.get("test", []))
    return rows, skips
