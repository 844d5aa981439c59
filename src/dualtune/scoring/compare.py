"""Compare training runs that differ only in their data selection (RAP vs random vs full, ...).

    python -m dualtune.scoring.compare rap=<train run dir> random=<run dir> full=<run dir>

Each run dir is a `python train.py selection=...` run: it holds ``thinking_boundary.json`` (base and
tuned accuracies in both modes), ``timings.json`` (stage wall times), ``selection.json`` (kept count
and scoring cost; absent for ``selection=full``, whose size comes from ``curation/manifest.json``) and
``checkpoints/last.ckpt`` (optimizer steps).
The table reports, per run, the aggregate row of the boundary report (pooled over the domain's items).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = ("run", "train samples", "SFT steps", "SFT wall s", "scoring wall s", "B_S", "B_L", "DT_S", "DT_L")


def _read_json(path: Path) -> dict | None:
    """The JSON object at ``path``, or None when the file does not exist."""
    return json.loads(path.read_text()) if path.is_file() else None


def optimizer_steps(run_dir: Path) -> int | None:
    """``global_step`` of the run's last Lightning checkpoint (None without one)."""
    ckpt = Path(run_dir) / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        return None
    import torch

    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"])


def overall_row(report: dict) -> dict:
    """A boundary report's overall ALL row: domain ``"all"`` when present, else the last ALL row."""
    overall = [a for a in report["aggregates"] if a["subtask"] == "ALL"]
    return next((a for a in overall if a["domain"] == "all"), overall[-1])


def run_summary(name: str, run_dir, steps: bool = True) -> dict:
    """One comparison row for a train run dir (see the module docstring for the files it reads);
    ``steps=False`` leaves "SFT steps" None instead of loading the checkpoint."""
    run_dir = Path(run_dir)
    report = _read_json(run_dir / "thinking_boundary.json")
    if report is None:
        raise FileNotFoundError(f"{run_dir}: no thinking_boundary.json (not a finished train.py run dir?)")
    overall = overall_row(report)
    timings = _read_json(run_dir / "timings.json") or {}
    selection = _read_json(run_dir / "selection.json")
    sft_wall = next((v for k, v in timings.items() if k.startswith(("sft", "grpo", "fit"))), None)
    scoring = (selection or {}).get("cost", {}).get("scoring", {}).get("total", {}).get("wall_s")
    # selection=full writes no selection.json; its curation manifest routes every training id.
    manifest = _read_json(run_dir / "curation" / "manifest.json") or {}
    n_routed = sum(len(ids) for ids in manifest.get("routes", {}).values()) or None
    n_train = selection["n_kept"] if selection else n_routed
    # Samples flagged language_prior in the data (the selection lab plants them) that the selection kept.
    lp_kept = [s["language_prior_kept"] for s in (selection or {}).get("by_subtask", {}).values()
               if "language_prior_kept" in s]
    return {"run": name, "train samples": n_train, "SFT steps": optimizer_steps(run_dir) if steps else None,
            "SFT wall s": sft_wall, "scoring wall s": scoring, "language-prior kept": sum(lp_kept) if lp_kept else None,
            **{k: overall[k] for k in ("B_S", "B_L", "DT_S", "DT_L")}}


def markdown_table(rows: list[dict]) -> str:
    """Rows as a GitHub markdown table (None shown as an em dash)."""
    fmt = lambda v: "—" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None) -> str:
    """CLI: ``name=run_dir`` pairs in (a name holds no "="); the markdown table out (printed and returned)."""
    pairs = [arg.split("=", 1) for arg in (sys.argv[1:] if argv is None else argv)]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise SystemExit("usage: python -m dualtune.scoring.compare name=<train run dir> [name=<dir> ...]")
    table = markdown_table([run_summary(name, path) for name, path in pairs])
    print(table)
    return table


if __name__ == "__main__":
    main()
