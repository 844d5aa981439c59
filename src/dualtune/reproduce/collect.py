"""Find the run dirs of a sweep and identify each run by its resolved config, never by its dir name.

A run dir is any folder under the sweep root holding ``.hydra/config.yaml`` (written by Hydra for every job
of ``python train.py -m ...`` / ``evaluate.py -m``) and at least one result file (`RESULT_FILES`), or a
``thinking_boundary.json`` that carries its config (a ``train.py output_dir=<dir>`` run); a dir with a
config but no results (a crashed or still-running job) is counted and logged, not read.

Identity: the resolved config with its run-location keys (`LOCATION_KEYS`) and every ``seed`` leaf removed
is the run's *configuration*; runs that share it differ only by seed and are aggregated (mean ± std). A
string value pointing inside another collected run (``init_from=<dual run>/model``,
``selection.manifest=<run>/curation``) is replaced by that run's configuration label, so the RL runs
started from each seed's checkpoint still share one configuration.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

BOUNDARY = "thinking_boundary.json"
RESULT_FILES = (BOUNDARY, "eval_tuned/eval_summary.json", "eval_base/eval_summary.json", "eval_summary.json")
LOCATION_KEYS = ("output_dir", "cache_dir", "ckpt_path", "task_name")  # where a run writes, not what it is
LOCATION_GROUPS = ("logger", "trainer")  # logging and hardware: not part of what is being compared
GROUPS = ("model", "domain", "mode", "algo", "selection")  # config groups named by their ``name`` key


@dataclass
class Run:
    """One finished job of a sweep: where it is, its resolved config and its result files (parsed)."""

    path: Path
    config: dict
    overrides: list[str]
    seed: int
    boundary: dict | None = None  # thinking_boundary.json
    eval_base: dict | None = None  # eval_base/eval_summary.json (evaluate.py: its eval_summary.json, base model)
    eval_tuned: dict | None = None  # eval_tuned/eval_summary.json (evaluate.py with a checkpoint)
    identity: dict = field(default_factory=dict)  # flat config leaves that define the configuration
    label: str = ""  # the configuration's short name (the keys that vary across the sweep)

    def get(self, dotted: str, default=None):
        """A config value by dotted key (``"domain.name"``), or ``default``."""
        node = self.config
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def predictions(self, which: str) -> Path | None:
        """``eval_<which>/predictions.jsonl`` (evaluate.py dirs: ``predictions.jsonl``), or None."""
        for path in (self.path / f"eval_{which}" / "predictions.jsonl", self.path / "predictions.jsonl"):
            if path.is_file():
                return path
        return None


def _read_json(path: Path) -> dict | None:
    """The JSON at ``path``, or None if the file is absent."""
    return json.loads(path.read_text()) if path.is_file() else None


def load_config(run_dir: Path) -> dict:
    """The run's resolved config: the one saved in its boundary report, else ``.hydra/config.yaml`` resolved
    (unresolved where an interpolation needs the original environment)."""
    from omegaconf import OmegaConf

    saved = (_read_json(run_dir / BOUNDARY) or {}).get("config")
    if saved:
        return saved
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception as err:  # noqa: BLE001 - e.g. ${oc.env:...} of a variable not set here
        log.warning("%s: config not fully resolvable (%s); using it unresolved", run_dir, err)
        return OmegaConf.to_container(cfg, resolve=False)


def flatten(node, prefix: str = "") -> dict:
    """Nested dicts as ``{"a.b.c": leaf}`` (lists stay leaves, as JSON text so they compare and hash)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: json.dumps(node) if isinstance(node, list) else node}


def is_seed_key(key: str) -> bool:
    """True for ``seed`` and every ``*.seed`` leaf (``selection.seed: ${seed}`` follows the run's seed)."""
    return key.rsplit(".", 1)[-1] == "seed"


