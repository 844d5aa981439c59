"""W&B tracking (offline run of the tiny main job holds the boundary table, plots and region summary; group and
job type naming) and the objective path a sweeper optimizes (hand-checked on a small report)."""

from __future__ import annotations

import json
import struct

import pytest

from dualtune.objective import ObjectiveError, objective_value
from dualtune.tracking import region_summary, wandb_group, wandb_job_type
from tests.conftest import TEST_MODEL_OVERRIDES, compose


def _row(domain, subtask, region, planted=None, **acc):
    return {"domain": domain, "subtask": subtask, "n": 4, "region": region, "planted_region": planted, **acc}


REPORT = {
    "subtasks": [_row("math", "bag_total", "cot", "cot", B_S=10.0, DT_L=80.0, Gain_CoT=700.0),
                 _row("math", "free_cells", "cot", "direct", B_S=0.0, DT_L=50.0, Gain_CoT=5.0),
                 _row("spatial", "empty_cells", "direct", "direct", B_S=7.5, DT_L=82.8, Gain_CoT=1004.17)],
    "aggregates": [_row("math", "ALL", "cot", DT_L=65.0), _row("spatial", "ALL", "direct", DT_L=82.8),
                   _row("all", "ALL", "cot", DT_L=71.0)],
}
EVAL = {"aggregates": [{"domain": "math", "mode": "cot", "macro": 60.0, "weighted": 62.5},
                       {"domain": "all", "mode": "cot", "macro": 70.0, "weighted": 71.0},
                       {"domain": "all", "mode": "direct", "macro": 40.0, "weighted": 41.0}]}
RESULTS = {"boundary": REPORT, "eval_tuned": EVAL}


@pytest.mark.parametrize("path,value", [
    ("boundary.ALL.DT_L", 71.0),                 # the overall row (domain "all")
    ("boundary.spatial.DT_L", 82.8),             # a domain's ALL row
    ("boundary.bag_total.Gain_CoT", 700.0),      # a subtask, unique across domains
    ("boundary.math.free_cells.B_S", 0.0),       # domain + subtask
    ("boundary.math.ALL.DT_L", 65.0),
    ("boundary.regions.cot", 2.0), ("boundary.regions.negative", 0.0),
    ("boundary.recovered", 2.0),                 # bag_total and empty_cells land in their planted region
    ("eval_tuned.cot.accuracy", 71.0), ("eval_tuned.direct.macro", 40.0), ("eval_tuned.math.cot.accuracy", 62.5),
])
def test_objective_paths(path, value):
    assert objective_value(path, RESULTS) == pytest.approx(value)


def test_objective_single_domain_all_row_and_none():
    one = {"boundary": {"subtasks": REPORT["subtasks"][:2], "aggregates": REPORT["aggregates"][:1]}}
    assert objective_value("boundary.ALL.DT_L", one) == 65.0
    assert objective_value(None, one) is None


@pytest.mark.parametrize("path,match", [
    ("boundary.nope.DT_L", "matches no row; rows: ALL, all, bag_total"),
    ("boundary.ALL.region", "is not a number"),
    ("boundary.ALL.missing", "no column 'missing'"),
    ("eval_base.cot.accuracy", "wrote no eval_base results"),
    ("eval_tuned.math.direct.accuracy", "evaluated: all.cot, all.direct, math.cot"),
    ("report.x", "must start with one of boundary, eval_tuned, eval_base"),
])
def test_objective_errors_name_what_exists(path, match):
    with pytest.raises(ObjectiveError, match=match):
        objective_value(path, RESULTS)


def test_region_summary_counts_and_metrics():
    summary = region_summary(REPORT)
    assert {k: summary[k] for k in ("regions/cot", "regions/direct", "regions/negative", "regions/tie")} == {
        "regions/cot": 2, "regions/direct": 1, "regions/negative": 0, "regions/tie": 0}
    assert (summary["regions/recovered"], summary["regions/planted"]) == (2, 3)
    assert summary["boundary/math/bag_total/Gain_CoT"] == 700.0 and summary["boundary/all/ALL/DT_L"] == 71.0
    assert "boundary/math/bag_total/GAP_DT" not in summary  # absent from the row: not invented


