"""Route training samples by their subtask's Thinking-Boundary region (the paper's data curation).

cot -> ``reasoning`` (train with CoT targets), direct -> ``direct`` (train with DA targets),
negative -> ``drop``. A ``tie`` (no region established) goes to ``tie_route`` (default ``direct``: when
reasoning is not shown to help, the cheaper DA training is the conservative choice). The manifest is
read back by ``selection=boundary``. Splitting the data into parts by one gain instead (the data-refinement
validation, Figs. 5-7, ``selection=refine``): `dualtune.curation_split`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

ROUTES = ("reasoning", "direct", "drop")
REGION_TO_ROUTE = {"cot": "reasoning", "direct": "direct", "negative": "drop"}


def route_for(region: str, tie_route: str = "direct") -> str:
    """The curation route of a region (``tie`` goes to ``tie_route``)."""
    if tie_route not in ROUTES:
        raise ValueError(f"tie_route must be one of {ROUTES}, got {tie_route!r}")
    return REGION_TO_ROUTE.get(region, tie_route)


def build_manifest(subtask_rows: list[dict], train_samples: list[dict], tie_route: str = "direct") -> dict:
    """Map every training sample id to a route via its (domain, subtask) region in ``subtask_rows``."""
    region = {(r["domain"], r["subtask"]): r["region"] for r in subtask_rows}
    routes, unrouted = defaultdict(list), []
    for s in train_samples:
        key = (s["domain"], s["subtask"])
        if key not in region:
            unrouted.append(s["id"])
            continue
        routes[route_for(region[key], tie_route)].append(s["id"])
    return {
        "routes": {r: sorted(routes.get(r, [])) for r in ROUTES},
        "subtasks": [{"domain": d, "subtask": t, "region": reg, "route": route_for(reg, tie_route)}
                     for (d, t), reg in sorted(region.items())],
        "tie_route": tie_route,
        "unrouted": sorted(unrouted),  # training samples of subtasks absent from the eval report
    }


def write_manifest(manifest: dict, out_dir) -> Path:
    """Write ``manifest.json`` and one ``<route>.txt`` id list per route into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for route, ids in manifest["routes"].items():
        (out / f"{route}.txt").write_text("".join(f"{i}\n" for i in ids))
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    return path


def read_manifest(path) -> dict:
    """Load a manifest written by `write_manifest` (a file or its directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no curation manifest at {path}; run `python train.py` first")
    return json.loads(path.read_text())
