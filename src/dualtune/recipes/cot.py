"""The CoT-synthesis recipe: a teacher writes rationales for a domain's training split (rejection sampling).

    python cot.py domain=spatial cot.source_name=spatial_tiny
    python cot.py domain=mm_eureka teacher=qwen2_5_vl_7b generation=vllm cot.tries=8
    python train.py domain=spatial domain.cot_source=spatial_tiny     # train on the synthesized rationales
    python cot.py -m domain=math seed=0,1,2 cot.from_dataset=true cot.variant=condensed cot.source_name=math_short

For each sample the teacher answers the CoT prompt (``mode.templates.cot``) up to ``cot.tries`` times, one
sampled completion per try, through the generation interface (``generation.backend: hf | vllm``). The first
completion that has the `<think>…</think><answer>…</answer>` format (``cot.require_format``) and whose extracted
answer scores correct against the gold (`prompting.answers.score_output` with the domain's numeric metric, the
scorer evaluation uses; correct = score 1) is accepted: its thought is the sample's rationale. A sample no try
gets right keeps no synthesized rationale: ``cot.on_reject=drop`` stores none (training then applies
``domain.cot_source_missing``), ``keep_original`` stores its original one. Batches are written as atomic part
files under ``${cache_dir}/cot_sources/<cot.source_name>/`` (`data.cot_sources`); a rerun skips the ids already
synthesized under the same provenance and refuses a source written under another one.

``cot.from_dataset=true`` (teacher-free; issue 12's thinking-pattern study) builds the source from the data's own
rationales instead (`from_dataset`, with ``cot.variant``: ``condensed`` = a shorter thinking pattern), no
generation: the teacher config only gives the tokenizer of ``n_tokens``. Its provenance leaves out the seed, so
``python cot.py -m seed=0,1,2 ...`` adds the lab data of every seed to one source (rows keyed by id + digest).
"""

from __future__ import annotations

import logging
import re
import shutil
import time

from omegaconf import OmegaConf

from dualtune.config_checks import check_config, require_data
from dualtune.data.cot_sources import CotSourceStore, condense, content_digest, source_dir, summarize
from dualtune.data.sources import limit_samples, load_domain
from dualtune.prompting.answers import cot_format_ok, score_output, thought_text
from dualtune.scoring.store import write_json_atomic
from dualtune.utils.hashing import git_sha, stable_hash
from dualtune.utils.runtime import run_dir, seed_everything, stage, task_wrapper

log = logging.getLogger(__name__)

COT_DEFAULTS = {"source_name": None, "tries": 4, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": None,
                "batch_size": 16, "micro_batch_size": 16, "device": "auto", "limit": None, "on_reject": "drop",
                "require_format": True, "variant": "full", "condensed_sentences": 1, "overwrite": False,
                "from_dataset": False}
PROVENANCE_INFO = ("source_name", "domain", "created", "git_sha", "dualtune_version", "n_samples", "model_path",
                   "hash", "config_hash")


def cot_settings(cfg) -> dict:
    """The ``cot`` block over ``COT_DEFAULTS``; ``max_new_tokens`` null = the teacher's CoT budget (else 160)."""
    block = OmegaConf.to_container(cfg.cot, resolve=True) if cfg.get("cot") is not None else {}
    out = {**COT_DEFAULTS, **{k: v for k, v in block.items() if v is not None}}
    out["max_new_tokens"] = int(out["max_new_tokens"] or (cfg.teacher.get("max_new_tokens") or {}).get("cot") or 160)
    out["source_name"] = str(out["source_name"] or f"{cfg.teacher.name}_{cfg.domain.name}")
    return out


def thought_of(text: str) -> str | None:
    """The thought of a well-formed CoT completion (`prompting.answers.cot_format_ok`: one
    `<think>T</think>` then a non-empty `<answer>A</answer>`, tags not nested), or None; leading / trailing
    whitespace of the thought is stripped."""
    if not cot_format_ok(text):
        return None
    return thought_text(text).strip()


def judge(text: str, sample: dict, metric: str, require_format: bool = True) -> tuple[str | None, float, str | None]:
    """``(rationale, score, reject_reason)`` of one completion: the rationale when it is accepted (reason None);
    reasons: ``bad_format`` (not one thought then one answer block), ``empty_thought``, ``wrong_answer``."""
    _, score = score_output(text, sample, metric)
    thought = thought_of(text)
    if thought is None and require_format:
        return None, score, "bad_format"
    if thought is None:  # no format required: the text before the answer block is the rationale
        thought = re.sub(r"</?think>", "", text.split("<answer>", 1)[0]).strip()
    if not thought:
        return None, score, "empty_thought"
    if score < 1.0 - 1e-9:
        return None, score, "wrong_answer"
    return thought, score, None


