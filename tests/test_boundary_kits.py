"""The Thinking Boundary from lmms-eval / VLMEvalKit per-sample files (dualtune.evaluation.kits, boundary CLI).

The fixtures are written in the kits' documented per-sample formats: lmms-eval ``--log_samples``
(``<date>_samples_<task>.jsonl``: doc_id, doc, target, arguments, resps, filtered_resps, hashes + one key per
metric of ``process_results``) and VLMEvalKit's judged MCQ table (``<model>_<dataset>_<judge>_result.xlsx``:
index, question, A-D, answer, category, l2-category, prediction, hit).
"""
import json
import subprocess
import sys

import pandas as pd
import pytest

from dualtune.boundary import boundary_report, main
from dualtune.evaluation.kit_scores import mmmu_score, value_score
from dualtune.evaluation.kits import kit_items, read_lmms_eval, read_vlmevalkit

RUNS = ("B_S", "B_L", "DT_S", "DT_L")
FLAGS = {"B_S": "--base-direct", "B_L": "--base-cot", "DT_S": "--tuned-direct", "DT_L": "--tuned-cot"}
# Per-item correctness (ids 0-3: subtask "count", ids 4-7: subtask "color").
CORRECT = {
    "B_S": [1, 0, 0, 0, 1, 1, 0, 0],
    "B_L": [1, 1, 0, 0, 1, 0, 0, 0],
    "DT_S": [1, 1, 0, 0, 1, 1, 1, 1],
    "DT_L": [1, 1, 1, 0, 1, 1, 1, 0],
}
SUBTASK = ["count"] * 4 + ["color"] * 4
# Hand-computed (accuracies in %):
# count: B_S 25, B_L 50, DT_S 50, DT_L 75; B_max 50; GAP_DT 25; Gain_DA (50-50)/50 = 0; Gain_CoT 25/50 = 50 -> cot
# color: B_S 50, B_L 25, DT_S 100, DT_L 75; B_max 50; GAP_DT -25; Gain_DA 50/50 = 100; Gain_CoT 25/50 = 50 -> direct
# ALL (8 items): B_S 37.5, B_L 37.5, DT_S 75, DT_L 75; GAP_DT 0; Gain_DA = Gain_CoT = 37.5/37.5 = 100 -> tie
EXPECTED = {
    "count": dict(B_S=25, B_L=50, DT_S=50, DT_L=75, GAP_B=25, GAP_DT=25, Gain_DA=0, Gain_CoT=50, region="cot"),
    "color": dict(B_S=50, B_L=25, DT_S=100, DT_L=75, GAP_B=-25, GAP_DT=-25, Gain_DA=100, Gain_CoT=50,
                  region="direct"),
    "ALL": dict(B_S=37.5, B_L=37.5, DT_S=75, DT_L=75, GAP_B=0, GAP_DT=0, Gain_DA=100, Gain_CoT=100, region="tie"),
}


def _check_rows(rows: dict):
    """``rows``: subtask -> row dict (report row or CLI CSV row); compared with EXPECTED."""
    for subtask, want in EXPECTED.items():
        got = rows[subtask]
        assert got["region"] == want["region"], subtask
        for key, value in want.items():
            if key != "region":
                assert got[key] == pytest.approx(value, abs=0.01), (subtask, key)


def _lmms_sample(doc_id, doc, metrics):
    """One line of an lmms-eval ``--log_samples`` JSONL file."""
    context = f"{doc['question']}\nAnswer with the option's letter."
    return {"doc_id": doc_id, "doc": doc, "target": doc["answer"],
            "arguments": [context, {"max_new_tokens": 16, "temperature": 0}, "mytask", "test"],
            "resps": [["A"]], "filtered_resps": ["A"], "doc_hash": f"h{doc_id}", "prompt_hash": "p",
            "target_hash": "t", **metrics}


