"""Every RAP sweep (sweeps/rap/*.yaml, format: sweeps/README.md) composes job by job at both scales, passes
check_config (first / middle / last distinct job; tests/test_sweeps.py composes every one), and matches its
header's job count; the components arms pick the documented selections."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from dualtune.config_checks import check_config
from tests.test_sweeps import compose_sweep, header_jobs, missing_keys, sweep_jobs

ROOT = Path(__file__).resolve().parents[1]
RAP_SWEEPS = sorted((ROOT / "sweeps" / "rap").glob("*.yaml"))
EXPECTED = {"table1", "table2", "table3", "components", "sensitivity_lam_c", "sensitivity_lam_a_sigma", "rollouts_m",
            "budget_curve", "ace_design", "drm_design", "variant", "cross_model", "optuna"}


def test_every_rap_study_has_a_sweep():
    assert EXPECTED <= {p.stem for p in RAP_SWEEPS}


@pytest.mark.parametrize("scale", ("lab", "paper"))
@pytest.mark.parametrize("path", RAP_SWEEPS, ids=[p.stem for p in RAP_SWEEPS])
def test_rap_sweep_composes_at_both_scales(path, scale):
    jobs = sweep_jobs(path, [f"scale={scale}"])
    assert len(jobs) == header_jobs(path)[scale]
    distinct = sorted({tuple(o for o in j if not o.startswith("seed=")) for j in jobs})
    for job in distinct[:: max(1, len(distinct) // 2)][:3]:  # first, middle, last distinct jobs (test time)
        cfg = compose_sweep(path, [f"scale={scale}", *job])
        with open_dict(cfg):
            for key in missing_keys(cfg):
                OmegaConf.update(cfg, key, f"/data/{key}", force_add=True)
        OmegaConf.to_container(cfg, resolve=True)
        check_config(cfg, "train")
        assert cfg.algo.name == "grpo" and cfg.task_name == f"rap_{path.stem}"
        if scale == "lab":
            assert (cfg.model.name, cfg.domain.name, cfg.domain.source) == ("tiny", "selection_lab", "lab")
        else:
            assert cfg.domain.name == "mm_eureka" and cfg.trainer.name == "gpu"


def test_components_arms_and_budgets():
    path = ROOT / "sweeps/rap/components.yaml"
    seen = {}
    for job in sweep_jobs(path, ["seed=0"]):
        cfg = compose_sweep(path, job)
        sel = cfg.selection
        on = tuple(c for c in ("cde", "ace", "drm") if sel.name == "rap" and sel[c].enabled)
        seen[cfg.arm_id] = (sel.name, on, sel.get("budget"))
    assert seen["rap_none"][0] == "full" and seen["random"] == ("random", (), 0.093)
    assert seen["rap_all"] == ("rap", ("cde", "ace", "drm"), 0.093) and seen["rap_ace_drm"][1] == ("ace", "drm")
    assert len(seen) == 9
    table2 = compose_sweep(ROOT / "sweeps/rap/table2.yaml", sweep_jobs(ROOT / "sweeps/rap/table2.yaml")[0])
    assert table2.algo.estimator == "rloo"


@pytest.mark.parametrize(("scale", "every"), (("lab", 5), ("paper", 20)))
def test_budget_curve_evaluates_during_training(scale, every):
    path = ROOT / "sweeps/rap/budget_curve.yaml"
    cfg = compose_sweep(path, [f"scale={scale}", *sweep_jobs(path, [f"scale={scale}"])[0]])
    assert cfg.algo.eval_steps == every  # the paper's accuracy-vs-steps curve (RAP Fig. 1a): eval_steps.csv


def test_the_documented_optuna_search_space_parses():
    """The header's search-space override (its Status line) composes with the Optuna sweeper and keeps the grid's
    fixed keys next to the four knobs."""
    import re

    path = ROOT / "sweeps/rap/optuna.yaml"
    status = next(line for line in path.read_text().splitlines() if line.startswith("# Status:"))
    override = re.search(r'"(\+\+hydra\.sweeper\.params=\{.*\})"', status).group(1)
    cfg = compose_sweep(path, ["hydra/sweeper=optuna_tpe", override], hydra=True)
    params = dict(cfg.hydra.sweeper.params)
    assert params["selection.cde.lam_c"] == "interval(0.0,0.8)" and params["selection"] == "rap"
    assert params["selection.ace.lam_a"].startswith("tag(log") and params["domain"] == "selection_lab"
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.objective == "eval_tuned.cot.accuracy"