def test_group_is_the_sweep_in_a_multirun_and_the_run_otherwise(tmp_path):
    cfg = compose("train", ["logger=wandb", "hydra.mode=MULTIRUN", "hydra.sweep.dir=multirun/sw/2026-01-02_03-04-05"])
    assert wandb_group(cfg, tmp_path / "job_0") == "train-2026-01-02_03-04-05"
    single = compose("train", ["logger=wandb", "task_name=exp"])
    assert wandb_group(single, tmp_path / "2026-01-02_10-00-00") == "exp-2026-01-02_10-00-00"
    assert wandb_group(compose("train", ["logger=wandb", "logger.group=mine"]), tmp_path) == "mine"
    assert wandb_job_type(single) == "train"
    assert wandb_job_type(compose("train", ["logger=wandb", "+logger.job_type=evaluate"])) == "evaluate"


def _wandb_log_records(path):
    """The protobuf records of a .wandb file (a LevelDB-style log: a 7-byte ':W&B' header, then 32 KiB blocks of
    chunks with a 7-byte header: crc32, length, type 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, buf, block = path.read_bytes(), 7, b"", 32768
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(buf + chunk)
            buf = b""
            yield rec
        elif kind in (2, 3):
            buf += chunk


def _offline_records(run_dir):
    """An offline run's group, job type, config keys and the last logged value of every history / summary key."""
    out = {"group": None, "job_type": None, "config": set(), "values": {}}
    for rec in _wandb_log_records(next(run_dir.glob("*.wandb"))):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["group"], out["job_type"] = rec.run.run_group, rec.run.job_type
            out["config"] |= {item.key for item in rec.run.config.update}
        elif kind == "config":
            out["config"] |= {item.key for item in rec.config.update}
        elif kind in ("history", "summary"):
            for item in rec.history.item if kind == "history" else rec.summary.update:
                if item.key:
                    out["values"][item.key] = json.loads(item.value_json)
                else:  # a nested update: summary[a][b] = v
                    node = out["values"]
                    for part in item.nested_key[:-1]:
                        node = node.setdefault(part, {})
                    node[item.nested_key[-1]] = json.loads(item.value_json)
    return out


def test_offline_wandb_run_holds_the_boundary_table(cache_dir, tiny_model_path, tmp_path, monkeypatch):
    from dualtune.recipes.train import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    cfg = compose("train", [f"cache_dir={cache_dir}", f"output_dir={out}", *TEST_MODEL_OVERRIDES, "experiment=smoke",
                            "logger=wandb", "domain=math", "domain.n_train_per_subtask=2", "eval.limit=2",
                            "eval.n_boot=10", "algo.max_steps=1", "task_name=wb"])
    report = train(cfg)  # task_wrapper calls wandb.finish()
    import wandb

    assert wandb.run is None
    run_dir = next((out / "wandb").glob("offline-run-*"))
    rec = _offline_records(run_dir)
    values = rec["values"]
    n_rows = len(report["subtasks"]) + len(report["aggregates"])
    assert values["thinking_boundary"]["_type"] == "table-file" and values["thinking_boundary"]["nrows"] == n_rows
    table = json.loads((run_dir / "files" / values["thinking_boundary"]["path"]).read_text())
    cols = table["columns"]
    rows = {(r[cols.index("domain")], r[cols.index("subtask")]): r for r in table["data"]}
    for row in report["subtasks"]:
        assert rows[(row["domain"], row["subtask"])][cols.index("region")] == row["region"]
    assert values["regions/cot"] == sum(r["region"] == "cot" for r in report["subtasks"])
    first = report["subtasks"][0]
    assert values[f"boundary/math/{first['subtask']}/Gain_DA"] == pytest.approx(first["Gain_DA"])
    for key in ("eval_base/per_subtask", "eval_tuned/per_subtask", "eval_tuned/aggregates"):
        assert values[key]["_type"] == "table-file", key
    assert {"plots/boundary_scatter", "plots/gap_b"} <= set(values)
    assert values["plots/gap_b"]["_type"] == "image-file" and (run_dir / "files" / values["plots/gap_b"]["path"]).exists()
    assert (rec["group"], rec["job_type"]) == ("wb-run", "train")
    assert {"model", "domain", "eval", "scale"} <= rec["config"]  # the resolved config