def synthesize(generator, samples: list[dict], opts: dict, seed: int, metrics: dict, tokenizer) -> list[dict]:
    """One source row per sample: up to ``opts["tries"]`` sampled completions each (one per try, only for the
    samples still without an accepted one), the first accepted kept; see the module docstring."""
    best: dict[int, dict] = {}
    pending = list(range(len(samples)))
    for attempt in range(int(opts["tries"])):
        if not pending:
            break
        call_seed = int(stable_hash([seed, samples[0]["id"], attempt]), 16) % (2**31)
        outs = generator.generate([samples[i] for i in pending], "cot", n=1, max_new_tokens=opts["max_new_tokens"],
                                  temperature=float(opts["temperature"]), top_p=float(opts["top_p"]), seed=call_seed)
        still = []
        for i, out in zip(pending, outs):
            sample, text = samples[i], out["completion_text"]
            rationale, score, reason = judge(text, sample, metrics.get(sample["domain"], "exact"),
                                             bool(opts["require_format"]))
            best[i] = {"completion": text, "score": score, "reject_reason": reason, "tries_used": attempt + 1,
                       "rationale_full": rationale}
            if rationale is None:
                still.append(i)
        pending = still
    rows = []
    for i, sample in enumerate(samples):
        row = best[i]
        accepted = row["reject_reason"] is None
        full = row["rationale_full"] if accepted else (
            (sample.get("cot") or "").strip() or None if opts["on_reject"] == "keep_original" else None)
        text = condense(full, opts["condensed_sentences"]) if full and opts["variant"] == "condensed" else full
        rows.append({"id": sample["id"], "digest": content_digest(sample), "domain": sample["domain"],
                     "subtask": sample["subtask"], "accepted": accepted,
                     "origin": "teacher" if accepted else ("original" if full else None), "rationale": text,
                     "rationale_full": full, "completion": row["completion"] if accepted else None,
                     "score": float(row["score"]), "tries_used": int(row["tries_used"]),
                     "reject_reason": row["reject_reason"],
                     "n_tokens": len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0})
    return rows