def identity_of(config: dict) -> dict:
    """The flat config leaves that define a configuration (no seeds, no run locations, no logger/trainer).
    A null leaf counts as absent: a key that a later version added with a null default (read with ``.get``,
    so null and absent behave alike) does not split runs made before and after it into two configurations."""
    return {k: v for k, v in flatten(config).items()
            if v is not None and not is_seed_key(k) and k not in LOCATION_KEYS
            and k.split(".", 1)[0] not in LOCATION_GROUPS}


SEED_PLACEHOLDER = "{seed}"


def seed_templates(run_dir: Path) -> dict:
    """Flat config leaves whose value follows the run's seed through an interpolation (e.g.
    ``rl_init.math: <sweep>/..._seed${seed}/model`` and ``init_from: ${rl_init.${domain.name}}``), as their value
    with the seed written ``{seed}``: a per-seed checkpoint path is then the same configuration for every seed.
    Read from the unresolved ``.hydra/config.yaml``; a leaf that does not resolve here is left out."""
    from omegaconf import OmegaConf

    path = run_dir / ".hydra" / "config.yaml"
    if not path.is_file():
        return {}
    cfg = OmegaConf.load(path)
    if "seed" not in cfg:
        return {}
    cfg.seed = SEED_PLACEHOLDER
    out = {}
    for key, value in flatten(OmegaConf.to_container(cfg, resolve=False)).items():
        if not (isinstance(value, str) and "${" in value) or is_seed_key(key):
            continue
        try:
            resolved = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
        except Exception:  # noqa: BLE001 - e.g. ${hydra:...} outside a Hydra run
            continue
        if isinstance(resolved, str) and SEED_PLACEHOLDER in resolved:
            out[key] = resolved
    return out


def find_run_dirs(root) -> tuple[list[Path], list[Path]]:
    """``(run dirs with results, dirs with a config but no result file)`` under ``root``, sorted. A run made
    with ``output_dir=<dir>`` has its ``.hydra`` folder in Hydra's own run dir; its boundary report, which
    carries the resolved config, makes ``<dir>`` a run dir too."""
    found, empty = [], []
    for cfg in sorted(Path(root).rglob(".hydra/config.yaml")):
        run_dir = cfg.parent.parent
        (found if any((run_dir / f).is_file() for f in RESULT_FILES) else empty).append(run_dir)
    for report in sorted(Path(root).rglob(BOUNDARY)):
        run_dir = report.parent
        if run_dir not in found and (_read_json(report) or {}).get("config"):
            found.append(run_dir)
    return sorted(found), empty


def read_run(run_dir: Path) -> Run:
    """Parse one run dir (config, overrides, result files)."""
    from omegaconf import OmegaConf

    config = load_config(run_dir)
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() else []
    run = Run(path=run_dir, config=config, overrides=overrides, seed=int(config.get("seed", 0)),
              boundary=_read_json(run_dir / BOUNDARY))
    run.eval_base = _read_json(run_dir / "eval_base" / "eval_summary.json")
    run.eval_tuned = _read_json(run_dir / "eval_tuned" / "eval_summary.json")
    single = _read_json(run_dir / "eval_summary.json")  # an evaluate.py run dir: base model or a checkpoint
    if single is not None:
        if config.get("checkpoint"):
            run.eval_tuned = run.eval_tuned or single
        else:
            run.eval_base = run.eval_base or single
    return run


def _linked(identity: dict, run: Run, runs: list[Run], labels: dict) -> dict:
    """``identity`` with every string leaf that points inside another collected run replaced by
    ``<run: its label>/<rest>`` (``<run>`` while ``labels`` has none yet)."""
    out = dict(identity)
    roots = sorted(((r.path.resolve(), r) for r in runs if r is not run), key=lambda x: -len(str(x[0])))
    for key, value in identity.items():
        if not isinstance(value, str) or "/" not in value:
            continue
        target = Path(value).resolve()
        for root, other in roots:
            if target == root or root in target.parents:
                rest = target.relative_to(root).as_posix()
                name = f"<run: {labels[other.path]}>" if other.path in labels else "<run>"
                out[key] = name + ("" if rest == "." else f"/{rest}")
                break
    return out


