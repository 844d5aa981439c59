"""The Dual Tuning paper's printed numbers that this repo has (digest ../shared/papers/dual_tuning.md §5,
transcribed from the project page's table images): Table 1 (spatial E1-E5), Table 2 (disciplinary E6-E8),
Table 3 (the Thinking Boundary on VSI-Bench and CV-Bench). All for Qwen2.5-VL-7B. Tables 4-10 (MathVista,
MMMU, RL, Ming-lite-omni) are withheld from the digest copy in this repo, so they are not here.

They are reference values: `dualtune.reproduce.tables` shows them next to a run's numbers only for the model
and benchmark they were measured on (`applies`), and otherwise as separate, labelled reference tables.
"""

from __future__ import annotations

MODEL = "qwen2_5_vl_7b"  # conf/model name of the paper's main model
MODE_CODES = {"direct": "S", "cot": "L", "dual": "SL"}  # S = Direct-Answer, L = CoT, SL = Dual Tuning

# Table 1/2: row -> {benchmark (conf/domain name): (Eval-S, Eval-L)}; "Baseline" is the untuned model.
TABLE1 = {
    "Baseline": {"vsibench": (39.40, 26.78), "cvbench": (75.17, 73.81)},
    "E1: I-S": {"vsibench": (37.94, 37.34), "cvbench": (84.15, 84.27)},
    "E2: I-L": {"vsibench": (12.96, 37.38), "cvbench": (75.51, 80.55)},
    "E3: V-S": {"vsibench": (50.98, 50.50), "cvbench": (78.20, 77.82)},
    "E4: V-L": {"vsibench": (0.00, 44.14), "cvbench": (37.72, 73.09)},
    "E5: IV-SL": {"vsibench": (51.35, 43.26), "cvbench": (84.00, 80.25)},
}
TABLE2 = {
    "Baseline": {"mathvista": (69.80, 69.83), "mmmu": (53.33, 51.56)},
    "E6: O-S": {"mathvista": (67.43, 67.43), "mmmu": (52.00, 51.00)},
    "E7: O-L": {"mathvista": (59.13, 73.40), "mmmu": (25.89, 53.33)},
    "E8: O-SL": {"mathvista": (67.37, 72.87), "mmmu": (51.00, 54.11)},
}
# Table 3 (Dual Tuning = E5): (benchmark, repo subtask name or "ALL") -> (paper task name, B_S, B_L, DT_S, DT_L).
# The gaps, gains and regions follow from these with `dualtune.boundary.boundary_metrics`; the printed ones
# agree to rounding (digest §2.2), so only the four accuracies are stored.
TABLE3 = {
    ("vsibench", "ALL"): ("VSIBench", 37.57, 24.91, 51.35, 43.26),
    ("vsibench", "object_counting"): ("Obj. Count", 40.41, 12.19, 49.65, 43.47),
    ("vsibench", "object_abs_distance"): ("Abs. Dist.", 22.88, 1.80, 40.17, 29.68),
    ("vsibench", "object_size_estimation"): ("Obj. Size", 50.18, 12.34, 64.30, 50.97),
    ("vsibench", "room_size_estimation"): ("Room Size", 38.96, 22.71, 56.98, 38.72),
    ("vsibench", "object_rel_distance"): ("Rel. Dist.", 39.44, 40.14, 58.31, 48.03),
    ("vsibench", "object_rel_direction"): ("Rel. Dir.", 39.66, 39.57, 44.44, 43.82),
    ("vsibench", "route_planning"): ("Route Plan", 32.47, 32.47, 34.02, 32.47),
    ("vsibench", "obj_appearance_order"): ("Appr. Order", 36.57, 38.03, 62.94, 58.90),
    ("cvbench", "ALL"): ("CVBench", 75.17, 73.81, 84.00, 80.25),
    ("cvbench", "Count"): ("Count", 64.72, 62.94, 70.94, 61.80),
    ("cvbench", "Relation"): ("Relation", 87.69, 86.46, 95.69, 92.92),
    ("cvbench", "Depth"): ("Depth", 70.17, 72.00, 87.00, 87.00),
    ("cvbench", "Distance"): ("Distance", 80.33, 76.17, 85.50, 84.00),
}
SOURCES = {"table1": "Table 1 (spatial preliminaries, E1-E5)", "table2": "Table 2 (disciplinary, E6-E8)",
           "table3": "Table 3 (Thinking Boundary, spatial, Dual Tuning = E5)"}


def applies(model: str | None, benchmark: str) -> bool:
    """True when the paper measured ``benchmark`` (a conf/domain name) with ``model`` (a conf/model name)."""
    benchmarks = {b for table in (TABLE1, TABLE2) for row in table.values() for b in row}
    return model == MODEL and benchmark in benchmarks


def table3_row(benchmark: str, subtask: str) -> dict | None:
    """The paper's Table 3 row for a repo (domain, subtask) with gaps, gains and region, or None."""
    from dualtune.boundary import boundary_metrics, classify_region

    entry = TABLE3.get((benchmark, subtask))
    if entry is None:
        return None
    name, *accs = entry
    m = boundary_metrics(*accs)
    return {"task": name, **dict(zip(("B_S", "B_L", "DT_S", "DT_L"), accs)), "GAP_B": m["GAP_B"],
            "GAP_DT": m["GAP_DT"], "Gain_DA": m["Gain_DA"], "Gain_CoT": m["Gain_CoT"],
            "region": classify_region(m["Gain_DA"], m["Gain_CoT"], m["GAP_DT"])}