def from_dataset(samples: list[dict], opts: dict, tokenizer) -> list[dict]:
    """Teacher-free source rows: each sample's own rationale (``cot``), condensed with ``cot.variant=condensed``;
    origin ``dataset``; a sample without a rationale is a row with none (reason ``no_rationale``)."""
    rows = []
    for sample in samples:
        full = (sample.get("cot") or "").strip() or None
        text = condense(full, opts["condensed_sentences"]) if full and opts["variant"] == "condensed" else full
        rows.append({"id": sample["id"], "digest": content_digest(sample), "domain": sample["domain"],
                     "subtask": sample["subtask"], "accepted": text is not None,
                     "origin": "dataset" if text else None, "rationale": text, "rationale_full": full,
                     "completion": None, "score": 1.0, "tries_used": 0,
                     "reject_reason": None if text else "no_rationale",
                     "n_tokens": len(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0})
    return rows


def build_provenance(cfg, opts: dict, model_path: str, n_samples: int) -> dict:
    """provenance.json of a source: the matching fields (teacher, decoding, tries, seed, accept rule, variant)
    name it (``hash``); source name, domain, date, version and git sha are informational."""
    from dualtune import __version__
    from dualtune.generation.base import generation_settings
    from dualtune.models.loading import image_bounds, model_fingerprint

    teacher = cfg.teacher
    prov = {
        "version": 1,
        "teacher": {"name": str(teacher.name), "fingerprint": model_fingerprint(model_path),
                    "dtype": teacher.get("dtype"), **image_bounds(teacher)},
        "generation_backend": generation_settings(cfg)["backend"],
        "prompt_template": str(cfg.mode.templates.cot),
        "decoding": {"temperature": float(opts["temperature"]), "top_p": float(opts["top_p"]),
                     "max_new_tokens": int(opts["max_new_tokens"]), "do_sample": True},
        "tries": int(opts["tries"]), "seed": int(cfg.seed),
        "accept": {"rule": "score_output == 1", "require_format": bool(opts["require_format"]),
                   "numeric_metric": OmegaConf.to_container(cfg.domain.numeric_metric, resolve=True)},
        "on_reject": opts["on_reject"], "variant": opts["variant"],
        "condensed_sentences": int(opts["condensed_sentences"]) if opts["variant"] == "condensed" else None,
        "source_name": opts["source_name"], "domain": str(cfg.domain.name), "model_path": model_path,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "git_sha": git_sha(), "dualtune_version": __version__,
        "n_samples": n_samples,
    }
    if opts["from_dataset"]:  # no teacher, no decoding: the data's rationales (any seed's data: ids + digests)
        for key in ("generation_backend", "prompt_template", "decoding", "tries", "seed", "accept", "on_reject"):
            prov.pop(key)
        prov["from_dataset"] = True
    prov["hash"] = stable_hash(_matching(prov))
    return prov


def open_source(cfg, opts: dict, prov: dict) -> CotSourceStore:
    """The source store of ``cot.source_name``, created with ``prov``; an existing one must match it (or is
    deleted first with ``cot.overwrite=true``)."""
    store = CotSourceStore(source_dir(opts["source_name"], cfg.cache_dir))
    stored = store.read_provenance()
    if stored is not None and opts["overwrite"]:
        log.warning("cot.overwrite=true: deleting the CoT source %s", store.path)
        shutil.rmtree(store.path)
        stored = None
    if stored is not None:
        old, new = (_matching(p) for p in (stored, prov))
        if old != new:
            keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise RuntimeError(f"CoT source {store.path} was synthesized under other settings ({keys}); choose "
                               f"another cot.source_name, or cot.overwrite=true to replace it")
    store.init(prov)
    return store


def _matching(prov: dict) -> dict:
    """The fields of a source provenance that must be equal for a rerun to add to the source."""
    return {k: v for k, v in prov.items() if k not in PROVENANCE_INFO}


def load_teacher(cfg, opts: dict, path: str):
    """``(generator, tokenizer)`` for the teacher: `build_generator` with ``cfg.teacher`` as the model config."""
    import torch

    from dualtune.generation.base import build_generator, generation_settings
    from dualtune.models.loading import load_model, processor_for

    teacher = cfg.teacher
    processor = processor_for(path, teacher)
    gen_cfg = OmegaConf.create({"generation": OmegaConf.to_container(cfg.generation, resolve=True)
                                if cfg.get("generation") is not None else {"backend": "hf"},
                                "model": OmegaConf.to_container(teacher, resolve=True)})
    model = None
    if generation_settings(gen_cfg)["backend"] == "hf":
        device = opts["device"] if opts["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        model = load_model(path, teacher, for_training=False).to(device)
    generator = build_generator(gen_cfg, path, processor, model=model, templates=dict(cfg.mode.templates),
                                micro_batch_size=int(opts["micro_batch_size"]), seed=int(cfg.seed))
    return generator, processor.tokenizer


@task_wrapper
def cot(cfg):
    """Synthesize (resuming) the CoT source of ``cfg``; write its merged rows, summary and provenance; return
    the summary."""
    from dualtune.models.base import resolve_model_path

    check_config(cfg, "cot")
    seed_everything(cfg.seed)
    out, opts = run_dir(cfg), cot_settings(cfg)
    with stage("load data"):
        skipped: dict = {}
        data = load_domain(cfg.domain, cfg.cache_dir, seed=cfg.seed, strict=cfg.strict, skipped=skipped)
        rows = limit_samples(require_data(cfg, data, "cot", skipped)["train"], opts["limit"])
    path = resolve_model_path(cfg.teacher, cfg.cache_dir)
    store = open_source(cfg, opts, build_provenance(cfg, opts, path, len(rows)))
    digests = {r["id"]: content_digest(r) for r in rows}
    done = store.scored_ids(digests)
    todo = [r for r in rows if r["id"] not in done]
    log.info("CoT source %s: %d/%d samples synthesized; %d to go", store.path, len(done), len(rows), len(todo))
    if todo and opts["from_dataset"]:
        from dualtune.models.loading import load_processor

        store.write_part(from_dataset(todo, opts, load_processor(path).tokenizer))
    elif todo:
        metrics = OmegaConf.to_container(cfg.domain.numeric_metric, resolve=True)
        with stage(f"synthesize {len(todo)} rationales ({cfg.teacher.name}, {opts['tries']} tries)"):
            generator, tokenizer = load_teacher(cfg, opts, path)
            with generator:
                size = int(opts["batch_size"])
                for start in range(0, len(todo), size):
                    part = synthesize(generator, todo[start:start + size], opts, int(cfg.seed), metrics, tokenizer)
                    store.write_part(part)
                    n_done = min(start + size, len(todo))
                    log.info("batch %d-%d: %d/%d accepted; %d/%d samples done", start, n_done,
                             sum(r["accepted"] for r in part), len(part), len(done) + n_done, len(rows))
    store.merge()
    table = store.read()
    records = [r for r in table.to_dict("records") if digests.get(r["id"]) == r["digest"]]
    summary = {"source": str(store.path), **summarize(records)}
    write_json_atomic(summary, store.summary_path)
    write_json_atomic(summary, out / "cot_summary.json")
    shutil.copyfile(store.provenance_path, out / "cot_provenance.json")
    log.info("CoT source %s: %d/%d accepted (%.1f%%), %d without a rationale from the teacher", store.path,
             summary["accepted"], summary["n"], 100 * summary["accept_rate"], summary["rejected"])
    return summary