def varying_keys(identities: list[dict]) -> list[str]:
    """Keys whose value differs between configurations, a group's sub-keys dropped where its name explains
    them (``mode=cot`` instead of every ``mode.*`` leaf that changes with it)."""
    keys = sorted({k for ident in identities for k in ident})
    varying = [k for k in keys if len({json.dumps(i.get(k), default=str) for i in identities}) > 1]
    out = []
    for key in varying:
        group = key.split(".", 1)[0]
        if group in GROUPS and key != f"{group}.name" and f"{group}.name" in varying:
            by_name = defaultdict(set)
            for ident in identities:
                by_name[ident.get(f"{group}.name")].add(json.dumps(ident.get(key), default=str))
            if all(len(v) == 1 for v in by_name.values()):
                continue  # determined by the group's choice
        out.append(key)
    return out


def _label(identity: dict, varying: list[str]) -> str:
    """``"mode=cot, algo.lr=0.003"`` from the varying keys (``<group>.name`` shown as the group)."""
    parts = []
    names = [f"{g}.name" for g in GROUPS]  # the group choices first, in GROUPS order, then the other keys
    for key in sorted(varying, key=lambda k: (names.index(k) if k in names else len(names), k)):
        name = key[: -len(".name")] if key.endswith(".name") and key.split(".")[0] in GROUPS else key
        parts.append(f"{name}={identity.get(key)}")
    return ", ".join(parts) or "(one configuration)"


def collect(root) -> tuple[list[Run], dict]:
    """Every finished run under ``root`` with its ``identity`` and ``label`` set, and a summary
    ``{"runs", "configurations", "without_results": [dirs]}``. Raises FileNotFoundError when none is found."""
    found, empty = find_run_dirs(root)
    for run_dir in empty:
        log.warning("skipping %s: a Hydra config but no result file (%s)", run_dir, ", ".join(RESULT_FILES))
    if not found:
        raise FileNotFoundError(f"{root}: no run dir (a .hydra/config.yaml next to {' or '.join(RESULT_FILES)})")
    runs = [read_run(d) for d in found]
    raw = []
    for run in runs:  # a value that follows the seed (a per-seed checkpoint) is part of the seed, not the config
        ident = identity_of(run.config)
        ident.update({k: v for k, v in seed_templates(run.path).items() if k in ident})
        raw.append(ident)
    labels: dict[Path, str] = {}
    for _ in range(2):  # labels with links as "<run>" first, then links named by those labels
        for run, ident in zip(runs, raw):
            run.identity = _linked(ident, run, runs, labels)
        distinct = list({json.dumps(r.identity, sort_keys=True, default=str): r.identity for r in runs}.values())
        varying = varying_keys(distinct)
        labels = {run.path: _label(run.identity, varying) for run in runs}
    for run in runs:
        run.label = labels[run.path]
    n_configs = len({json.dumps(r.identity, sort_keys=True, default=str) for r in runs})
    return runs, {"runs": len(runs), "configurations": n_configs, "without_results": [str(d) for d in empty]}


MODE_ORDER = {"direct": 0, "cot": 1, "dual": 2}  # the paper's row order: S, L, SL


def natural_key(label: str) -> tuple:
    """Sort key that orders the numbers inside a label by value (``M=3`` before ``M=16``)."""
    parts = re.split(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)", label)
    return tuple((0, float(p), "") if i % 2 else (1, 0.0, p) for i, p in enumerate(parts))


def group_runs(runs: list[Run]) -> list[tuple[str, list[Run]]]:
    """Runs grouped by configuration (same identity), each group sorted by seed; groups ordered by model,
    training data, mode (S, L, SL) and label."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(json.dumps(run.identity, sort_keys=True, default=str), []).append(run)

    def order(members: list[Run]) -> tuple:
        first = members[0]
        return (str(first.get("model.name")), str(first.get("domain.name")),
                MODE_ORDER.get(first.get("mode.name"), 9), natural_key(first.label))

    return [(m[0].label, sorted(m, key=lambda r: r.seed)) for m in sorted(groups.values(), key=order)]
