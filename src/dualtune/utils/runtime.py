"""Run-level plumbing: logging setup, stage timers, loggers, and the wrapper every entry point uses."""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

log = logging.getLogger("dualtune")


@contextlib.contextmanager
def stage(name: str, timings: dict | None = None):
    """Log the start and wall time of a pipeline stage (and record it in ``timings``)."""
    log.info("[stage] %s ...", name)
    start = time.perf_counter()
    try:
        yield
    finally:
        secs = time.perf_counter() - start
        if timings is not None:
            timings[name] = round(secs, 2)
        log.info("[stage] %s done in %.1fs", name, secs)


def run_dir(cfg) -> Path:
    """This job's output dir: ``cfg.output_dir`` if set, else Hydra's run dir, else ./outputs/manual."""
    path = cfg.get("output_dir")
    if not path:
        try:
            from hydra.core.hydra_config import HydraConfig

            path = HydraConfig.get().runtime.output_dir
        except Exception:  # noqa: BLE001 - not running under @hydra.main
            path = None
    path = Path(path or "outputs/manual")
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_logger(cfg, out_dir: Path):
    """Instantiate the Lightning logger chosen by ``logger=`` (none | csv | wandb)."""
    from omegaconf import OmegaConf

    lcfg = cfg.logger
    if lcfg.name == "none":
        return False
    if lcfg.name == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=str(out_dir), name="csv", version="")
    if lcfg.name == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        from dualtune.tracking import wandb_init_kwargs

        kwargs = wandb_init_kwargs(cfg, out_dir)  # group = the sweep (multirun) or the run; job_type = stage
        kwargs.pop("mode", None)
        kwargs["save_dir"] = kwargs.pop("dir")
        logger = WandbLogger(offline=bool(lcfg.offline), log_model=lcfg.log_model, **kwargs)
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        return logger
    raise ValueError(f"unknown logger {lcfg.name!r}")


def task_wrapper(fn):
    """Wrap a task: configure logging, log failures, and always close W&B (so multirun gets one run per job)."""

    def wrapped(cfg):
        logging.getLogger("dualtune").setLevel(logging.INFO)
        try:
            return fn(cfg)
        except Exception:
            log.exception("task failed")
            raise
        finally:
            import sys

            if "wandb" in sys.modules:
                import wandb

                if wandb.run is not None:
                    wandb.finish()

    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (and Lightning's worker seeding)."""
    import lightning as L

    L.seed_everything(int(seed), workers=True, verbose=False)
