"""`python -m dualtune.reproduce` on a small real multirun, plus its pure parts (seed statistics, config
identity, the paper's numbers)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TEST_MODEL_OVERRIDES

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["domain=spatial", "mode=direct,cot", "seed=0,1", "experiment=smoke", "logger=csv",
         "domain.n_train_per_subtask=2", "domain.n_test_per_subtask=2", "mode.max_new_tokens={direct: 4, cot: 12}",
         "eval.n_boot=20", "algo.batch_size=8", "eval.modes=[direct,cot,auto]"]


def _python(*args, cwd=ROOT):
    env = dict(os.environ, HF_HUB_OFFLINE="1", WANDB_MODE="disabled", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def multirun(tmp_path_factory, cache_dir, tiny_model_path):
    """A real `python train.py -m` sweep: mode direct,cot x seed 0,1 on the lab's spatial domain (4 runs)."""
    sweep = tmp_path_factory.mktemp("sweep")
    _python("train.py", "-m", *SWEEP, f"cache_dir={cache_dir}", f"hydra.sweep.dir={sweep}", *TEST_MODEL_OVERRIDES)
    return sweep


def test_reproduce_on_a_real_multirun(multirun, capsys):
    from dualtune.reproduce.__main__ import main  # `python -m dualtune.reproduce`, in this process (faster)

    assert main([str(multirun), "--paper-numbers"]) == 0
    stdout = capsys.readouterr().out
    out = multirun / "reproduce"
    for name in ("runs.csv", "table1_modes.md", "table1_modes.csv", "table3_boundary.md", "table3_boundary.csv",
                 "sweep.md", "sweep.csv", "auto_think.md", "auto_think.csv", "paper_reference.md", "reproduce.md",
                 "modes.png", "boundary_mode=direct.png", "boundary_mode=cot.png", "think_rate.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert "Table 1/2 layout" in stdout and "Table 3-5 layout" in stdout

    # One runs.csv row per run dir, identified from the resolved config.
    run_dirs = sorted(p.parent.parent for p in multirun.glob("*/.hydra/config.yaml"))
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["run_dir"]) == [str(d) for d in run_dirs] and len(runs) == 4
    reports = {d: json.loads((d / "thinking_boundary.json").read_text()) for d in run_dirs}
    for _, row in runs.iterrows():
        config = reports[Path(row["run_dir"])]["config"]
        assert (row["seed"], row["mode"], row["config"]) == (config["seed"], config["mode"]["name"],
                                                             f"mode={config['mode']['name']}")

    def by_mode(mode):
        return [reports[Path(d)] for d in runs.loc[runs["mode"] == mode, "run_dir"]]

    # Table 1/2 layout: Baseline, then S and L rows; Eval-S / Eval-L = mean ± std of the runs' ALL rows.
    modes = pd.read_csv(out / "table1_modes.csv").set_index("row")
    assert list(modes.index) == ["Baseline (tiny)", "spatial-S", "spatial-L"]
    for name, mode in (("spatial-S", "direct"), ("spatial-L", "cot")):
        for col, key in (("spatial Eval-S", "DT_S"), ("spatial Eval-L", "DT_L")):
            values = [next(a[key] for a in r["aggregates"] if a["domain"] == "spatial") for r in by_mode(mode)]
            assert modes.loc[name, col] == pytest.approx(statistics.mean(values))
            assert modes.loc[name, f"{col}_std"] == pytest.approx(statistics.stdev(values))
        assert modes.loc[name, "n_seeds"] == 2

    # Table 3 layout: one row per (configuration, subtask) + ALL, mean ± std of each seed's report row.
    boundary = pd.read_csv(out / "table3_boundary.csv")
    subtasks = [r["subtask"] for r in by_mode("cot")[0]["subtasks"]]
    assert len(boundary) == 2 * (len(subtasks) + 1) and set(boundary["config"]) == {"mode=direct", "mode=cot"}
    for _, row in boundary.iterrows():
        rows = [r for rep in by_mode(row["config"].split("=")[1]) for r in rep["subtasks"] + rep["aggregates"]
                if (r["domain"], r["subtask"]) == (row["domain"], row["subtask"])]
        for key in ("B_S", "DT_L", "Gain_DA", "GAP_DT"):
            assert row[key] == pytest.approx(statistics.mean(r[key] for r in rows))
            assert row[f"{key}_std"] == pytest.approx(statistics.stdev(r[key] for r in rows))
        assert row["regions_per_seed"] == ";".join(r["region"] for r in rows)
        assert row["Gain_CoT_lo"] <= row["Gain_CoT_hi"]

    # Sweep table: one row per configuration; auto-think: think rates match the tuned eval summaries.
    sweep = pd.read_csv(out / "sweep.csv")
    assert sorted(sweep["config"]) == ["mode=cot", "mode=direct"] and set(sweep["seeds"]) == {"0 1"}
    auto = pd.read_csv(out / "auto_think.csv")
    for _, row in auto.iterrows():
        rates = [next(t["think_rate"] for t in json.loads((Path(d) / "eval_tuned/eval_summary.json").read_text())
                      ["think_rate"] if (t["domain"], t["subtask"]) == (row["domain"], row["subtask"]))
                 for d in runs.loc[runs["config"] == row["config"], "run_dir"]]
        assert row["think_rate"] == pytest.approx(statistics.mean(rates))
    # The paper's numbers are reference tables only: no `paper ...` column on a lab (tiny) run.
    assert not [c for c in modes.columns if c.startswith("paper")]
    assert "reference only" in (out / "paper_reference.md").read_text()


