"""Weights & Biases tracking beyond the training curves: run naming (group / job type) and, after the
Thinking-Boundary report, its table, the eval tables, the plots and per-region summary metrics.

* group: ``logger.group`` when set; else, in a Hydra multirun, ``<task_name>-<sweep time>`` (the sweep dir's
  basename: every job of one sweep shares it); in a single run, ``<task_name>-<run dir name>``.
* job_type: ``logger.job_type`` when set, else the pipeline stage (``train``; evaluate / score if they log).
* after the report (`log_run_results`): W&B tables ``thinking_boundary``, ``eval_base/per_subtask``,
  ``eval_tuned/per_subtask`` (+ ``.../aggregates``), images for every ``*.png`` in the run dir, and summary keys
  ``regions/<region>`` (subtask counts), ``regions/recovered`` (lab), ``boundary/<domain>/<subtask>/<metric>``.

Nothing here runs unless ``logger=wandb``; ``WANDB_MODE=offline`` (or ``logger.offline=true``) writes the run
under ``<run dir>/wandb/offline-run-*`` for a later ``wandb sync``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dualtune.boundary import recovered_regions

log = logging.getLogger(__name__)

SUMMARY_METRICS = ("B_S", "B_L", "DT_S", "DT_L", "GAP_B", "GAP_DT", "Gain_DA", "Gain_CoT")
REGIONS = ("cot", "direct", "negative", "tie")


def _hydra_runtime():
    """(mode name, sweep dir) of the running Hydra job, or (None, None) outside @hydra.main."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        return str(hc.mode.name), str(hc.sweep.dir)
    except Exception:  # noqa: BLE001 - not running under @hydra.main (tests, notebooks)
        return None, None


def wandb_group(cfg, out_dir) -> str:
    """The W&B group: ``logger.group`` if set, else the sweep (multirun) or this run (module docstring)."""
    if cfg.logger.get("group"):
        return str(cfg.logger.group)
    mode, sweep_dir = _hydra_runtime()
    if mode == "MULTIRUN" and sweep_dir:
        return f"{cfg.task_name}-{Path(sweep_dir).name}"
    return f"{cfg.task_name}-{Path(out_dir).name}"


def wandb_job_type(cfg, default: str = "train") -> str:
    """``logger.job_type`` if set, else ``default`` (the calling stage)."""
    return str(cfg.logger.get("job_type") or default)


def wandb_init_kwargs(cfg, out_dir, job_type: str = "train") -> dict:
    """Keyword arguments of ``wandb.init`` (and of Lightning's WandbLogger) for this run."""
    lcfg = cfg.logger
    kwargs = {"project": lcfg.project, "entity": lcfg.get("entity"), "group": wandb_group(cfg, out_dir),
              "job_type": wandb_job_type(cfg, job_type), "tags": [str(t) for t in lcfg.get("tags") or []],
              "dir": str(out_dir)}
    if lcfg.get("offline"):
        kwargs["mode"] = "offline"
    return kwargs


def _active_run(cfg, out_dir, job_type: str):
    """The current W&B run (the training logger's), or a new one with the resolved config."""
    import wandb
    from omegaconf import OmegaConf

    if wandb.run is not None:
        return wandb.run
    return wandb.init(config=OmegaConf.to_container(cfg, resolve=True), **wandb_init_kwargs(cfg, out_dir, job_type))


def region_summary(report: dict) -> dict:
    """Summary metrics of a boundary report: subtask counts per region, recovered planted regions (lab) and
    ``boundary/<domain>/<subtask>/<metric>`` for every row (aggregates too, subtask ``ALL``)."""
    subtasks = report.get("subtasks", [])
    out = {f"regions/{r}": sum(row["region"] == r for row in subtasks) for r in REGIONS}
    recovered = recovered_regions(subtasks)
    if recovered is not None:
        out["regions/recovered"], out["regions/planted"] = recovered
    for row in subtasks + report.get("aggregates", []):
        for key in SUMMARY_METRICS:
            if row.get(key) is not None:
                out[f"boundary/{row['domain']}/{row['subtask']}/{key}"] = float(row[key])
    return out


def _table(rows: list[dict]):
    import wandb

    columns = list(dict.fromkeys(k for row in rows for k in row))
    return wandb.Table(columns=columns, data=[[_cell(row.get(c)) for c in columns] for row in rows])


def _cell(value):
    """A table cell W&B accepts: scalars as they are, anything else (lists, dicts) as a string."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def log_run_results(cfg, out_dir, report: dict | None, base=None, tuned=None, job_type: str = "train") -> bool:
    """With ``logger=wandb``: log the report table, eval tables, plots and region summary to the run.
    ``base`` / ``tuned``: `EvalResult`s (or None). Returns whether anything was logged."""
    if cfg.logger.name != "wandb" or report is None:
        return False
    from dualtune.boundary import report_table, round_floats

    import wandb

    out = Path(out_dir)
    run = _active_run(cfg, out, job_type)
    payload = {"thinking_boundary": _table(report_table(round_floats(report, None)).to_dict("records"))}
    for name, result in (("eval_base", base), ("eval_tuned", tuned)):
        if result is not None:
            payload[f"{name}/per_subtask"] = _table(result.per_subtask())
            payload[f"{name}/aggregates"] = _table(result.aggregates())
    for png in sorted(out.glob("*.png")):
        payload[f"plots/{png.stem}"] = wandb.Image(str(png))
    run.log(payload)
    run.summary.update(region_summary(report))
    log.info("logged the Thinking-Boundary table, %d eval tables and %d plots to W&B run %s",
             sum(k.startswith("eval_") for k in payload), sum(k.startswith("plots/") for k in payload), run.id)
    return True