def _write_lmms(tmp_path, run, task, metric_of, name=None, id_offset=0):
    path = tmp_path / run / "qwen2_5_vl" / f"20250101_000000_samples_{name or task}.jsonl"
    path.parent.mkdir(parents=True)
    lines = []
    for i, ok in enumerate(CORRECT[run]):
        doc = {"question_id": f"q{i}", "question": f"How many? ({i})", "answer": "A", "category": SUBTASK[i]}
        lines.append(json.dumps(_lmms_sample(i + id_offset, doc, metric_of(i, ok))))
    path.write_text("\n".join(lines) + "\n")
    return path


def _lmms_numeric(tmp_path, bools_for=("DT_S", "DT_L")):
    """exact_match as 1.0/0.0 (base runs) and as true/false (tuned runs)."""
    return {run: _write_lmms(tmp_path, run, "mytask",
                             lambda i, ok, r=run: {"exact_match": bool(ok) if r in bools_for else float(ok)})
            for run in RUNS}


def _mmmu_entry(i, ok):
    """lmms-eval's mmmu_acc dict (older releases: parsed_pred a letter / a candidate list per response)."""
    subdomain = "Math" if SUBTASK[i] == "count" else "Art"
    if i % 2 == 0:  # multiple choice
        return {"id": f"validation_{subdomain}_{i}", "subdomain": subdomain, "question_type": "multiple-choice",
                "answer": "B", "parsed_pred": "B" if ok else "C"}
    return {"id": f"validation_{subdomain}_{i}", "subdomain": subdomain, "question_type": "open",
            "answer": "3.5", "parsed_pred": ["x = 3.5 m", 3.5] if ok else ["4", 4.0]}


def _paths_args(paths):
    return [arg for run in RUNS for arg in (FLAGS[run], str(paths[run]))]


# ---------------------------------------------------------------- scoring rules
def test_value_score_types_and_errors():
    assert [value_score(v) for v in (True, False, 1, 0.0, 0.5, "True", "false", " 1 ")] == [1, 0, 1, 0, .5, 1, 0, 1]
    assert value_score({"true_false": True, "extraction": "B"}) == 1  # mathvista gpt-eval dict
    assert value_score({"score": ["1"]}) == 1  # mmmu judge dict (one response, judged "1")
    assert value_score([1, 0, 1, 1]) == 0.75  # several samples per item: mean accuracy
    for bad, message in ((3.0, "outside"), ("B", "not a score"), ({"pred": "B"}, "correctness field"),
                         (None, "NoneType"), ([], "empty")):
        with pytest.raises(ValueError, match=message):
            value_score(bad)


def test_mmmu_score_rule():
    mc = {"question_type": "multiple-choice", "answer": "B"}
    assert mmmu_score({**mc, "parsed_pred": "B"}) == 1 and mmmu_score({**mc, "parsed_pred": "b"}) == 0
    assert mmmu_score({**mc, "parsed_pred": ["B", "C"]}) == 0.5  # newer lmms-eval: one pred per response
    assert mmmu_score({**mc, "answer": ["A", "B"], "parsed_pred": "B"}) == 1
    num = {"question_type": "open", "answer": "1,200"}
    assert mmmu_score({**num, "parsed_pred": ["about 1200", 1200.0]}) == 1  # numbers: equal after rounding
    assert mmmu_score({**num, "parsed_pred": ["1,200 apples"]}) == 0  # text never matches a numeric answer
    text = {"question_type": "open", "answer": "Paris"}
    assert mmmu_score({**text, "parsed_pred": ["the capital is paris"]}) == 1  # substring, lower-cased
    assert mmmu_score({**text, "parsed_pred": [["paris"], ["lyon"]]}) == 0.5  # newer: a list per response
    letter = {"question_type": "open", "answer": "b"}
    assert mmmu_score({**letter, "parsed_pred": [" b", "b "]}) == 1
    assert mmmu_score({**letter, "parsed_pred": ["b"]}) == 1  # a one-character candidate counts as padded
    assert mmmu_score({**letter, "parsed_pred": ["abc"]}) == 0  # a one-character answer needs a space