def test_mean_std_and_region_counts():
    from dualtune.reproduce.seeds import fmt, mean_std, region_counts

    assert mean_std([10.0, 20.0, None]) == (15.0, pytest.approx(7.0710678), 2)
    assert mean_std([3.0]) == (3.0, None, 1) and mean_std([]) == (None, None, 0)
    assert fmt(15.0, 7.0710678) == "15.00 ± 7.07" and fmt(3.0) == "3.00" and fmt(None) == "—"
    assert region_counts(["cot", "direct", "cot"]) == "cot 2, direct 1"


def _fake_run(path: Path, config: dict, results: bool = True) -> Path:
    (path / ".hydra").mkdir(parents=True)
    import yaml

    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if results:
        (path / "eval_summary.json").write_text(json.dumps({"aggregates": [], "per_subtask": []}))
    return path


def test_collect_identifies_runs_by_config_not_dir_names(tmp_path):
    from dualtune.reproduce.collect import collect, group_runs

    base = {"model": {"name": "tiny"}, "domain": {"name": "math"}, "mode": {"name": "dual", "train_modes": ["a"]},
            "algo": {"name": "sft", "lr": 0.001}, "selection": {"name": "random", "seed": 0}, "init_from": None,
            "output_dir": None, "logger": {"group": "x"}}
    for seed in (0, 1):  # misleading dir names: identity comes from the config
        _fake_run(tmp_path / f"lr_big_{seed}", {**base, "seed": seed, "selection": {"name": "random", "seed": seed},
                                              "logger": {"group": f"t{seed}"}})
        # A key added later with a null default (seed 1 ran after it existed) does not split the configuration.
        _fake_run(tmp_path / f"lr_small_{seed}", {**base, "seed": seed, "algo": {
            "name": "sft", "lr": 0.01, **({"eval_steps": None} if seed else {})}})
        # RL from each seed's dual run: init_from differs per seed but names the same configuration.
        _fake_run(tmp_path / f"rl_{seed}", {**base, "seed": seed, "algo": {"name": "grpo", "lr": 0.001},
                                            "init_from": str(tmp_path / f"lr_big_{seed}" / "model")})
    _fake_run(tmp_path / "crashed", {**base, "seed": 5}, results=False)
    # A train.py output_dir=<dir> run: no .hydra there, its boundary report carries the resolved config.
    (tmp_path / "own_dir").mkdir()
    (tmp_path / "own_dir" / "thinking_boundary.json").write_text(json.dumps(
        {"config": {**base, "seed": 2}, "subtasks": [], "aggregates": []}))
    runs, summary = collect(tmp_path)
    assert summary == {"runs": 7, "configurations": 3, "without_results": [str(tmp_path / "crashed")]}
    groups = dict(group_runs(runs))
    assert {k: sorted(r.seed for r in v) for k, v in groups.items()} == {
        "algo=sft, algo.lr=0.001, init_from=None": [0, 1, 2], "algo=sft, algo.lr=0.01, init_from=None": [0, 1],
        "algo=grpo, algo.lr=0.001, init_from=<run: algo=sft, algo.lr=0.001, init_from=None>/model": [0, 1]}


