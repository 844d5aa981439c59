"""Tests for dualtune.boundary (Thinking-Boundary metrics, report, CLI) and dualtune.boundary_plots."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from dualtune.boundary import (
    boundary_metrics, boundary_report, boundary_row, boundary_table, classify_region, is_uncertain, main,
    paired_bootstrap, round_floats, write_report,
)
from dualtune.boundary_plots import plot_boundary_scatter, plot_gap_b

# Table 3 of the digest (Qwen2.5-VL-7B, spatial): task, B_S, B_L, GAP_B, DT_S, DT_L, Gain_DA, Gain_CoT, GAP_DT.
TABLE3 = [
    ("VSIBench", 37.57, 24.91, -12.66, 51.35, 43.26, 36.68, 15.15, -8.09),
    ("Obj. Count", 40.41, 12.19, -28.22, 49.65, 43.47, 22.87, 7.57, -6.18),
    ("Abs. Dist.", 22.88, 1.80, -21.08, 40.17, 29.68, 75.57, 29.72, -10.49),
    ("Obj. Size", 50.18, 12.34, -37.84, 64.30, 50.97, 28.14, 1.57, -13.33),
    ("Room Size", 38.96, 22.71, -16.25, 56.98, 38.72, 46.25, -0.62, -18.26),
    ("Rel. Dist.", 39.44, 40.14, 0.70, 58.31, 48.03, 45.27, 19.66, -10.28),
    ("Rel. Dir.", 39.66, 39.57, -0.09, 44.44, 43.82, 12.05, 10.49, -0.62),
    ("Route Plan", 32.47, 32.47, 0.00, 34.02, 32.47, 4.77, 0.00, -1.55),
    ("Appr. Order", 36.57, 38.03, 1.46, 62.94, 58.90, 65.50, 54.88, -4.04),
    ("CVBench", 75.17, 73.81, -1.36, 84.00, 80.25, 11.75, 6.76, -3.75),
    ("Count", 64.72, 62.94, -1.78, 70.94, 61.80, 9.61, -4.51, -9.14),
    ("Relation", 87.69, 86.46, -1.23, 95.69, 92.92, 9.12, 5.96, -2.77),
    ("Depth", 70.17, 72.00, 1.83, 87.00, 87.00, 20.83, 20.83, 0.00),
    ("Distance", 80.33, 76.17, -4.16, 85.50, 84.00, 6.44, 4.57, -1.50),
]
# Every GAP_DT in Table 3 is negative with Gain_DA > 0 ("direct"), except Depth: GAP_DT = 0 -> border, "tie".
TABLE3_REGION = {row[0]: "direct" for row in TABLE3} | {"Depth": "tie"}


# ---------------------------------------------------------------- boundary_metrics / classify_region
def test_metrics_hand_computed_direct():
    # B_max = max(50, 40) = 50; GAP_B = 40 - 50 = -10; GAP_DT = 55 - 60 = -5
    # Gain_DA = (60 - 50)/50*100 = 20; Gain_CoT = (55 - 50)/50*100 = 10
    m = boundary_metrics(50, 40, 60, 55)
    assert m == pytest.approx({"B_max": 50, "GAP_B": -10, "GAP_DT": -5, "Gain_DA": 20, "Gain_CoT": 10,
                               "gain_absolute": False})
    assert classify_region(m["Gain_DA"], m["Gain_CoT"], m["GAP_DT"]) == "direct"


def test_metrics_hand_computed_cot_and_negative():
    # B_max = max(40, 50) = 50 (the CoT base is the denominator); Gain_DA = (45-50)/50*100 = -10,
    # Gain_CoT = (60-50)/50*100 = 20, GAP_DT = 60 - 45 = 15, GAP_B = 50 - 40 = 10
    m = boundary_metrics(40, 50, 45, 60)
    assert (m["GAP_B"], m["GAP_DT"], m["Gain_DA"], m["Gain_CoT"]) == pytest.approx((10, 15, -10, 20))
    assert classify_region(m["Gain_DA"], m["Gain_CoT"], m["GAP_DT"]) == "cot"
    # B_max = 80; Gain_DA = (72-80)/80*100 = -10; Gain_CoT = (64-80)/80*100 = -20; GAP_DT = 64-72 = -8
    m = boundary_metrics(80, 60, 72, 64)
    assert (m["Gain_DA"], m["Gain_CoT"], m["GAP_DT"]) == pytest.approx((-10, -20, -8))
    assert classify_region(m["Gain_DA"], m["Gain_CoT"], m["GAP_DT"]) == "negative"


def test_metrics_bmax_zero_gives_absolute_gains():
    # B_max = 0 -> relative gain undefined; gains are DT - 0 in points and flagged.
    m = boundary_metrics(0, 0, 5, 12.5)
    assert (m["Gain_DA"], m["Gain_CoT"], m["GAP_DT"], m["gain_absolute"]) == (5, 12.5, 7.5, True)
    with pytest.raises(ValueError):
        boundary_metrics(-1, 0, 5, 5)
    with pytest.raises(ValueError):
        boundary_metrics(float("nan"), 0, 5, 5)


@pytest.mark.parametrize("row", TABLE3, ids=[r[0] for r in TABLE3])
def test_table3_rows_reproduced(row):
    task, b_s, b_l, gap_b, dt_s, dt_l, gain_da, gain_cot, gap_dt = row
    m = boundary_metrics(b_s, b_l, dt_s, dt_l)
    assert m["GAP_B"] == pytest.approx(gap_b, abs=0.015)
    assert m["GAP_DT"] == pytest.approx(gap_dt, abs=0.015)
    assert m["Gain_DA"] == pytest.approx(gain_da, abs=0.06)
    assert m["Gain_CoT"] == pytest.approx(gain_cot, abs=0.06)
    assert classify_region(m["Gain_DA"], m["Gain_CoT"], m["GAP_DT"]) == TABLE3_REGION[task]


def test_region_edge_cases():
    assert classify_region(0.0, 0.0, 0.0) == "tie"
    # Gain_CoT exactly 0 with GAP_DT > 0: on the Q1 border, not cot (strict > 0).
    assert classify_region(-3.0, 0.0, 3.0) == "tie"
    # Gain_DA > 0 but GAP_DT exactly 0 (CV-Bench Depth): not direct either.
    assert classify_region(20.83, 20.83, 0.0) == "tie"
    # Both gains exactly 0 / one negative one zero: not "negative" (strict < 0).
    assert classify_region(-5.0, 0.0, 5.0) == "tie"
    # Values exactly at tol are not beyond it.
    assert classify_region(1.0, 2.0, 1.0, tol=1.0) == "tie"
    assert classify_region(1.0, 2.0, 1.0, tol=0.5) == "cot"
    assert classify_region(3.0, 1.0, -1.0, tol=1.0) == "tie"
    assert classify_region(3.0, 1.0, -2.0, tol=1.0) == "direct"
    assert classify_region(-1.0, -1.0, 0.0, tol=1.0) == "tie"
    assert classify_region(-1.01, -1.5, -0.49, tol=1.0) == "negative"


# ---------------------------------------------------------------- bootstrap / uncertainty
def test_bootstrap_deterministic_per_seed():
    base_s, base_l = [1, 0, 1, 1, 0, 0, 1, 0], [0, 0, 1, 0, 1, 0, 1, 0]
    dt_s, dt_l = [1, 1, 1, 0, 0, 1, 1, 0], [1, 0, 1, 1, 1, 1, 1, 0]
    a = paired_bootstrap(base_s, base_l, dt_s, dt_l, n_boot=300, seed=7)
    assert a == paired_bootstrap(base_s, base_l, dt_s, dt_l, n_boot=300, seed=7)
    assert a != paired_bootstrap(base_s, base_l, dt_s, dt_l, n_boot=300, seed=8)
    assert set(a) == {"Gain_DA", "Gain_CoT", "GAP_DT"}
    # The CI holds the point estimate: GAP_DT = (6 - 5)/8*100 = 12.5 points.
    lo, hi = a["GAP_DT"]
    assert lo <= 12.5 <= hi and lo < hi


def test_bootstrap_degenerate_zero_width():
    # All correct before and after: B_max = 100, gains = 0, GAP_DT = 0 in every resample.
    ones = [1.0] * 20
    ci = paired_bootstrap(ones, ones, ones, ones, n_boot=200, seed=0)
    assert ci == {"Gain_DA": (0.0, 0.0), "Gain_CoT": (0.0, 0.0), "GAP_DT": (0.0, 0.0)}
    # One item: B_S = 100, B_L = 0, DT_S = 100, DT_L = 0 -> Gain_DA = 0, Gain_CoT = -100, GAP_DT = -100.
    ci = paired_bootstrap([1], [0], [1], [0], n_boot=50, seed=3)
    assert ci == {"Gain_DA": (0.0, 0.0), "Gain_CoT": (-100.0, -100.0), "GAP_DT": (-100.0, -100.0)}


def test_bootstrap_is_paired():
    # Identical DT_S and DT_L per item -> GAP_DT is exactly 0 in every paired resample (an unpaired
    # resampling would give a wide CI). base_S == dt_S with base_L = 0 -> Gain_DA exactly 0 too.
    scores = [1, 0, 1, 1, 0, 0.5, 1, 0, 0.25, 1]
    ci = paired_bootstrap(scores, [0] * 10, scores, scores, n_boot=300, seed=1)
    assert ci["GAP_DT"] == (0.0, 0.0)
    assert ci["Gain_DA"] == (0.0, 0.0)
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1], [1, 0], [1, 0])
    with pytest.raises(ValueError):
        paired_bootstrap([1.5], [1], [1], [1])


def test_is_uncertain():
    cot_ok = {"Gain_DA": [-10, 10], "Gain_CoT": [1, 5], "GAP_DT": [0.5, 3]}
    assert is_uncertain("cot", cot_ok) is False  # Gain_DA did not decide "cot"
    assert is_uncertain("cot", {**cot_ok, "GAP_DT": [-0.5, 3]}) is True
    assert is_uncertain("cot", {**cot_ok, "GAP_DT": [0.0, 3]}) is True  # touching 0 counts
    assert is_uncertain("cot", cot_ok, tol=1.0) is True  # GAP_DT lo 0.5 <= tol
    direct = {"Gain_DA": [2, 8], "Gain_CoT": [-3, 4], "GAP_DT": [-5, -1]}
    assert is_uncertain("direct", direct) is False
    assert is_uncertain("direct", {**direct, "GAP_DT": [-5, 0.2]}) is True
    assert is_uncertain("direct", {**direct, "Gain_DA": [-1, 8]}) is True
    negative = {"Gain_DA": [-5, -1], "Gain_CoT": [-5, -1], "GAP_DT": [-9, 9]}
    assert is_uncertain("negative", negative) is False
    assert is_uncertain("negative", {**negative, "Gain_CoT": [-5, 1]}) is True
    assert is_uncertain("tie", {"Gain_DA": [-9, 9], "Gain_CoT": [-9, 9], "GAP_DT": [-9, 9]}) is False
    with pytest.raises(ValueError):
        is_uncertain("maybe", negative)


# ---------------------------------------------------------------- rows and report
def test_boundary_row_hand_computed():
    # B_S = 2/4 = 50, B_L = 1/4 = 25, DT_S = 3/4 = 75, DT_L = 4/4 = 100; B_max = 50
    # GAP_B = -25, GAP_DT = 25, Gain_DA = (75-50)/50*100 = 50, Gain_CoT = (100-50)/50*100 = 100 -> cot
    row = boundary_row({"domain": "d", "subtask": "s"}, [1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0],
                       [1, 1, 1, 1], n_boot=100)
    assert set(row) == {"domain", "subtask", "n", "B_S", "B_L", "DT_S", "DT_L", "GAP_B", "GAP_DT", "Gain_DA",
                        "Gain_CoT", "region", "uncertain", "ci", "gain_absolute"}
    assert (row["n"], row["B_S"], row["B_L"], row["DT_S"], row["DT_L"]) == (4, 50, 25, 75, 100)
    assert (row["GAP_B"], row["GAP_DT"], row["Gain_DA"], row["Gain_CoT"]) == (-25, 25, 50, 100)
    assert row["region"] == "cot" and row["gain_absolute"] is False
    assert set(row["ci"]) == {"Gain_DA", "Gain_CoT", "GAP_DT"}
    # With 4 items a resample of only "DT_L = DT_S" items is likely -> GAP_DT CI reaches 0 -> uncertain.
    assert row["uncertain"] is (row["ci"]["GAP_DT"][0] <= 0 or row["ci"]["Gain_CoT"][0] <= 0)
    with pytest.raises(ValueError):
        boundary_row({"n": 1}, [1], [1], [1], [1])
    assert round_floats({"a": (1 / 3, 2.0), "b": True}) == {"a": [0.33, 2.0], "b": True}


def _item(domain, subtask, i, b_s, b_l, dt_s, dt_l):
    return {"domain": domain, "subtask": subtask, "id": i, "B_S": b_s, "B_L": b_l, "DT_S": dt_s, "DT_L": dt_l}


# img/a: B_S 50, B_L 0, DT_S 100, DT_L 100 -> Gain_DA = Gain_CoT = 100, GAP_DT = 0 -> tie
# img/b: B_S 50, B_L 25, DT_S 75, DT_L 0 -> Gain_DA 50, Gain_CoT -100, GAP_DT -75 -> direct
# vid/c: B_S 0, B_L 100, DT_S 50, DT_L 100 -> Gain_DA -50, Gain_CoT 0, GAP_DT 50 -> tie
ITEMS = [
    _item("vid", "c", 0, 0, 1, 0, 1), _item("vid", "c", 1, 0, 1, 1, 1),
    _item("img", "a", 0, 1, 0, 1, 1), _item("img", "a", 1, 0, 0, 1, 1),
    _item("img", "b", 0, 1, 1, 1, 0), _item("img", "b", 1, 1, 0, 1, 0),
    _item("img", "b", 2, 0, 0, 1, 0), _item("img", "b", 3, 0, 0, 0, 0),
]


def test_boundary_report_rows_and_sample_weighted_aggregates():
    report = boundary_report(ITEMS, n_boot=100, planted={"a": "cot", "b": "direct"})
    subs = report["subtasks"]
    assert [(r["domain"], r["subtask"]) for r in subs] == [("img", "a"), ("img", "b"), ("vid", "c")]
    assert [r["region"] for r in subs] == ["tie", "direct", "tie"]
    assert [r["planted_region"] for r in subs] == ["cot", "direct", None]
    assert (subs[1]["Gain_DA"], subs[1]["Gain_CoT"], subs[1]["GAP_DT"]) == (50, -100, -75)
    aggs = {r["domain"]: r for r in report["aggregates"]}
    assert list(aggs) == ["img", "vid", "all"] and all(r["subtask"] == "ALL" for r in aggs.values())
    # img pools 6 items: B_S 3/6 = 50, B_L 1/6 = 16.67, DT_S 5/6 = 83.33 (macro mean would be 87.5),
    # DT_L 2/6 = 33.33; Gain_DA = (83.33-50)/50*100 = 66.67, Gain_CoT = -33.33, GAP_DT = -50 -> direct
    img = aggs["img"]
    assert img["n"] == 6 and img["DT_S"] == pytest.approx(500 / 6)
    assert (img["Gain_DA"], img["Gain_CoT"], img["GAP_DT"]) == pytest.approx((200 / 3, -100 / 3, -50))
    assert img["region"] == "direct"
    # all pools 8 items: B_S 3/8 = 37.5 = B_L, DT_S 6/8 = 75, DT_L 4/8 = 50
    # Gain_DA = (75-37.5)/37.5*100 = 100, Gain_CoT = 12.5/37.5*100 = 33.33, GAP_DT = -25 -> direct
    everything = aggs["all"]
    assert everything["n"] == 8
    assert (everything["Gain_DA"], everything["Gain_CoT"], everything["GAP_DT"]) == pytest.approx(
        (100, 100 / 3, -25))
    # A single domain gets no "all" row.
    single = boundary_report([it for it in ITEMS if it["domain"] == "img"], n_boot=50)
    assert [r["domain"] for r in single["aggregates"]] == ["img"]


def test_boundary_report_rejects_bad_items():
    with pytest.raises(ValueError, match="duplicate"):
        boundary_report(ITEMS + [_item("img", "a", 0, 1, 1, 1, 1)], n_boot=10)
    with pytest.raises(ValueError, match="lacks keys"):
        boundary_report([{"domain": "x", "subtask": "y", "id": 0, "B_S": 1}], n_boot=10)


def test_write_report_files(tmp_path):
    report = boundary_report(ITEMS, n_boot=100, planted={"a": "cot", "b": "direct"})
    paths = write_report(report, tmp_path / "out", config={"tol": 0.0, "n_boot": 100})
    assert all(p.exists() for p in paths.values())
    payload = json.loads(paths["json"].read_text())
    assert payload["config"] == {"tol": 0.0, "n_boot": 100}
    assert payload["aggregates"][0]["B_L"] == pytest.approx(100 / 6, abs=1e-12)  # full precision in the json
    df = pd.read_csv(paths["csv"])
    assert len(df) == 6 and list(df["row_type"]) == ["subtask"] * 3 + ["aggregate"] * 3
    expected = {"domain", "subtask", "n", "B_S", "B_L", "DT_S", "DT_L", "GAP_B", "GAP_DT", "Gain_DA",
                "Gain_CoT", "region", "uncertain", "gain_absolute", "planted_region", "Gain_DA_lo",
                "Gain_DA_hi", "Gain_CoT_lo", "Gain_CoT_hi", "GAP_DT_lo", "GAP_DT_hi", "row_type"}
    assert set(df.columns) == expected
    md = paths["md"].read_text()
    assert "| vid | c | 2 |" in md and md.count("| tie | - |") == 2  # no planted region -> "-"
    assert "| img | b |" in md and "recovered planted regions: 1/2" in md  # b recovered, a is a tie
    write_report(boundary_report(ITEMS, n_boot=20), tmp_path / "plain")
    assert "recovered planted" not in (tmp_path / "plain" / "thinking_boundary.md").read_text()


def test_report_json_and_csv_keep_full_precision(tmp_path):
    # 1/3 vs 2/3 accuracies: with 2-decimal storage Gain_DA recomputed from the stored accuracies was off.
    items = [_item("img", "a", i, *s) for i, s in enumerate([(1, 0, 1, 1), (0, 1, 1, 0), (0, 0, 0, 1)])]
    paths = write_report(boundary_report(items, n_boot=20), tmp_path)
    payload = json.loads(paths["json"].read_text())
    df = pd.read_csv(paths["csv"])
    for row in payload["subtasks"] + payload["aggregates"] + df.to_dict("records"):
        m = boundary_metrics(row["B_S"], row["B_L"], row["DT_S"], row["DT_L"])
        for key in ("Gain_DA", "Gain_CoT", "GAP_B", "GAP_DT"):
            assert abs(m[key] - row[key]) <= 1e-9, (key, m[key], row[key])
    assert payload["subtasks"][0]["B_S"] == pytest.approx(100 / 3, abs=1e-12)
    assert "| 33.33 | 33.33 | 66.67 | 66.67 |" in paths["md"].read_text()  # only the md table is rounded


# ---------------------------------------------------------------- CLI
def _table3_csv(path):
    cols = ["task", "B_S", "B_L", "GAP_B_paper", "DT_S", "DT_L", "Gain_DA_paper", "Gain_CoT_paper", "GAP_DT_p"]
    pd.DataFrame(TABLE3, columns=cols).assign(note="x").to_csv(path, index=False)
    return path


def test_cli_main_writes_table(tmp_path):
    out = tmp_path / "out.csv"
    assert main([str(_table3_csv(tmp_path / "in.csv")), "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["task", "B_S", "B_L", "DT_S", "DT_L", "GAP_B", "GAP_DT", "Gain_DA", "Gain_CoT",
                                "region"]
    depth = df.set_index("task").loc["Depth"]
    # Depth: B_max = 72.00, Gain = (87-72)/72*100 = 20.83, GAP_DT = 0 -> tie
    assert (depth["Gain_DA"], depth["Gain_CoT"], depth["GAP_DT"], depth["region"]) == (20.83, 20.83, 0.0, "tie")
    assert df.set_index("task").loc["Room Size", "Gain_CoT"] == -0.62
    assert dict(zip(df["task"], df["region"])) == TABLE3_REGION


def test_cli_stdout_tol_and_missing_column(tmp_path, capsys):
    src = tmp_path / "in.csv"
    # Relation: Gain_CoT 5.96 and GAP_DT -2.77; with --tol 3, GAP_DT is not < -3 -> tie instead of direct.
    pd.DataFrame(TABLE3[11:12], columns=["task", "B_S", "B_L", "x", "DT_S", "DT_L", "y", "z", "w"]).to_csv(
        src, index=False)
    assert main([str(src), "--tol", "3"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[0].startswith("task,B_S") and printed[1].endswith(",tie")
    pd.DataFrame({"task": ["t"], "B_S": [1.0], "B_L": [2.0], "DT_S": [3.0]}).to_csv(src, index=False)
    with pytest.raises(SystemExit) as exc:
        main([str(src)])
    assert exc.value.code == 2 and "missing required column(s): DT_L" in capsys.readouterr().err
    with pytest.raises(ValueError, match="non-numeric"):
        boundary_table(pd.DataFrame({"task": ["t"], "B_S": ["n/a"], "B_L": [1], "DT_S": [1], "DT_L": [1]}))


def test_cli_subprocess(tmp_path):
    src = _table3_csv(tmp_path / "in.csv")
    proc = subprocess.run([sys.executable, "-m", "dualtune.boundary", str(src)], capture_output=True,
                          text=True, timeout=60, check=True)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 + len(TABLE3)
    # VSIBench: 37.57,24.91,51.35,43.26 -> GAP_B -12.66, GAP_DT -8.09, Gain_DA 36.68, Gain_CoT 15.15
    assert lines[1] == "VSIBench,37.57,24.91,51.35,43.26,-12.66,-8.09,36.68,15.15,direct"


# ---------------------------------------------------------------- plots
def test_plots_write_png(tmp_path):
    report = boundary_report(ITEMS, n_boot=20, planted={"a": "cot", "b": "direct"})
    rows = report["subtasks"] + report["aggregates"]
    for path in (plot_boundary_scatter(rows, tmp_path / "scatter.png", title="toy"),
                 plot_gap_b(rows, tmp_path / "gap_b.png")):
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    cli_rows = boundary_table(pd.DataFrame(TABLE3, columns=["task", "B_S", "B_L", "a", "DT_S", "DT_L", "b",
                                                            "c", "d"])).to_dict("records")
    assert plot_boundary_scatter(cli_rows, tmp_path / "t3.png").stat().st_size > 2000