# ---------------------------------------------------------------- lmms-eval
def test_lmms_eval_numeric_metric_function(tmp_path):
    paths = _lmms_numeric(tmp_path)
    run = read_lmms_eval(paths["B_S"])
    assert (run.name, run.metric) == ("mytask", "exact_match")  # auto: the only scoring key
    items, summary = kit_items("lmms-eval", paths, subtask_field="category")
    assert summary["paired"] == 8 and set(summary["unpaired"].values()) == {0}
    assert {it["domain"] for it in items} == {"mytask"}
    report = boundary_report(items, n_boot=200)
    rows = {r["subtask"]: r for r in report["subtasks"]} | {"ALL": report["aggregates"][0]}
    _check_rows(rows)
    # Default subtask: one, named after the task (file name <date>_samples_<task>.jsonl).
    items, _ = kit_items("lmms-eval", paths, domain="mybench")
    assert {(it["domain"], it["subtask"]) for it in items} == {("mybench", "mytask")}


def test_lmms_eval_cli_subprocess(tmp_path):
    paths = _lmms_numeric(tmp_path)
    out, report_dir = tmp_path / "boundary.csv", tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "dualtune.boundary", "--kit", "lmms-eval", *_paths_args(paths),
                           "--subtask-field", "category", "--n-boot", "200", "-o", str(out),
                           "--report-dir", str(report_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '"paired": 8' in proc.stderr
    table = pd.read_csv(out)
    assert {"Gain_DA_lo", "Gain_DA_hi", "uncertain", "row_type"} <= set(table.columns)
    _check_rows({r["subtask"]: r for r in table.to_dict("records")})
    assert {p.name for p in report_dir.iterdir()} == {f"thinking_boundary.{e}" for e in ("json", "csv", "md")}
    config = json.loads((report_dir / "thinking_boundary.json").read_text())["config"]
    assert config["metrics"] == {"base-direct": "exact_match", "base-cot": "exact_match",
                                 "tuned-direct": "exact_match", "tuned-cot": "exact_match"}


def test_lmms_eval_mmmu_dict_metric(tmp_path, capsys):
    # Newer lmms-eval writes the same dict under mmmu_acc and mmmu_acc_pass_at_k; the CoT runs here come from
    # a differently named task (file name) with the same docs.
    paths = {run: _write_lmms(tmp_path, run, "mmmu_val", lambda i, ok: {"mmmu_acc": _mmmu_entry(i, ok),
                                                                        "mmmu_acc_pass_at_k": _mmmu_entry(i, ok)},
                              name="mmmu_val" if run.endswith("S") else "mmmu_val_cot") for run in RUNS}
    with pytest.raises(ValueError, match=r"2 scoring keys: \['mmmu_acc', 'mmmu_acc_pass_at_k'\]"):
        kit_items("lmms-eval", paths)
    out = tmp_path / "mmmu.csv"
    assert main(["--kit", "lmms-eval", *_paths_args(paths), "--metric", "mmmu_acc", "--subtask-field", "subdomain",
                 "--n-boot", "100", "-o", str(out)]) == 0
    table = pd.read_csv(out)
    rows = {r["subtask"]: r for r in table.to_dict("records")}
    _check_rows({"count": rows["Math"], "color": rows["Art"], "ALL": rows["ALL"]})
    assert set(table["domain"]) == {"mmmu_val"}
    # The id can come from the metric dict (MMMU's "validation_<subject>_<n>") instead of doc_id.
    items, _ = kit_items("lmms-eval", paths, metric="mmmu_acc", id_field="id")
    assert items[0]["id"] == "validation_Math_0"


def test_lmms_eval_older_json_logs(tmp_path):
    """Older lmms-eval: ``<task>.json`` = {"args", "model_configs", "logs": [samples]}."""
    paths = {}
    for run in RUNS:
        logs = [_lmms_sample(i, {"question": "q", "answer": "A"}, {"exact_match": float(ok)})
                for i, ok in enumerate(CORRECT[run])]
        paths[run] = tmp_path / f"{run}" / "mytask.json"
        paths[run].parent.mkdir()
        paths[run].write_text(json.dumps({"args": {}, "model_configs": {}, "logs": logs}))
    items, summary = kit_items("lmms-eval", paths)
    assert summary["paired"] == 8 and items[0]["domain"] == "mytask"
    assert [it["B_L"] for it in items] == CORRECT["B_L"]


def test_lmms_eval_errors(tmp_path, capsys):
    paths = _lmms_numeric(tmp_path)
    with pytest.raises(ValueError, match=r"no metric 'accuracy'; metric keys found: \['exact_match'\]"):
        read_lmms_eval(paths["B_S"], metric="accuracy")
    with pytest.raises(SystemExit):  # the CLI turns it into a usage error naming the keys
        main(["--kit", "lmms-eval", *_paths_args(paths), "--metric", "accuracy"])
    assert "metric keys found: ['exact_match']" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no subtask field 'subject'"):
        read_lmms_eval(paths["B_S"], subtask_field="subject")
    with pytest.raises(ValueError, match="missing: --tuned-cot"):
        kit_items("lmms-eval", {k: v for k, v in paths.items() if k != "DT_L"})
    with pytest.raises(SystemExit):
        main([str(paths["B_S"]), "--kit", "lmms-eval"])
    # Duplicate ids within one file are an error naming them.
    lines = paths["B_L"].read_text().splitlines()
    paths["B_L"].write_text("\n".join(lines + [lines[2], lines[5]]) + "\n")
    with pytest.raises(ValueError, match=r"2 duplicate id\(s\) \['2', '5'\]"):
        kit_items("lmms-eval", paths)
    # A metric outside [0, 1] names the sample.
    bad = tmp_path / "bad_samples_x.jsonl"
    bad.write_text(json.dumps(_lmms_sample(7, {"question": "q", "answer": "A"}, {"bleu": 37.2})) + "\n")
    with pytest.raises(ValueError, match="sample 7, metric 'bleu': 37.2 is outside"):
        read_lmms_eval(bad, metric="bleu")


def test_unpaired_ids_counted_and_no_pairs_error(tmp_path, caplog):
    paths = _lmms_numeric(tmp_path)
    extra = json.dumps(_lmms_sample(99, {"question": "q", "answer": "A", "category": "count"}, {"exact_match": 1}))
    paths["B_S"].write_text(paths["B_S"].read_text() + extra + "\n")
    lines = paths["DT_L"].read_text().splitlines()
    paths["DT_L"].write_text("\n".join(lines[1:]) + "\n")  # tuned-cot lacks doc 0
    with caplog.at_level("WARNING"):
        items, summary = kit_items("lmms-eval", paths)
    assert summary["paired"] == 7 and sorted(it["id"] for it in items) == [str(i) for i in range(1, 8)]
    # id 99 is only in base-direct; id 0 is missing from tuned-cot only.
    assert summary["unpaired"] == {"base-direct": 0, "base-cot": 1, "tuned-direct": 1, "tuned-cot": 2}
    assert "2 ids are not in all four files" in caplog.text
    shifted = _write_lmms(tmp_path / "other", "DT_L", "mytask", lambda i, ok: {"exact_match": ok}, id_offset=100)
    with pytest.raises(ValueError, match="no item id is in all four files"):
        kit_items("lmms-eval", {**paths, "DT_L": shifted})


# ---------------------------------------------------------------- VLMEvalKit
def _vlmeval_frame(run):
    letters = "ABCD"
    rows = []
    for i, ok in enumerate(CORRECT[run]):
        answer = letters[i % 4]
        rows.append({"index": 1000 + i, "question": f"Which one? ({i})", "A": "cat", "B": "dog", "C": "cow",
                     "D": "pig", "answer": answer, "category": SUBTASK[i], "l2-category": "perception",
                     "split": "dev", "prediction": answer if ok else letters[(i + 1) % 4], "hit": ok,
                     "log": "Match Log: ..."})
    return pd.DataFrame(rows)


def _write_vlmeval(tmp_path, suffix):
    paths = {}
    for run in RUNS:
        path = tmp_path / run / f"Qwen2.5-VL-7B-{run}_MMBench_DEV_EN_gpt-4o-mini_result.{suffix}"
        path.parent.mkdir(parents=True)
        df = _vlmeval_frame(run)
        if suffix == "xlsx":
            df.to_excel(path, index=False)
        else:
            df.to_csv(path, index=False, sep="\t" if suffix == "tsv" else ",")
        paths[run] = path
    return paths


def test_vlmevalkit_xlsx_cli_subprocess(tmp_path):
    pytest.importorskip("openpyxl")
    paths = _write_vlmeval(tmp_path, "xlsx")
    out = tmp_path / "boundary.csv"
    proc = subprocess.run([sys.executable, "-m", "dualtune.boundary", "--kit", "vlmevalkit", *_paths_args(paths),
                           "--domain", "MMBench", "--n-boot", "200", "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert set(table["domain"]) == {"MMBench"}
    _check_rows({r["subtask"]: r for r in table.to_dict("records")})  # hit + category (the defaults)


def test_vlmevalkit_csv_tsv_and_yes_no_score(tmp_path):
    paths = _write_vlmeval(tmp_path, "tsv")
    run = read_vlmevalkit(paths["B_S"])
    assert run.metric == "hit" and run.name == "Qwen2.5-VL-7B-B_S_MMBench_DEV_EN_gpt-4o-mini"
    items, _ = kit_items("vlmevalkit", paths)
    report = boundary_report(items, n_boot=100)
    _check_rows({r["subtask"]: r for r in report["subtasks"]} | {"ALL": report["aggregates"][0]})
    # A Y/N dataset's table: a bool `score` column (True/False in csv), no category -> one subtask.
    for run, path in paths.items():
        df = _vlmeval_frame(run).drop(columns=["hit", "category"])
        df["score"] = df["answer"] == df["prediction"]
        df.to_csv(path.with_suffix(".csv"), index=False)
    items, _ = kit_items("vlmevalkit", {r: p.with_suffix(".csv") for r, p in paths.items()}, domain="POPE")
    assert {it["subtask"] for it in items} == {"POPE"} and [it["DT_S"] for it in items] == CORRECT["DT_S"]


def test_vlmevalkit_errors(tmp_path):
    paths = _write_vlmeval(tmp_path, "csv")
    raw = tmp_path / "Qwen2.5-VL-7B_MMBench_DEV_EN.csv"  # the prediction file, before judging: no hit column
    _vlmeval_frame("B_S").drop(columns=["hit"]).to_csv(raw, index=False)
    with pytest.raises(ValueError, match=r"no score column .*columns found: \['index', 'question'"):
        read_vlmevalkit(raw)
    with pytest.raises(ValueError, match="no score column 'acc'"):
        read_vlmevalkit(paths["B_S"], metric="acc")
    with pytest.raises(ValueError, match="no subtask column 'l3-category'"):
        read_vlmevalkit(paths["B_S"], subtask_field="l3-category")
    df = _vlmeval_frame("B_L")
    pd.concat([df, df.iloc[[3]]]).to_csv(paths["B_L"], index=False)
    with pytest.raises(ValueError, match=r"duplicate id\(s\) \['1003'\]"):
        kit_items("vlmevalkit", paths)
    df.assign(hit=[1, 0, 2, 0, 1, 0, 0, 0]).to_csv(paths["B_L"], index=False)
    with pytest.raises(ValueError, match="row index=1002, column 'hit': 2.0 is outside"):
        read_vlmevalkit(paths["B_L"])
    with pytest.raises(ValueError, match="unsupported suffix '.parquet'"):
        read_vlmevalkit(tmp_path / "x.parquet")