def test_per_seed_checkpoints_are_one_configuration(tmp_path):
    from dualtune.reproduce.collect import collect, group_runs

    for seed in (0, 1):  # RL from each seed's own Dual Tuning run (outside this sweep): the path follows the seed
        _fake_run(tmp_path / f"rl{seed}", {"seed": seed, "algo": {"name": "grpo"}, "domain": {"name": "math"},
                                           "rl_init": {"math": "/runs/t4/dual_seed${seed}/model"},
                                           "init_from": "${rl_init.${domain.name}}"})
    runs, summary = collect(tmp_path)
    assert summary["configurations"] == 1 and [r.seed for _, rs in group_runs(runs) for r in rs] == [0, 1]
    assert runs[0].identity["init_from"] == "/runs/t4/dual_seed{seed}/model"
    assert runs[1].get("init_from") == "/runs/t4/dual_seed1/model"  # the resolved config is untouched


def test_sweep_curve_axes_and_figure(tmp_path):
    from types import SimpleNamespace

    from dualtune.reproduce.figures import curve_axes, plot_sweep_curve

    # Budget curve: selection random / rap x budget; rap's own sub-key follows its name, so it names no line.
    idents = [{"selection.name": s, "selection.budget": b, **({"selection.cde.lam_c": 0.6} if s == "rap" else {})}
              for s in ("random", "rap") for b in (0.091, 0.455)]
    assert curve_axes(idents) == ("selection.budget", ["selection.name"])
    # Two numbers (lambda_a 3 values x sigma 2): x is the one with more values, the other names the lines.
    grid = [{"selection.ace.lam_a": a, "selection.ace.sigma": s} for a in (0.01, 0.1, 1.0) for s in (1.5, 2.0)]
    assert curve_axes(grid) == ("selection.ace.lam_a", ["selection.ace.sigma"])
    assert curve_axes([{"selection.name": "rap"}, {"selection.name": "random"}]) is None  # nothing numeric
    assert curve_axes([{"algo.scale": True}, {"algo.scale": False}]) is None  # booleans are not an axis
    groups = [(f"c{i}", [SimpleNamespace(identity=ident)]) for i, ident in enumerate(idents)]
    rows = [{"config": f"c{i}", "B_S": 70.0, "B_L": 60.0, "DT_S": 70.0 + i, "DT_L": None if i == 3 else 60.0 - i,
             "DT_S_std": 1.0} for i in range(4)]
    path = plot_sweep_curve(groups, rows, tmp_path / "curve.png")  # a missing value (unfinished run) is skipped
    assert path.stat().st_size > 10_000
    assert plot_sweep_curve(groups[:1], rows[:1], tmp_path / "none.png") is None  # one configuration: no axis
    trials = [(f"t{i}", [SimpleNamespace(identity={"a": 0.1 * i, "b": 1.0 + i})]) for i in range(3)]  # Optuna-like
    assert plot_sweep_curve(trials, [{"config": f"t{i}", "DT_S": 1.0, "DT_L": 1.0} for i in range(3)],
                            tmp_path / "trials.png") is None  # every line would be one point


def test_eval_steps_are_averaged_over_seeds(tmp_path):
    from dualtune.reproduce.report import reproduce

    config = {"model": {"name": "tiny"}, "domain": {"name": "math"}, "mode": {"name": "dual"},
              "algo": {"name": "grpo", "eval_steps": 5}, "selection": {"name": "full"}}
    for seed, accs in ((0, (50.0, 60.0)), (1, (70.0, 80.0))):
        run = _fake_run(tmp_path / "sweep" / f"s{seed}", {**config, "seed": seed})
        (run / "eval_steps.csv").write_text("step,mode,accuracy,n\n" + "".join(
            f"{step},cot,{acc},10\n" for step, acc in zip((5, 10), accs)))
    result = reproduce(tmp_path / "sweep", out=tmp_path / "out")
    rows = pd.read_csv(tmp_path / "out" / "eval_steps.csv").to_dict("records")
    assert [(r["step"], r["accuracy"], r["n_seeds"]) for r in rows] == [(5, 60.0, 2), (10, 70.0, 2)]
    assert rows[0]["accuracy_std"] == pytest.approx(statistics.stdev([50.0, 70.0]))
    assert (tmp_path / "out" / "eval_steps.png").stat().st_size > 10_000
    assert "Accuracy during training" in result["markdown"]


def test_configurations_sort_numbers_by_value():
    from dualtune.reproduce.collect import natural_key

    labels = ["rollouts.M=16", "rollouts.M=3", "rollouts.M=8", "lam_a=1.0, sigma=2.0", "lam_a=0.01, sigma=3.0",
              "lam_a=0.01, sigma=1.5"]
    assert sorted(labels, key=natural_key) == ["lam_a=0.01, sigma=1.5", "lam_a=0.01, sigma=3.0", "lam_a=1.0, sigma=2.0",
                                               "rollouts.M=3", "rollouts.M=8", "rollouts.M=16"]


def test_paper_table3_recomputes_the_printed_gains():
    from dualtune.reproduce.paper_numbers import applies, table3_row

    vsi = table3_row("vsibench", "ALL")
    assert (vsi["task"], round(vsi["Gain_DA"], 2), round(vsi["Gain_CoT"], 2), round(vsi["GAP_DT"], 2)) == \
        ("VSIBench", 36.68, 15.15, -8.09)
    assert round(table3_row("vsibench", "room_size_estimation")["Gain_CoT"], 2) == -0.62
    assert table3_row("cvbench", "Depth")["region"] == "tie"  # GAP_DT = 0: not in the Thinking Boundary
    assert table3_row("spatial", "empty_cells") is None
    assert applies("qwen2_5_vl_7b", "vsibench") and not applies("tiny", "vsibench")
    assert not applies("qwen2_5_vl_7b", "spatial")


def test_paper_columns_only_where_model_and_benchmark_match(tmp_path):
    """A (fake-scored) Qwen2.5-VL-7B run on VSI-Bench gets the paper's numbers side by side; a lab run does not."""
    from dualtune.boundary import boundary_report, write_report
    from dualtune.reproduce.report import reproduce

    items = [{"domain": "vsibench", "subtask": s, "id": f"{s}{i}", "B_S": i % 2, "B_L": 0.0, "DT_S": 1.0,
              "DT_L": float(i % 3 == 0)} for s in ("object_counting", "route_planning") for i in range(6)]
    for name, model, domain in (("qwen", "qwen2_5_vl_7b", "vsibench"), ("lab", "tiny", "spatial")):
        config = {"seed": 0, "model": {"name": model}, "domain": {"name": domain}, "mode": {"name": "dual"},
                  "algo": {"name": "sft"}, "selection": {"name": "full"}}
        report = boundary_report([dict(it, domain=domain) for it in items], n_boot=20)
        write_report(report, _fake_run(tmp_path / name, config, results=False), config=config)
    result = reproduce(tmp_path, paper_numbers=True)
    table3 = pd.read_csv(result["out"] / "table3_boundary.csv")
    qwen = table3[table3["domain"] == "vsibench"].set_index("subtask")
    assert qwen.loc["object_counting", "paper Gain_CoT"] == pytest.approx(7.57, abs=0.01)
    assert qwen.loc["route_planning", "paper region"] == "direct" and qwen.loc["ALL", "paper task"] == "VSIBench"
    assert table3[table3["domain"] == "spatial"]["paper Gain_CoT"].isna().all()
    modes = pd.read_csv(result["out"] / "table1_modes.csv").set_index("row")
    assert modes.loc["Baseline (qwen2_5_vl_7b)", "paper vsibench Eval-S"] == pytest.approx(39.40)
    assert pd.isna(modes.loc["Baseline (tiny)", "paper vsibench Eval-S"])
    assert modes.loc["vsibench-SL", "vsibench Eval-S"] == pytest.approx(100.0)  # our number, not the paper's
